"""Stock state: one DynamoDB item per store, changed only by atomic conditional updates.

A live submission is a single UpdateItem. Its ConditionExpression checks the store's key hash,
the oversell rule and that the submission id is not in the item's `recent` map, so an accepted
sale costs one write request and no read, and its response comes from ReturnValues=ALL_NEW.

Duplicate detection over days needs more than the item can hold, so it has two tiers:

- `recent`: submission id -> "fingerprint|occurred epoch" for events whose occurred_at lies
  within `window_s` of now. The stream handler copies each id to the submission log (its own
  table) and then prunes entries older than the window plus a margin.
- The submission log: an event older than the window (a POS coming back online) takes the slow
  path, a transaction that also puts its log record with `attribute_not_exists`, followed by a
  read for the response. A retry of an old event therefore always meets one of the two tiers.

Order rules, so late and out-of-order events never corrupt state:

- Stock is the sum of deliveries minus sales, which does not depend on order.
- `stock_at` is the latest delivery's occurred_at. A delivery older than it adds its quantity
  and leaves `stock_at` alone (a second request, only for such late deliveries).
- Pause and resume carry `paused_at`. An event older than the last one is recorded (so its
  retries are recognised) but does not change the pause state.
- A sale larger than the stock is rejected (409) and changes nothing. Stock never goes negative.

`remain_stat` is not stored. It is derived from `stock` and `paused` wherever it is shown, by
`remain_stat_for`, so it can never disagree with the stock it describes.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Any, Literal

from botocore.exceptions import ClientError

from chalicelib.clock import Clock, format_timestamp
from chalicelib.errors import (
    InsufficientStockError,
    InvalidApiKeyError,
    NoStockRecordedError,
    SubmissionConflictError,
)

logger = logging.getLogger(__name__)

EventKind = Literal["delivery", "sale", "pause", "resume"]


class RemainStat(StrEnum):
    """Stock bands of the 2020 public-mask API, with their thresholds."""

    PLENTY = "plenty"  # 100 or more
    SOME = "some"  # 30 to 99
    FEW = "few"  # 2 to 29
    EMPTY = "empty"  # 0 or 1
    BREAK = "break"  # sales paused by the store, whatever the stock


def remain_stat_for(stock: int | None, paused: bool) -> RemainStat | None:
    """Return the band for a stock level; None when the store has never reported stock."""
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
class LedgerEvent:
    """One validated submission, ready for the ledger."""

    kind: EventKind
    quantity: int | None
    occurred_at: datetime
    submission_id: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class StockState:
    """A store's stock as stored after a change."""

    code: str
    stock: int | None
    paused: bool
    stock_at: str | None
    received_at: str | None
    version: int

    @property
    def remain_stat(self) -> RemainStat | None:
        return remain_stat_for(self.stock, self.paused)


@dataclass(frozen=True, slots=True)
class LedgerOutcome:
    """The state after a submission and how the submission was treated."""

    state: StockState
    # True when the submission id was seen before with the same body: nothing was changed.
    replayed: bool = False
    # True for a pause or resume older than the store's last one: recorded, state unchanged.
    superseded: bool = False


def state_from_attributes(attributes: dict[str, Any]) -> StockState:
    """Read a store item's stock attributes (DynamoDB typed JSON)."""
    stock = attributes.get("stock")
    return StockState(
        code=attributes["code"]["S"],
        stock=int(stock["N"]) if stock else None,
        paused=attributes.get("paused", {}).get("BOOL", False),
        stock_at=attributes.get("stock_at", {}).get("S"),
        received_at=attributes.get("received_at", {}).get("S"),
        version=int(attributes.get("version", {}).get("N", "0")),
    )


def recent_entry(fingerprint: str, occurred_at: datetime) -> str:
    """Return the value stored under a submission id in the item's `recent` map."""
    return f"{fingerprint}|{int(occurred_at.timestamp())}"


