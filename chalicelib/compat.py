"""Static files in the response shapes of the 2020 public-mask API, built from tile documents.

Apps written in 2020 called the public-mask API (base URL
`https://8oi9s0nnth.apigw.ntruss.com/corona19-masks/v1/`). Three of its four endpoints can be
served as static files, so those apps can switch to this feed with few changes:

- `storesByAddr/json?address=...` becomes one file per region tile, under
  `compat/storesByAddr/{sido}.json` and `compat/storesByAddr/{sido}/{sigungu}.json` (spaces in
  the sigungu as `_`, as in tile ids). The app changes its base URL and how it builds the path.
- `stores/json` and `sales/json` become the files `compat/stores/json` and `compat/sales/json`.
  The keys have no `.json` extension on purpose: an app that requests
  `{base}stores/json?page=1&perPage=5000` gets the file by changing only its base URL, because
  S3 and CloudFront ignore the query string. Each file contains every store on one page.
- `storesByGeo/json` responds to a query (a point and a radius), which a static file cannot do.
  The clients in `client/` and `web/stockfeed-client.js` replace it with grid tiles.

All key suffixes here are relative to the tile prefix (`v1/`). The documents keep the 2020
field names and value formats: times as `yyyy/MM/dd HH:mm:ss` in Korea Standard Time and
`remain_stat` as plenty/some/few/empty/break, or null when the store has not reported stock.
The per-store `version` of the tiles is left out, because the 2020 responses had no such field.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

# Korea has used UTC+9 without daylight saving time since 1988. The 2020 API wrote its times
# in that zone without an offset.
KST = timezone(timedelta(hours=9), "KST")
LEGACY_TIME_FORMAT = "%Y/%m/%d %H:%M:%S"

STORES_BY_ADDR_DIRECTORY = "compat/storesByAddr"
STORE_LIST_SUFFIX = "compat/stores/json"
SALES_LIST_SUFFIX = "compat/sales/json"

# Key order of a store in the 2020 storesByAddr and storesByGeo responses (alphabetical).
LEGACY_STORE_FIELDS = (
    "addr",
    "code",
    "created_at",
    "lat",
    "lng",
    "name",
    "remain_stat",
    "stock_at",
    "type",
)
STORE_INFO_FIELDS = ("addr", "code", "lat", "lng", "name", "type")
SALE_FIELDS = ("code", "created_at", "remain_stat", "stock_at")


def legacy_timestamp(text: str | None) -> str | None:
    """Convert an ISO 8601 tile timestamp to the 2020 format `yyyy/MM/dd HH:mm:ss` in KST.

    A timestamp without an offset is taken to be KST already. None stays None. An unparsable
    value raises ValueError naming it.
    """
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise ValueError(f"invalid tile timestamp {text!r}: expected ISO 8601") from error
    if moment.tzinfo is not None:
        moment = moment.astimezone(KST)
    return moment.strftime(LEGACY_TIME_FORMAT)


def legacy_store(row: dict[str, Any]) -> dict[str, Any]:
    """Convert one tile row to a store of the 2020 storesByAddr response."""
    converted = {
        "addr": row.get("addr"),
        "code": row["code"],
        "created_at": legacy_timestamp(row.get("created_at")),
        "lat": row.get("lat"),
        "lng": row.get("lng"),
        "name": row.get("name"),
        "remain_stat": row.get("remain_stat"),
        "stock_at": legacy_timestamp(row.get("stock_at")),
        "type": row.get("type"),
    }
    return {field: converted[field] for field in LEGACY_STORE_FIELDS}


def _all_rows(tile_document: dict[str, Any]) -> list[dict[str, Any]]:
    # Region tiles list stores without coordinates apart; the 2020 shape lists them with the
    # rest, with null lat and lng.
    return [*tile_document.get("stores", []), *tile_document.get("stores_without_location", [])]


def stores_by_addr_suffix(tile_id: str) -> str | None:
    """Return the key suffix of a region tile's storesByAddr file, or None for other tiles."""
    if not tile_id.startswith("region/"):
        return None
    return f"{STORES_BY_ADDR_DIRECTORY}/{tile_id.removeprefix('region/')}.json"


