"""Tile content: which tiles a store belongs to and what a tile document contains.

Pure functions only; `publishing` stores the documents and `regeneration` decides when. A tile
is a JSON document listing stores with the field names of the 2020 public-mask API (code, name,
addr, type, lat, lng, stock_at, remain_stat, created_at). Each row also has `version`, a
per-store counter that grows with every write to the store, so a newer row wins over an older.

A tile document is a function of its rows alone (no wall-clock time in it), so the incremental
path and a full rebuild of the same data produce the same bytes.
"""

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from chalicelib.grid import GRID_ZOOM, GridCell, cell_for
from chalicelib.stock import RemainStat, remain_stat_for

TILE_SCHEMA = "stockfeed.tile.v1"
_BANDS_WITH_STOCK = (RemainStat.PLENTY, RemainStat.SOME, RemainStat.FEW)
MANIFEST_SCHEMA = "stockfeed.manifest.v1"
STORE_FIELDS = (
    "code",
    "name",
    "addr",
    "type",
    "lat",
    "lng",
    "stock_at",
    "remain_stat",
    "created_at",
    "version",
)

_deserializer = TypeDeserializer()


@dataclass(frozen=True, slots=True)
class StoreSnapshot:
    """The parts of a store item that tiles show or are keyed by."""

    code: str
    name: str
    addr: str
    type: str
    lat: float | None
    lng: float | None
    sido: str | None
    sigungu: str | None
    stock: int | None
    paused: bool
    stock_at: str | None
    received_at: str | None
    version: int
    source: str = "official"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, Decimal) else None


def snapshot_from_item(item: dict[str, Any]) -> StoreSnapshot:
    """Read a store item in DynamoDB's typed JSON ({"S": ...}), as scans and streams give it."""
    plain = {name: _deserializer.deserialize(value) for name, value in item.items()}
    stock = plain.get("stock")
    return StoreSnapshot(
        code=plain["code"],
        name=plain.get("name", ""),
        addr=plain.get("addr", ""),
        type=plain.get("type", ""),
        lat=_number(plain.get("lat")),
        lng=_number(plain.get("lng")),
        sido=plain.get("sido"),
        sigungu=plain.get("sigungu"),
        stock=int(stock) if stock is not None else None,
        paused=bool(plain.get("paused", False)),
        stock_at=plain.get("stock_at"),
        received_at=plain.get("received_at"),
        version=int(plain.get("version", 0)),
        source=str(plain.get("source", "official")),
    )


def sido_tile_id(sido: str) -> str:
    return f"region/{sido}"


def sigungu_tile_id(sido: str, sigungu: str) -> str:
    # Spaces in "수원시 영통구" become "_" so tile URLs need no escaping beyond UTF-8.
    return f"region/{sido}/{sigungu.replace(' ', '_')}"


def tile_ids_for(store: StoreSnapshot, zoom: int = GRID_ZOOM) -> list[str]:
    """Return the tiles that list a store: its grid cell (when located), sido and sigungu."""
    tile_ids = []
    if store.lat is not None and store.lng is not None:
        tile_ids.append(cell_for(store.lat, store.lng, zoom).tile_id)
    if store.sido:
        tile_ids.append(sido_tile_id(store.sido))
        if store.sigungu:
            tile_ids.append(sigungu_tile_id(store.sido, store.sigungu))
    return tile_ids


def store_row(store: StoreSnapshot, stale_before: str | None = None) -> dict[str, Any]:
    """Render one store as a tile lists it.

    A store whose latest report was received before `stale_before` and that still shows stock
    (plenty, some or few) shows remain_stat null (unknown) with its old stock_at: an old figure
    must never read as available. Empty and break stay as they are, because leaving them takes
    a delivery or a resume, which the store reports.
    """
    remain_stat = remain_stat_for(store.stock, store.paused)
    stale = (
        stale_before is not None
        and (store.received_at or "") < stale_before
        and remain_stat in _BANDS_WITH_STOCK
    )
    row: dict[str, Any] = {
        "code": store.code,
        "name": store.name,
        "addr": store.addr,
        "type": store.type,
    }
    if store.lat is not None and store.lng is not None:
        row["lat"] = store.lat
        row["lng"] = store.lng
    row |= {
        "stock_at": store.stock_at,
        "remain_stat": remain_stat.value if remain_stat and not stale else None,
        # When stockfeed received the store's latest report: the age of the figure.
        "created_at": store.received_at,
        "version": store.version,
    }
    return row


def _describe(tile_id: str) -> dict[str, Any]:
    parts = tile_id.split("/")
    if parts[0] == "grid":
        cell = GridCell(int(parts[1]), int(parts[2]), int(parts[3]))
        south, west, north, east = cell.bounds()
        bounds = {"south": south, "west": west, "north": north, "east": east}
        return {"kind": "grid", "region": None, "bounds": bounds}
    if len(parts) == 2:
        return {"kind": "sido", "region": {"sido": parts[1], "sigungu": None}, "bounds": None}
    region = {"sido": parts[1], "sigungu": parts[2].replace("_", " ")}
    return {"kind": "sigungu", "region": region, "bounds": None}


TEST_NOTICE = "테스트 데이터입니다. 실제 재고가 아닙니다. / TEST DATA: not real stock."


def build_tile(tile_id: str, rows: dict[str, dict[str, Any]], *, stage: str) -> dict[str, Any]:
    """Build a tile document from its rows alone, so equal content gives equal bytes.

    Stores are sorted by code. Stores without coordinates (only in region tiles) are listed
    apart, in `stores_without_location`, so `lat` and `lng` in `stores` are always numbers.
    `generated_at` is the newest report among the rows: a tile is regenerated exactly when one
    of its stores reports, so that is when its content was generated.
    """
    ordered = [rows[code] for code in sorted(rows)]
    located = [row for row in ordered if "lat" in row]
    unlocated = [row for row in ordered if "lat" not in row]
    received = [row["created_at"] for row in ordered if row["created_at"]]
    document: dict[str, Any] = {
        "schema": TILE_SCHEMA,
        "tile": tile_id,
        **_describe(tile_id),
        "stage": stage,
        "test_data": stage != "prod",
    }
    if stage != "prod":
        document["notice"] = TEST_NOTICE
    document |= {
        # Changes whenever a listed store changes (each write to a store raises its version).
        "version": sum(row["version"] for row in ordered),
        "generated_at": max(received) if received else None,
        "count": len(ordered),
        "stores": located,
    }
    if document["kind"] != "grid":
        document["stores_without_location"] = unlocated
    return document


def encode_document(document: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON (Korean text kept as is, not \\u-escaped)."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