@dataclass
class _Update:
    """The pieces of one UpdateItem, built per event kind."""

    sets: list[str]
    conditions: list[str]
    values: dict[str, Any]

    def expression(self) -> str:
        return "SET " + ", ".join(self.sets) + " ADD version :one"


class StockLedger:
    """Records deliveries, sales, pauses and resumes on the stores table."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        submissions_table_name: str,
        zone: tzinfo,
        clock: Clock,
        window_s: int,
        retention_s: int,
    ) -> None:
        self._client = client
        self._table_name = table_name
        self._submissions_table_name = submissions_table_name
        self._zone = zone
        self._clock = clock
        self._window = timedelta(seconds=window_s)
        self._retention_s = retention_s

    def apply(self, code: str, key_hash: str, event: LedgerEvent) -> LedgerOutcome:
        """Apply one submission to a store's item."""
        live = event.occurred_at >= self._clock() - self._window
        update = self._build_update(event, order_checks=True)
        try:
            return self._write(code, key_hash, event, update, live)
        except _LateEvent:
            # The event is older than the store's latest of its kind: apply it without
            # moving stock_at or the pause state backwards.
            update = self._build_update(event, order_checks=False)
            outcome = self._write(code, key_hash, event, update, live)
            superseded = event.kind in ("pause", "resume")
            return LedgerOutcome(outcome.state, outcome.replayed, superseded)

    def _build_update(self, event: LedgerEvent, order_checks: bool) -> _Update:
        occurred = format_timestamp(event.occurred_at, self._zone)
        update = _Update(
            sets=["received_at = :received_at", "last_submission = :submission_id"],
            conditions=["key_hash = :key_hash"],
            values={
                ":received_at": {"S": format_timestamp(self._clock(), self._zone)},
                ":submission_id": {"S": event.submission_id},
                ":one": {"N": "1"},
            },
        )
        if event.kind == "delivery":
            # A store's first delivery starts from zero: if_not_exists keeps this one request.
            update.sets.append("stock = if_not_exists(stock, :zero) + :quantity")
            update.values |= {":zero": {"N": "0"}, ":quantity": {"N": str(event.quantity)}}
            if order_checks:
                update.sets.append("stock_at = :occurred_at")
                update.conditions.append(
                    "(attribute_not_exists(stock_at) OR stock_at <= :occurred_at)"
                )
                update.values[":occurred_at"] = {"S": occurred}
        elif event.kind == "sale":
            update.sets.append("stock = stock - :quantity")
            # Stock never goes negative: the sale must fit in what the store holds.
            update.conditions.append("stock >= :quantity")
            update.values[":quantity"] = {"N": str(event.quantity)}
        elif order_checks:
            update.sets += ["paused = :paused", "paused_at = :occurred_at"]
            update.conditions.append(
                "(attribute_not_exists(paused_at) OR paused_at <= :occurred_at)"
            )
            update.values |= {
                ":paused": {"BOOL": event.kind == "pause"},
                ":occurred_at": {"S": occurred},
            }
        return update

    def _write(
        self, code: str, key_hash: str, event: LedgerEvent, update: _Update, live: bool
    ) -> LedgerOutcome:
        names = {"#submission": event.submission_id}
        # Timestamps compare as strings because every stored one has the same offset and form.
        update.conditions.append("attribute_not_exists(recent.#submission)")
        update.values[":key_hash"] = {"S": key_hash}
        if live:
            update.sets.append("recent.#submission = :entry")
            update.values[":entry"] = {"S": recent_entry(event.fingerprint, event.occurred_at)}
            return self._write_live(code, key_hash, event, update, names)
        return self._write_logged(code, key_hash, event, update, names)

    def _write_live(
        self,
        code: str,
        key_hash: str,
        event: LedgerEvent,
        update: _Update,
        names: dict[str, str],
    ) -> LedgerOutcome:
        try:
            response = self._client.update_item(
                TableName=self._table_name,
                Key={"code": {"S": code}},
                UpdateExpression=update.expression(),
                ConditionExpression=" AND ".join(update.conditions),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=update.values,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return self._explain(code, key_hash, event, error.response.get("Item"), None)
        return LedgerOutcome(state_from_attributes(response["Attributes"]))

    def _write_logged(
        self,
        code: str,
        key_hash: str,
        event: LedgerEvent,
        update: _Update,
        names: dict[str, str],
    ) -> LedgerOutcome:
        log_item = submission_log_item(
            code, event.submission_id, event.fingerprint, event.occurred_at, self._retention_s
        )
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self._table_name,
                            "Key": {"code": {"S": code}},
                            "UpdateExpression": update.expression(),
                            "ConditionExpression": " AND ".join(update.conditions),
                            "ExpressionAttributeNames": names,
                            "ExpressionAttributeValues": update.values,
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._submissions_table_name,
                            "Item": log_item,
                            "ConditionExpression": "attribute_not_exists(id)",
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        }
                    },
                ]
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = error.response.get("CancellationReasons", [{}, {}])
            logged = reasons[1].get("Item") if reasons[1].get("Code") else None
            store_item = reasons[0].get("Item") or self._read(code)
            return self._explain(code, key_hash, event, store_item, logged)
        # The slow path cannot return values from a transaction, so it reads the result.
        item = self._read(code)
        assert item is not None  # the transaction just updated it
        return LedgerOutcome(state_from_attributes(item))

    def _read(self, code: str) -> dict[str, Any] | None:
        response = self._client.get_item(
            TableName=self._table_name, Key={"code": {"S": code}}, ConsistentRead=True
        )
        item: dict[str, Any] | None = response.get("Item")
        return item

    def _explain(
        self,
        code: str,
        key_hash: str,
        event: LedgerEvent,
        item: dict[str, Any] | None,
        logged: dict[str, Any] | None,
    ) -> LedgerOutcome:
        """Turn a failed condition into its outcome or domain error, from the old images."""
        if item is None or item.get("key_hash", {}).get("S") != key_hash:
            raise InvalidApiKeyError(code)
        seen = _seen_fingerprint(item, logged, event.submission_id)
        if seen is not None:
            if seen != event.fingerprint:
                raise SubmissionConflictError(code, event.submission_id)
            return LedgerOutcome(state_from_attributes(item), replayed=True)
        if event.kind == "sale":
            stock = item.get("stock")
            if stock is None:
                raise NoStockRecordedError(code)
            if int(stock["N"]) < (event.quantity or 0):
                raise InsufficientStockError(code, int(stock["N"]), event.quantity or 0)
        if _is_late(item, event, self._zone):
            raise _LateEvent
        # Another writer changed the item between the condition's parts: nothing above applies.
        raise RuntimeError(f"unexplained condition failure for store {code}")