def region_address(region: dict[str, Any]) -> str:
    """Return the `address` value of a region's file: "서울특별시" or "경기도 수원시 영통구"."""
    sido: str = region["sido"]
    sigungu: str | None = region.get("sigungu")
    return f"{sido} {sigungu}" if sigungu else sido


def stores_by_addr_document(tile_document: dict[str, Any]) -> dict[str, Any]:
    """Build the storesByAddr-shaped document of a sido or sigungu tile."""
    region = tile_document.get("region")
    if not region:
        raise ValueError(f"tile {tile_document.get('tile')!r} has no region")
    stores = [legacy_store(row) for row in _all_rows(tile_document)]
    stores.sort(key=lambda store: store["code"])
    return {"address": region_address(region), "count": len(stores), "stores": stores}


def compat_documents(
    tile_id: str, tile_document: dict[str, Any]
) -> list[tuple[str, dict[str, Any]]]:
    """Return the 2020-compatible documents that a published tile feeds, as (key suffix, doc).

    A sido or sigungu tile gives one storesByAddr file. A grid tile gives none, because
    storesByGeo cannot be a static file. Raises ValueError when the document is of another tile.
    """
    if tile_document.get("tile") != tile_id:
        raise ValueError(f"tile document is for {tile_document.get('tile')!r}, not for {tile_id!r}")
    suffix = stores_by_addr_suffix(tile_id)
    if suffix is None:
        return []
    return [(suffix, stores_by_addr_document(tile_document))]


def newest_rows(tile_documents: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge the rows of many tiles into one row per store, sorted by code.

    A store is listed by several tiles (grid, sido, sigungu). Tiles are patched one by one, so
    for a moment they can disagree. The row with the highest `version` wins.
    """
    rows: dict[str, dict[str, Any]] = {}
    for document in tile_documents:
        for row in _all_rows(document):
            current = rows.get(row["code"])
            if current is None or current.get("version", 0) < row.get("version", 0):
                rows[row["code"]] = row
    return [rows[code] for code in sorted(rows)]


def _single_page(items_name: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    # NOTE: `count` and `page` (a string) follow a 2020 client's response struct. `totalCount`
    # and `totalPages` are not checked against the API's own documentation.
    return {
        "count": len(items),
        "page": "1",
        items_name: items,
        "totalCount": len(items),
        "totalPages": 1,
    }


def full_store_list(tile_documents: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Build the stores/json-shaped list of every store in the given tiles, on one page.

    Pass tiles that together cover every store: all sido tiles plus all grid tiles also cover
    stores without a region. Stores without coordinates have null lat and lng.
    """
    store_infos = [
        {field: row.get(field) for field in STORE_INFO_FIELDS}
        for row in newest_rows(tile_documents)
    ]
    return _single_page("storeInfos", store_infos)


def full_sales_list(tile_documents: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Build the sales/json-shaped stock list of every store in the given tiles, on one page."""
    sales = []
    for row in newest_rows(tile_documents):
        store = legacy_store(row)
        sales.append({field: store[field] for field in SALE_FIELDS})
    return _single_page("sales", sales)


def full_list_documents(
    tile_documents: Iterable[dict[str, Any]],
) -> list[tuple[str, dict[str, Any]]]:
    """Return the stores/json and sales/json documents with their key suffixes.

    For the 25,439 stores of the 2020 list the store file is 4.2 MB and the sales file 2.8 MB
    (compact UTF-8 JSON, every store reporting). The sales file changes with every stock report,
    so the publisher should rewrite it on a timer, not on every change.
    """
    documents = list(tile_documents)
    return [
        (STORE_LIST_SUFFIX, full_store_list(documents)),
        (SALES_LIST_SUFFIX, full_sales_list(documents)),
    ]
