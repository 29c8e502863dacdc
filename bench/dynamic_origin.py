"""A bench-only dynamic read API that reads DynamoDB on every "stores near lat,lng" call.

It is the counterpart of the 2020 public API (storesByGeo), which queried a database for each app
read. It is the comparison for the static read path, so it is given the cheapest DynamoDB
design for the question: one item per Web Mercator grid cell (zoom 13) whose `stores`
attribute is the cell's store list as one JSON string. One request costs one BatchGetItem of
the one to four cells that the search circle touches, and no scan.

The per-cell item also keeps the comparison fair on the embedded AWS. moto 5.2.5 answers a
Query by reading every item of the table (moto/dynamodb/models/table.py), and converts each
attribute of a result in Python, so a store-per-item design, or a cell item holding a list of
maps, would measure moto's overhead rather than a request's. A key lookup of one string
attribute costs moto about what it costs DynamoDB: one round trip.

Run as a module it serves on 127.0.0.1 until SIGTERM:

    python -m bench.dynamic_origin --port 8100 --table bench-geo-stores

and reads AWS_ENDPOINT_URL like every boto3 client. GET /stats returns its request counters.
"""

import argparse
import json
import logging
import math
import signal
import threading
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
from botocore.config import Config

from chalicelib.grid import cell_for, cells_covering
from chalicelib.stores import StoreRecord

logger = logging.getLogger(__name__)

# Search radius when a request gives none: about what a phone shows at street level.
DEFAULT_RADIUS_M = 1000.0
# Largest radius served, so that one request reads a bounded number of cells.
MAX_RADIUS_M = 5000.0
EARTH_RADIUS_M = 6_371_000.0
# DynamoDB bills an eventually consistent read of up to 4 KB as half a read request unit.
READ_UNIT_BYTES = 4096
_BATCH_SIZE = 25


