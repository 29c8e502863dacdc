"""2020-compatible documents built from tile documents, on hand-made rows and the real list."""

from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from chalicelib.compat import (
    LEGACY_STORE_FIELDS,
    SALES_LIST_SUFFIX,
    STORE_LIST_SUFFIX,
    compat_documents,
    full_list_documents,
    full_sales_list,
    full_store_list,
    legacy_timestamp,
)
from chalicelib.grid import cell_for
from chalicelib.stores import StoreRecord, read_store_list
from chalicelib.tiles import build_tile, sido_tile_id, sigungu_tile_id

STORE_LIST = Path(__file__).resolve().parents[2] / "data" / "kr-mask-stores-2020-03-15.csv"
KST = timezone(timedelta(hours=9))
GENERATED_AT = datetime(2020, 3, 17, 12, 0, tzinfo=KST)


def _row(**overrides: Any) -> dict[str, Any]:
    """Return a store row in the published tile format."""
    row: dict[str, Any] = {
        "code": "11837497",
        "name": "문화약국",
        "addr": "서울특별시 용산구 장문로 114-1 (보광동)",
        "type": "01",
        "lat": 37.5266681,
        "lng": 127.0022624,
        "stock_at": "2020-03-17T09:03:00+09:00",
        "remain_stat": "plenty",
        "created_at": "2020-03-17T10:15:30+09:00",
        "version": 4,
    }
    row.update(overrides)
    return row


def _tile(tile_id: str, *store_rows: dict[str, Any]) -> dict[str, Any]:
    rows = {row["code"]: row for row in store_rows}
    return build_tile(tile_id, rows, stage="test")


def test_sido_tile_gives_stores_by_addr():
    reported = _row()
    unknown = _row(
        code="11837551", name="동광약국", remain_stat=None, stock_at=None, created_at=None
    )

    documents = compat_documents("region/서울특별시", _tile("region/서울특별시", reported, unknown))

    assert len(documents) == 1
    key, document = documents[0]
    assert key == "compat/storesByAddr/서울특별시.json"
    assert document["address"] == "서울특별시"
    assert document["count"] == 2
    assert list(document) == ["address", "count", "stores"]
    first, second = document["stores"]
    assert tuple(first) == LEGACY_STORE_FIELDS
    assert first["code"] == "11837497"
    assert first["stock_at"] == "2020/03/17 09:03:00"
    assert first["created_at"] == "2020/03/17 10:15:30"
    assert first["remain_stat"] == "plenty"
    assert first["lat"] == 37.5266681
    assert first["type"] == "01"
    assert "version" not in first
    assert second["remain_stat"] is None
    assert second["stock_at"] is None
    assert second["created_at"] is None


def test_sigungu_with_space_keeps_underscore_key():
    store = _row()
    tile_id = sigungu_tile_id("경기도", "수원시 영통구")

    [(key, document)] = compat_documents(tile_id, _tile(tile_id, store))

    assert key == "compat/storesByAddr/경기도/수원시_영통구.json"
    assert document["address"] == "경기도 수원시 영통구"


def test_grid_tile_gives_nothing():
    store = _row()
    tile_id = cell_for(store["lat"], store["lng"]).tile_id

    assert compat_documents(tile_id, _tile(tile_id, store)) == []


def test_mismatched_tile_id_rejected():
    document = _tile("region/서울특별시", _row())

    with pytest.raises(ValueError, match="not for 'region/부산광역시'"):
        compat_documents("region/부산광역시", document)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020-03-17T09:03:00+09:00", "2020/03/17 09:03:00"),
        ("2020-03-17T00:30:00+00:00", "2020/03/17 09:30:00"),
        ("2020-03-16T15:30:00+00:00", "2020/03/17 00:30:00"),
        ("2020-03-17T09:03:00", "2020/03/17 09:03:00"),
        (None, None),
    ],
)
def test_legacy_timestamp(text, expected):
    assert legacy_timestamp(text) == expected


def test_legacy_timestamp_rejects_garbage():
    with pytest.raises(ValueError, match="invalid tile timestamp '17 March'"):
        legacy_timestamp("17 March")


def test_full_store_list_keeps_newest_row():
    older = _row(version=3, name="옛이름약국")
    newer = _row(version=5, name="문화약국")
    unlocated = _row(code="12345678", lat=None, lng=None, version=1)

    document = full_store_list(
        [_tile("region/서울특별시", older, unlocated), _tile("region/서울특별시/용산구", newer)]
    )

    assert document["count"] == 2
    assert document["totalCount"] == 2
    assert document["totalPages"] == 1
    assert document["page"] == "1"
    first, second = document["storeInfos"]
    assert first == {
        "addr": "서울특별시 용산구 장문로 114-1 (보광동)",
        "code": "11837497",
        "lat": 37.5266681,
        "lng": 127.0022624,
        "name": "문화약국",
        "type": "01",
    }
    assert second["code"] == "12345678"
    assert second["lat"] is None
    assert second["lng"] is None


def test_full_sales_list_fields():
    paused = _row(remain_stat="break")

    document = full_sales_list([_tile("region/서울특별시", paused)])

    assert document["sales"] == [
        {
            "code": "11837497",
            "created_at": "2020/03/17 10:15:30",
            "remain_stat": "break",
            "stock_at": "2020/03/17 09:03:00",
        }
    ]


def test_full_list_documents_keys():
    documents = full_list_documents(iter([_tile("region/서울특별시", _row())]))

    assert [key for key, _ in documents] == [STORE_LIST_SUFFIX, SALES_LIST_SUFFIX]
    assert documents[0][1]["count"] == 1
    assert documents[1][1]["count"] == 1


def _real_region_tiles(stores: list[StoreRecord]) -> dict[str, dict[str, Any]]:
    """Build the sido and sigungu tiles of real stores, none of which has reported stock."""
    rows: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for record in stores:
        row = _row(
            code=record.code,
            name=record.name,
            addr=record.addr,
            type=record.type,
            lat=float(record.lat) if record.lat is not None else None,
            lng=float(record.lng) if record.lng is not None else None,
            remain_stat=None,
            stock_at=None,
            created_at=None,
            version=0,
        )
        if record.sido:
            rows[sido_tile_id(record.sido)][record.code] = row
        if record.sido and record.sigungu:
            rows[sigungu_tile_id(record.sido, record.sigungu)][record.code] = row
    return {
        tile_id: build_tile(tile_id, tile_rows, stage="test") for tile_id, tile_rows in rows.items()
    }


def test_real_list_region_files_cover_every_store():
    stores = read_store_list(STORE_LIST).stores
    tiles = _real_region_tiles(stores)

    documents = dict(
        document for tile_id, tile in tiles.items() for document in compat_documents(tile_id, tile)
    )
    sido_files = {key: doc for key, doc in documents.items() if key.count("/") == 2}
    sigungu_files = {key: doc for key, doc in documents.items() if key.count("/") == 3}

    assert len(sido_files) == 17
    assert sum(doc["count"] for doc in sido_files.values()) == len(stores)
    assert sum(doc["count"] for doc in sigungu_files.values()) == sum(
        1 for store in stores if store.sigungu
    )
    assert full_store_list(tiles.values())["count"] == len(stores)
    for document in documents.values():
        assert all(store["remain_stat"] is None for store in document["stores"])
