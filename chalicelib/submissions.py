"""The submission contract: what a store may post, and how it changes the ledger.

A submission is one event at one store: a delivery, a sale, a pause or a resume, with the time
it happened at the store. Unknown fields are rejected, so nothing about buyers can be sent.
"""

import re
from datetime import datetime, tzinfo
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from chalicelib.clock import parse_timestamp
from chalicelib.errors import ForeignStoreKeyError, InvalidApiKeyError
from chalicelib.keys import KeyRegistry, parse_api_key
from chalicelib.stock import StockLedger, StockState

# A delivery to one store in 2020 was a few hundred masks; the bounds leave room and catch typos.
MAX_DELIVERY_QUANTITY = 10_000
MAX_SALE_QUANTITY = 1_000
_SUBMISSION_ID = r"^[A-Za-z0-9._:-]{1,64}$"
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?$")


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    occurred_at: str = Field(
        description=(
            "When the event happened at the store, ISO 8601. Without an offset the time is "
            "read as Korea Standard Time (+09:00)."
        ),
        examples=["2020-03-17T09:30:00+09:00"],
    )
    submission_id: str | None = Field(
        default=None,
        pattern=_SUBMISSION_ID,
        description="Client-chosen id of this submission (letters, digits, . _ : -).",
    )

    @field_validator("occurred_at")
    @classmethod
    def _check_timestamp(cls, value: str) -> str:
        if not _TIMESTAMP.match(value):
            raise ValueError("timestamp")
        datetime.fromisoformat(value)  # rejects impossible dates such as 2020-02-30
        return value

    def occurred(self, default_zone: tzinfo) -> datetime:
        return parse_timestamp(self.occurred_at, default_zone)


class Delivery(_Event):
    """Masks received by the store."""

    type: Literal["delivery"]
    quantity: int = Field(ge=1, le=MAX_DELIVERY_QUANTITY, strict=True)


class Sale(_Event):
    """Masks sold by the store."""

    type: Literal["sale"]
    quantity: int = Field(ge=1, le=MAX_SALE_QUANTITY, strict=True)


class Pause(_Event):
    """The store stops selling; its remain_stat shows "break" until it resumes."""

    type: Literal["pause"]


class Resume(_Event):
    """The store sells again."""

    type: Literal["resume"]


Submission = Annotated[Delivery | Sale | Pause | Resume, Field(discriminator="type")]
submission_adapter: TypeAdapter[Delivery | Sale | Pause | Resume] = TypeAdapter(Submission)


class SubmissionService:
    """Authorizes a submission against its store and records it in the ledger."""

    def __init__(self, ledger: StockLedger, keys: KeyRegistry, zone: tzinfo) -> None:
        self._ledger = ledger
        self._keys = keys
        self._zone = zone

    def submit(
        self, code: str, presented_key: str | None, event: Delivery | Sale | Pause | Resume
    ) -> StockState:
        """Record one event for store `code`, authorized by `presented_key`."""
        if not presented_key:
            raise InvalidApiKeyError(code)
        key = parse_api_key(presented_key, code)
        if key.code != code:
            # Another store's key: say 403 only when that key is genuine, else 401.
            if self._keys.is_valid(key):
                raise ForeignStoreKeyError(key.code, code)
            raise InvalidApiKeyError(code)
        occurred_at = event.occurred(self._zone)
        match event:
            case Delivery():
                return self._ledger.record_delivery(code, key.hash, event.quantity, occurred_at)
            case Sale():
                return self._ledger.record_sale(code, key.hash, event.quantity, occurred_at)
            case Pause():
                return self._ledger.set_paused(code, key.hash, True, occurred_at)
            case Resume():
                return self._ledger.set_paused(code, key.hash, False, occurred_at)