def create_geo_table(dynamodb: Any, table_name: str) -> None:
    """Create the table keyed by grid cell, one item per cell."""
    dynamodb.create_table(
        TableName=table_name,
        KeySchema=[{"AttributeName": "cell", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "cell", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.get_waiter("table_exists").wait(TableName=table_name)


def geo_items(stores: Iterable[StoreRecord]) -> list[dict[str, Any]]:
    """Build one item per grid cell, whose `stores` is the JSON list of its located stores."""
    by_cell: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for store in stores:
        if store.lat is None or store.lng is None:
            continue
        cell = cell_for(float(store.lat), float(store.lng)).tile_id
        by_cell[cell].append(_store_json(store))
    return [
        {"cell": {"S": cell}, "stores": {"S": json.dumps(rows, ensure_ascii=False)}}
        for cell, rows in sorted(by_cell.items())
    ]


def load_geo_table(
    dynamodb: Any, table_name: str, stores: Iterable[StoreRecord], workers: int = 4
) -> int:
    """Write the cell items of every located store; returns the number of items written."""
    items = geo_items(stores)
    batches = [items[i : i + _BATCH_SIZE] for i in range(0, len(items), _BATCH_SIZE)]

    def put(batch: list[dict[str, Any]]) -> int:
        requests = [{"PutRequest": {"Item": item}} for item in batch]
        while requests:
            response = dynamodb.batch_write_item(RequestItems={table_name: requests})
            requests = response.get("UnprocessedItems", {}).get(table_name, [])
        return len(batch)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return sum(pool.map(put, batches))


def item_size_bytes(item: dict[str, Any]) -> int:
    """DynamoDB size of an item of string attributes: UTF-8 lengths of names and values."""
    return sum(
        len(name.encode("utf-8")) + len(value["S"].encode("utf-8")) for name, value in item.items()
    )


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lng2 - lng1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


class StoresNearServer(ThreadingHTTPServer):
    """The dynamic read API on one table, with counters for the benchmark."""

    daemon_threads = True
    # wrk opens dozens of connections at once; the default backlog of 5 would refuse some.
    request_queue_size = 512

    def __init__(self, port: int, dynamodb: Any, table_name: str) -> None:
        super().__init__(("127.0.0.1", port), _StoresNearHandler)
        self.dynamodb = dynamodb
        self.table_name = table_name
        self._lock = threading.Lock()
        self.stats: dict[str, float] = {
            "requests": 0,
            "dynamodb_requests": 0,
            "items_read": 0,
            "read_units": 0.0,
        }

    def count(self, queries: int, items: int, read_units: float) -> None:
        with self._lock:
            self.stats["requests"] += 1
            self.stats["dynamodb_requests"] += queries
            self.stats["items_read"] += items
            self.stats["read_units"] += read_units

    def stores_near(self, lat: float, lng: float, radius_m: float) -> list[dict[str, Any]]:
        """Read every cell the circle touches and keep the stores inside it, nearest first."""
        cells = [cell.tile_id for cell in cells_covering(lat, lng, radius_m)]
        requests, items = self._read_cells(cells)
        found: list[tuple[float, dict[str, Any]]] = []
        read_units = 0.0
        for item in items:
            # An eventually consistent read costs half a unit per started 4 KB of each item.
            read_units += 0.5 * max(1, math.ceil(item_size_bytes(item) / READ_UNIT_BYTES))
            found.extend(_within(json.loads(item["stores"]["S"]), lat, lng, radius_m))
        self.count(requests, len(items), read_units)
        found.sort(key=lambda entry: entry[0])
        return [store for _distance, store in found]

    def _read_cells(self, cells: list[str]) -> tuple[int, list[dict[str, Any]]]:
        keys: list[dict[str, Any]] = [{"cell": {"S": cell}} for cell in cells]
        items: list[dict[str, Any]] = []
        requests = 0
        while keys:
            response = self.dynamodb.batch_get_item(RequestItems={self.table_name: {"Keys": keys}})
            requests += 1
            items.extend(response.get("Responses", {}).get(self.table_name, []))
            keys = response.get("UnprocessedKeys", {}).get(self.table_name, {}).get("Keys", [])
        return requests, items


def _within(
    rows: list[dict[str, Any]], lat: float, lng: float, radius_m: float
) -> Iterable[tuple[float, dict[str, Any]]]:
    for row in rows:
        distance = distance_m(lat, lng, row["lat"], row["lng"])
        if distance <= radius_m:
            yield distance, row


def _store_json(store: StoreRecord) -> dict[str, Any]:
    # The 2020 API's field names. The stock fields are null because this table has no stock.
    return {
        "code": store.code,
        "name": store.name,
        "addr": store.addr,
        "type": store.type,
        "lat": float(store.lat) if store.lat is not None else None,
        "lng": float(store.lng) if store.lng is not None else None,
        "stock_at": None,
        "remain_stat": None,
        "created_at": None,
    }


class _StoresNearHandler(BaseHTTPRequestHandler):
    server: StoresNearServer
    # Keep-alive connections, as API Gateway offers to apps.
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/stats":
            self._send_json(HTTPStatus.OK, dict(self.server.stats))
            return
        if parts.path != "/v1/stores-near":
            self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no route {parts.path}"})
            return
        query = parse_qs(parts.query)
        try:
            lat = float(query["lat"][0])
            lng = float(query["lng"][0])
            radius_m = min(float(query.get("m", [DEFAULT_RADIUS_M])[0]), MAX_RADIUS_M)
        except (KeyError, ValueError) as error:
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": f"invalid query: {error}"})
            return
        stores = self.server.stores_near(lat, lng, radius_m)
        self._send_json(HTTPStatus.OK, {"count": len(stores), "stores": stores})

    def _send_json(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("stores-near: " + format, *args)


def main() -> None:
    """Serve the dynamic read API until SIGTERM or Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1.")
    parser.add_argument("--table", required=True, help="Name of the geo table (see above).")
    arguments = parser.parse_args()

    config = Config(max_pool_connections=64, retries={"mode": "standard", "max_attempts": 3})
    server = StoresNearServer(
        arguments.port, boto3.client("dynamodb", config=config), arguments.table
    )
    # SIGTERM from the benchmark unwinds like Ctrl-C, so serve_forever returns.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
