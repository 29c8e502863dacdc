"""The store registry: the official seller list, imported into the stores table.

The import writes only registry attributes (name, address, type, coordinates, region), never
stock, so re-importing a list cannot reset a store's stock. It compares the list with the
table first and writes only what differs, so importing the same file twice writes nothing.
"""

import csv
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from chalicelib.errors import DemoDataInProdError
from chalicelib.regions import RegionResolver

logger = logging.getLogger(__name__)

StoreSource = Literal["official", "demo"]

# Store codes are text: 8 digits for pharmacies, 10 for post offices and marts, and one 9-digit
# code in the 2020 list. Leading zeros are part of the identity.
_CODE_PATTERN = re.compile(r"^[0-9]{6,12}$")
_TRAILING_JUNK = re.compile(r"[\s,]+$")
REGISTRY_ATTRIBUTES = ("name", "addr", "type", "lat", "lng", "sido", "sigungu", "source")
# BatchWriteItem accepts at most 25 put requests per call.
_BATCH_SIZE = 25


@dataclass(frozen=True, slots=True)
class StoreRecord:
    """One row of the official list, cleaned and with its region derived."""

    code: str
    name: str
    addr: str
    type: str
    lat: Decimal | None
    lng: Decimal | None
    sido: str | None
    sigungu: str | None
    source: StoreSource = "official"

    def registry_item(self) -> dict[str, Any]:
        """Registry attributes in DynamoDB's typed JSON; absent values are left out."""
        item: dict[str, Any] = {
            "code": {"S": self.code},
            "name": {"S": self.name},
            "addr": {"S": self.addr},
            "type": {"S": self.type},
            "source": {"S": self.source},
        }
        for name, number in (("lat", self.lat), ("lng", self.lng)):
            if number is not None:
                item[name] = {"N": str(number)}
        for name, text in (("sido", self.sido), ("sigungu", self.sigungu)):
            if text:
                item[name] = {"S": text}
        return item


@dataclass
class StoreList:
    """The parsed list plus the rows that could not be used, with reasons."""

    stores: list[StoreRecord]
    rejected: list[tuple[int, str]] = field(default_factory=list)

    @property
    def without_coordinates(self) -> int:
        return sum(1 for store in self.stores if store.lat is None)

    @property
    def without_region(self) -> int:
        return sum(1 for store in self.stores if store.sido is None)


def _coordinate(text: str) -> Decimal | None:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def read_store_list(path: Path, source: StoreSource = "official") -> StoreList:
    """Parse the seller CSV (header addr,code,latitude,longitude,name,type)."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    cleaned = [(_TRAILING_JUNK.sub("", row.get("addr") or "").strip(), row) for row in rows]
    resolver = RegionResolver.from_rows(
        (addr, _float(row.get("latitude")), _float(row.get("longitude"))) for addr, row in cleaned
    )
    result = StoreList(stores=[])
    seen: set[str] = set()
    for line, (addr, row) in enumerate(cleaned, start=2):
        code = (row.get("code") or "").strip()
        if not _CODE_PATTERN.match(code):
            result.rejected.append((line, f"invalid store code {code!r}"))
            continue
        if code in seen:
            result.rejected.append((line, f"duplicate store code {code}"))
            continue
        seen.add(code)
        lat, lng = _coordinate(row.get("latitude") or ""), _coordinate(row.get("longitude") or "")
        if lat is None or lng is None:
            lat = lng = None  # half a coordinate pair is no location
        region = resolver.resolve(addr, _float_of(lat), _float_of(lng))
        result.stores.append(
            StoreRecord(
                code=code,
                name=(row.get("name") or "").strip(),
                addr=addr,
                type=(row.get("type") or "").strip(),
                lat=lat,
                lng=lng,
                sido=region.sido if region else None,
                sigungu=region.sigungu if region else None,
                source=source,
            )
        )
    return result


def _float(text: str | None) -> float | None:
    return _float_of(_coordinate(text or ""))


def _float_of(value: Decimal | None) -> float | None:
    return float(value) if value is not None else None


@dataclass
class ImportReport:
    """Counts of one import run."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    absent_from_list: int = 0


