"""Stock state: one DynamoDB item per store, changed only by atomic conditional updates.

A submission is a single UpdateItem whose ConditionExpression also checks the store's key
hash, so an accepted sale costs one write request and no read. The item's `remain_stat` is not
stored: it is derived from `stock` and `paused` whenever it is shown, by `remain_stat_for`, so
it can never disagree with the stock it describes.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.clock import Clock, format_timestamp
from chalicelib.errors import (
    InsufficientStockError,
    InvalidApiKeyError,
    NoStockRecordedError,
)

logger = logging.getLogger(__name__)


class RemainStat(StrEnum):
    """Stock bands of the 2020 public-mask API, with their thresholds."""

    PLENTY = "plenty"  # 100 or more
    SOME = "some"  # 30 to 99
    FEW = "few"  # 2 to 29
    EMPTY = "empty"  # 0 or 1
    BREAK = "break"  # sales paused by the store, whatever the stock


def remain_stat_for(stock: int | None, paused: bool) -> RemainStat | None:
    """Band for a stock level; None when the store has never reported stock."""
    if paused:
        return RemainStat.BREAK
    if stock is None:
        return None
    if stock >= 100:
        return RemainStat.PLENTY
    if stock >= 30:
        return RemainStat.SOME
    if stock >= 2:
        return RemainStat.FEW
    return RemainStat.EMPTY


@dataclass(frozen=True, slots=True)
class StockState:
    """A store's stock as stored after a change."""

    code: str
    stock: int | None
    paused: bool
    stock_at: str | None
    reported_at: str | None
    version: int

    @property
    def remain_stat(self) -> RemainStat | None:
        return remain_stat_for(self.stock, self.paused)


def _state_from_attributes(attributes: dict[str, Any]) -> StockState:
    stock = attributes.get("stock")
    return StockState(
        code=attributes["code"]["S"],
        stock=int(stock["N"]) if stock else None,
        paused=attributes.get("paused", {}).get("BOOL", False),
        stock_at=attributes.get("stock_at", {}).get("S"),
        reported_at=attributes.get("reported_at", {}).get("S"),
        version=int(attributes.get("version", {}).get("N", "0")),
    )


class StockLedger:
    """Records deliveries, sales, pauses and resumes on the stores table."""

    def __init__(self, client: Any, table_name: str, zone: tzinfo, clock: Clock) -> None:
        self._client = client
        self._table_name = table_name
        self._zone = zone
        self._clock = clock

    def record_delivery(
        self, code: str, key_hash: str, quantity: int, occurred_at: datetime
    ) -> StockState:
        """Add a delivery to stock; stock_at becomes the delivery time."""
        return self._update(
            code,
            key_hash,
            # A store's first delivery starts from zero: if_not_exists keeps this one request.
            "SET stock = if_not_exists(stock, :zero) + :quantity, stock_at = :occurred_at",
            {":zero": {"N": "0"}, ":quantity": {"N": str(quantity)}},
            occurred_at,
        )

    def record_sale(
        self, code: str, key_hash: str, quantity: int, occurred_at: datetime
    ) -> StockState:
        """Subtract a sale; an oversell is rejected and changes nothing."""
        return self._update(
            code,
            key_hash,
            "SET stock = stock - :quantity",
            {":quantity": {"N": str(quantity)}},
            occurred_at,
            # Stock never goes negative: the sale must fit in what the store holds.
            extra_condition="stock >= :quantity",
            quantity=quantity,
        )

    def set_paused(
        self, code: str, key_hash: str, paused: bool, occurred_at: datetime
    ) -> StockState:
        """Pause or resume sales at a store."""
        return self._update(
            code, key_hash, "SET paused = :paused", {":paused": {"BOOL": paused}}, occurred_at
        )

    def _update(
        self,
        code: str,
        key_hash: str,
        set_expression: str,
        values: dict[str, Any],
        occurred_at: datetime,
        extra_condition: str | None = None,
        quantity: int | None = None,
    ) -> StockState:
        # The key hash check doubles as the existence check: an absent item has no key_hash.
        condition = "key_hash = :key_hash"
        if extra_condition:
            condition = f"{condition} AND {extra_condition}"
        expression_values = {
            **values,
            ":key_hash": {"S": key_hash},
            ":occurred_at": {"S": format_timestamp(occurred_at, self._zone)},
            ":received_at": {"S": format_timestamp(self._clock(), self._zone)},
            ":one": {"N": "1"},
        }
        try:
            response = self._client.update_item(
                TableName=self._table_name,
                Key={"code": {"S": code}},
                UpdateExpression=(
                    f"{set_expression}, reported_at = :occurred_at, received_at = :received_at"
                    " ADD version :one"
                ),
                ConditionExpression=condition,
                ExpressionAttributeValues=expression_values,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            raise _explain_rejection(
                code, key_hash, error.response.get("Item"), quantity
            ) from error
        return _state_from_attributes(response["Attributes"])


def _explain_rejection(
    code: str, key_hash: str, item: dict[str, Any] | None, quantity: int | None
) -> Exception:
    """Turn a failed condition into the domain error it stands for, from the item's old image."""
    if item is None or item.get("key_hash", {}).get("S") != key_hash:
        return InvalidApiKeyError(code)
    stock = item.get("stock")
    if stock is None:
        return NoStockRecordedError(code)
    return InsufficientStockError(code, available=int(Decimal(stock["N"])), requested=quantity or 0)
