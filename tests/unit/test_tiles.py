import json
from datetime import UTC, datetime, timedelta, timezone

from chalicelib.tiles import (
    StoreSnapshot,
    build_tile,
    encode_document,
    sigungu_tile_id,
    store_row,
    tile_ids_for,
)

KST = timezone(timedelta(hours=9))


def _store(**changes):
    values = dict(
        code="01234567",
        name="온누리약국",
        addr="서울특별시 중구 세종대로 110",
        type="01",
        lat=37.5663,
        lng=126.9779,
        sido="서울특별시",
        sigungu="중구",
        stock=120,
        paused=False,
        stock_at="2020-03-17T09:00:00+09:00",
        received_at="2020-03-17T09:00:00+09:00",
        version=1,
    )
    values.update(changes)
    return StoreSnapshot(**values)


def test_located_store_has_three_tiles():
    assert tile_ids_for(_store()) == [
        "grid/13/6985/3172",
        "region/서울특별시",
        "region/서울특별시/중구",
    ]


def test_unlocated_store_has_only_region_tiles():
    assert tile_ids_for(_store(lat=None, lng=None)) == [
        "region/서울특별시",
        "region/서울특별시/중구",
    ]


def test_sigungu_id_replaces_spaces():
    assert sigungu_tile_id("경기도", "수원시 영통구") == "region/경기도/수원시_영통구"


def test_row_shows_band_not_stock():
    row = store_row(_store(stock=120))

    assert row["remain_stat"] == "plenty"
    assert "stock" not in row


def test_tile_encoding_is_deterministic_and_sorted():
    rows = {code: store_row(_store(code=code)) for code in ("3", "1", "2")}
    generated_at = datetime(2020, 3, 17, 3, 0, tzinfo=UTC)

    first = encode_document(
        build_tile(
            "region/서울특별시", rows, stage="test", version=1, generated_at=generated_at, zone=KST
        )
    )
    second = encode_document(
        build_tile(
            "region/서울특별시",
            dict(reversed(rows.items())),
            stage="test",
            version=1,
            generated_at=generated_at,
            zone=KST,
        )
    )

    assert first == second
    document = json.loads(first)
    assert [row["code"] for row in document["stores"]] == ["1", "2", "3"]
    assert document["generated_at"] == "2020-03-17T12:00:00+09:00"
    assert "온누리약국".encode() in first  # UTF-8, not \\u escapes
