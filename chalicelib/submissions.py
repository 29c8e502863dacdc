"""The submission contract: what a store may post, and how it changes the ledger.

A submission is one event at one store: a delivery, a sale, a pause or a resume, with the time
it happened at the store. Unknown fields are rejected, so nothing about buyers can be sent.
"""

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from chalicelib.clock import Clock, format_timestamp, parse_timestamp
from chalicelib.errors import EventTimeError, ForeignStoreKeyError, InvalidApiKeyError
from chalicelib.keys import KeyRegistry, parse_api_key
from chalicelib.settings import Settings
from chalicelib.stock import LedgerEvent, LedgerOutcome, StockLedger

# A delivery to one store in 2020 was a few hundred masks; the bounds leave room and catch typos.
MAX_DELIVERY_QUANTITY = 10_000
MAX_SALE_QUANTITY = 1_000
# A POS coming back online sends its backlog in batches; 100 keeps one request under 30 s.
MAX_BATCH_EVENTS = 100
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
    submission_id: str = Field(
        pattern=_SUBMISSION_ID,
        description=(
            "Client-chosen id, unique per store (letters, digits, . _ : -). Sending the same id "
            "and body again returns the first result and changes nothing."
        ),
        examples=["pos7-20200317-000123"],
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


Event = Delivery | Sale | Pause | Resume
Submission = Annotated[Event, Field(discriminator="type")]
submission_adapter: TypeAdapter[Event] = TypeAdapter(Submission)


class Batch(BaseModel):
    """Up to 100 events of one store, applied in order, each with its own outcome."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    events: list[Submission] = Field(min_length=1, max_length=MAX_BATCH_EVENTS)


def fingerprint(event: Event, zone: tzinfo) -> str:
    """Hash an event's content; equal events (the same instant too) give equal fingerprints."""
    content = {
        "type": event.type,
        "quantity": getattr(event, "quantity", None),
        "occurred_at": event.occurred(zone).astimezone(UTC).isoformat(),
    }
    encoded = json.dumps(content, sort_keys=True).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()[:16]


class SubmissionService:
    """Authorizes submissions against their store and records them in the ledger."""

    def __init__(
        self, ledger: StockLedger, keys: KeyRegistry, settings: Settings, clock: Clock
    ) -> None:
        self._ledger = ledger
        self._keys = keys
        self._zone = settings.timezone
        self._retention = timedelta(seconds=settings.retention_s)
        self._future_tolerance = timedelta(seconds=settings.future_tolerance_s)
        self._clock = clock

    def authorize(self, code: str, presented_key: str | None) -> str:
        """Check the key's form and store; returns the hash the ledger's condition compares."""
        if not presented_key:
            raise InvalidApiKeyError(code)
        key = parse_api_key(presented_key, code)
        if key.code != code:
            # Another store's key: return 403 only when that key is genuine, else 401.
            if self._keys.is_valid(key):
                raise ForeignStoreKeyError(key.code, code)
            raise InvalidApiKeyError(code)
        return key.hash

    def check_time(self, event: Event) -> None:
        """Reject events from the future or older than the submission log remembers."""
        occurred_at = event.occurred(self._zone)
        now = self._clock()
        if occurred_at > now + self._future_tolerance:
            limit = format_timestamp(now + self._future_tolerance, self._zone)
            raise EventTimeError("in the future", limit)
        if occurred_at < now - self._retention:
            raise EventTimeError("too old", format_timestamp(now - self._retention, self._zone))

    def submit(self, code: str, key_hash: str, event: Event) -> LedgerOutcome:
        """Record one authorized event for store `code`."""
        self.check_time(event)
        ledger_event = LedgerEvent(
            kind=event.type,
            quantity=getattr(event, "quantity", None),
            occurred_at=event.occurred(self._zone),
            submission_id=event.submission_id,
            fingerprint=fingerprint(event, self._zone),
        )
        return self._ledger.apply(code, key_hash, ledger_event)