class StoreRegistry:
    """Reads and writes store items in the stores table."""

    def __init__(self, client: Any, table_name: str, stage: str = "dev") -> None:
        self._client = client
        self._table_name = table_name
        self._stage = stage

    def scan(self) -> Iterator[dict[str, Any]]:
        """Yield every store item, in typed JSON."""
        paginator = self._client.get_paginator("scan")
        for page in paginator.paginate(TableName=self._table_name):
            yield from page["Items"]

    def scan_received_between(self, start: str, end: str) -> Iterator[dict[str, Any]]:
        """Yield the store items whose latest report was received in [start, end)."""
        paginator = self._client.get_paginator("scan")
        pages = paginator.paginate(
            TableName=self._table_name,
            FilterExpression="received_at >= :start AND received_at < :end",
            ExpressionAttributeValues={":start": {"S": start}, ":end": {"S": end}},
        )
        for page in pages:
            yield from page["Items"]

    def import_stores(
        self,
        stores: Iterable[StoreRecord],
        *,
        prune: bool = False,
        workers: int = 4,
        progress: Callable[[int], None] | None = None,
    ) -> ImportReport:
        """Create new stores, update changed ones, and with `prune` delete unlisted ones.

        The prod stage rejects the whole list if any store in it comes from demo data.
        """
        stores = list(stores)
        demo = sum(1 for store in stores if store.source == "demo")
        if demo and self._stage == "prod":
            raise DemoDataInProdError(demo)
        existing = {item["code"]["S"]: item for item in self.scan()}
        report = ImportReport()
        plan = _plan_import(stores, existing)
        report.unchanged = plan.unchanged
        if progress:
            progress(plan.unchanged)
        new_items = plan.new_items
        batches = [new_items[i : i + _BATCH_SIZE] for i in range(0, len(new_items), _BATCH_SIZE)]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for written in pool.map(self._put_batch, batches):
                report.created += written
                if progress:
                    progress(written)
            for _ in pool.map(self._update_registry, plan.changed):
                report.updated += 1
                if progress:
                    progress(1)
        unlisted = sorted(set(existing) - plan.listed)
        report.absent_from_list = len(unlisted)
        if prune:
            for code in unlisted:
                self._client.delete_item(TableName=self._table_name, Key={"code": {"S": code}})
                report.removed += 1
        return report

    def _put_batch(self, items: list[dict[str, Any]]) -> int:
        requests = [{"PutRequest": {"Item": item}} for item in items]
        # Unprocessed items come back under throttling; resend until none are left.
        while requests:
            response = self._client.batch_write_item(RequestItems={self._table_name: requests})
            requests = response.get("UnprocessedItems", {}).get(self._table_name, [])
        return len(items)

    def _update_registry(self, store: StoreRecord) -> None:
        item = store.registry_item()
        names = [name for name in REGISTRY_ATTRIBUTES if name in item]
        removed = [name for name in REGISTRY_ATTRIBUTES if name not in item]
        expression = "SET " + ", ".join(f"#{name} = :{name}" for name in names)
        if removed:
            expression += " REMOVE " + ", ".join(f"#{name}" for name in removed)
        # A new version lets the tiles replace the old row, as for any other write.
        expression += " ADD version :one"
        self._client.update_item(
            TableName=self._table_name,
            Key={"code": item["code"]},
            UpdateExpression=expression,
            ConditionExpression="attribute_exists(code)",
            ExpressionAttributeNames={f"#{name}": name for name in REGISTRY_ATTRIBUTES},
            ExpressionAttributeValues={
                **{f":{name}": item[name] for name in names},
                ":one": {"N": "1"},
            },
        )


@dataclass
class _ImportPlan:
    new_items: list[dict[str, Any]] = field(default_factory=list)
    changed: list[StoreRecord] = field(default_factory=list)
    listed: set[str] = field(default_factory=set)
    unchanged: int = 0


def _plan_import(stores: Iterable[StoreRecord], existing: dict[str, Any]) -> _ImportPlan:
    """Sort the list into new, changed and unchanged stores against the table's items."""
    plan = _ImportPlan()
    for store in stores:
        plan.listed.add(store.code)
        current = existing.get(store.code)
        if current is None:
            # `recent` must exist before a submission can set one of its entries.
            plan.new_items.append({**store.registry_item(), "recent": {"M": {}}})
        elif _registry_view(current) != _registry_view(store.registry_item()):
            plan.changed.append(store)
        else:
            plan.unchanged += 1
    return plan


def _registry_view(item: dict[str, Any]) -> dict[str, Any]:
    view: dict[str, Any] = {name: item.get(name) for name in REGISTRY_ATTRIBUTES}
    for name in ("lat", "lng"):
        number = item.get(name)
        if number is not None:
            view[name] = Decimal(number["N"])  # 36.60 and 36.6 are the same place
    return view