class _LateEvent(Exception):
    """A delivery or pause older than the store's latest one of its kind."""


def _seen_fingerprint(
    item: dict[str, Any], logged: dict[str, Any] | None, submission_id: str
) -> str | None:
    entry = item.get("recent", {}).get("M", {}).get(submission_id, {}).get("S")
    if entry:
        return str(entry.split("|")[0])
    if logged:
        return str(logged["fingerprint"]["S"])
    return None


def _is_late(item: dict[str, Any], event: LedgerEvent, zone: tzinfo) -> bool:
    occurred = format_timestamp(event.occurred_at, zone)
    if event.kind == "delivery":
        return str(item.get("stock_at", {}).get("S", "")) > occurred
    if event.kind in ("pause", "resume"):
        return str(item.get("paused_at", {}).get("S", "")) > occurred
    return False


def submission_log_item(
    code: str, submission_id: str, fingerprint: str, occurred_at: datetime, retention_s: int
) -> dict[str, Any]:
    """Build a submission log record: the store, id, body fingerprint and expiry (TTL)."""
    expires_at = int(occurred_at.timestamp()) + retention_s
    return {
        "id": {"S": f"{code}#{submission_id}"},
        "code": {"S": code},
        "fingerprint": {"S": fingerprint},
        "occurred_at": {"N": str(int(occurred_at.timestamp()))},
        "expires_at": {"N": str(expires_at)},
    }
