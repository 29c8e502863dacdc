import json

from chalicelib.tiles import (
    StoreSnapshot,
    build_tile,
    encode_document,
    sigungu_tile_id,
    store_row,
    tile_ids_for,
)


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


def test_stale_row_shows_unknown_with_old_stock_at():
    row = store_row(_store(stock=120), stale_before="2020-03-17T10:00:00+09:00")

    assert row["remain_stat"] is None
    assert row["stock_at"] == "2020-03-17T09:00:00+09:00"


def test_stale_empty_and_break_rows_keep_their_band():
    stale_before = "2020-03-17T10:00:00+09:00"

    empty = store_row(_store(stock=0), stale_before=stale_before)
    paused = store_row(_store(stock=50, paused=True), stale_before=stale_before)

    assert empty["remain_stat"] == "empty"
    assert paused["remain_stat"] == "break"


def test_recent_row_is_not_stale():
    row = store_row(_store(stock=120), stale_before="2020-03-17T08:00:00+09:00")

    assert row["remain_stat"] == "plenty"


def test_unlocated_store_listed_apart():
    rows = {
        "1": store_row(_store(code="1")),
        "2": store_row(_store(code="2", lat=None, lng=None)),
    }

    tile = build_tile("region/서울특별시", rows, stage="test")

    assert [row["code"] for row in tile["stores"]] == ["1"]
    assert [row["code"] for row in tile["stores_without_location"]] == ["2"]
    assert "lat" not in tile["stores_without_location"][0]
    assert tile["count"] == 2


def test_tile_encoding_is_deterministic_and_sorted():
    rows = {code: store_row(_store(code=code)) for code in ("3", "1", "2")}

    first = encode_document(build_tile("region/서울특별시", rows, stage="test"))
    second = encode_document(
        build_tile("region/서울특별시", dict(reversed(rows.items())), stage="test")
    )

    assert first == second
    document = json.loads(first)
    assert [row["code"] for row in document["stores"]] == ["1", "2", "3"]
    assert document["generated_at"] == "2020-03-17T09:00:00+09:00"
    assert document["version"] == 3
    assert "온누리약국".encode() in first  # UTF-8, not \\u escapes


def test_non_prod_tile_is_marked_as_test_data():
    tile = build_tile("region/서울특별시", {}, stage="dev")

    assert tile["test_data"] is True
    assert "TEST DATA" in tile["notice"]
    assert tile["generated_at"] is None


def test_prod_tile_has_no_test_mark():
    tile = build_tile("region/서울특별시", {}, stage="prod")

    assert tile["test_data"] is False
    assert "notice" not in tile
