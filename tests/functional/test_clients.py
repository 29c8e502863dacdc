"""The Python client and the ES module client against real tiles served over HTTP.

Tiles come from a full rebuild of real stores in the embedded AWS, with chosen stock. The
local CDN stand-in (ops/tileserver.py) serves them; it passes ETag and Cache-Control and
responds with 304.
"""

import json
import math
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from chalicelib.grid import cells_covering
from chalicelib.stores import StoreRecord
from chalicelib.tiles import sigungu_tile_id
from client.stockfeed_client import (
    MAX_RADIUS_M,
    StockfeedClient,
    StockfeedError,
    covering_tile_ids,
)
from ops.tileserver import TileServer
from tests.functional.published_stock import StockReport, publish_with_stock

pytestmark = pytest.mark.functional

DELIVERED_AT = "2020-03-17T09:00:00+09:00"
SIDO, SIGUNGU = "서울특별시", "중구"
STORE_COUNT = 40
RADIUS_M = 800.0
NODE_SCRIPT = Path(__file__).parent / "js" / "client_check.mjs"


@dataclass
class ServedTiles:
    """A stage whose tiles are served over HTTP, with the stores it holds."""

    stage: Any
    server: TileServer
    stores: list[StoreRecord]
    reports: dict[str, StockReport]

    @property
    def base_url(self) -> str:
        return f"{self.server.base_url}/v1/"


class FakeClock:
    """Seconds that only move when a test moves them."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _band_for(index: int) -> str | None:
    """Stock pattern: plenty, few, never reported (unknown)."""
    return ("plenty", "few", None)[index % 3]


@pytest.fixture
def served(stage: Any, real_store_list: Any) -> Iterator[ServedTiles]:
    stores = [
        store
        for store in real_store_list.stores
        if store.sido == SIDO and store.sigungu == SIGUNGU and store.lat is not None
    ][:STORE_COUNT]
    stage.runtime.registry.import_stores(stores)
    reports = {
        store.code: StockReport(_band_for(index), DELIVERED_AT, DELIVERED_AT)
        for index, store in enumerate(stores)
        if _band_for(index) is not None
    }
    publish_with_stock(stage, reports)

    server = TileServer(0, stage.s3, stage.settings.bucket_name)
    server.start_in_background()
    yield ServedTiles(stage=stage, server=server, stores=stores, reports=reports)
    server.shutdown()
    server.server_close()


class _StatusHandler(BaseHTTPRequestHandler):
    server: "StatusServer"

    def do_GET(self) -> None:
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class StatusServer(ThreadingHTTPServer):
    """Responds to every request with one status code and no body."""

    daemon_threads = True

    def __init__(self, status: int) -> None:
        super().__init__(("127.0.0.1", 0), _StatusHandler)
        self.status = status
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1/"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


@pytest.fixture
def forbidden_server() -> Iterator[StatusServer]:
    server = StatusServer(403)
    yield server
    server.stop()


@pytest.fixture
def broken_server() -> Iterator[StatusServer]:
    server = StatusServer(500)
    yield server
    server.stop()


def _approximate_distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Equirectangular distance: within 0.1% of great-circle distance below 10 km."""
    mean_latitude = math.radians((lat1 + lat2) / 2)
    dx = math.radians(lng2 - lng1) * math.cos(mean_latitude)
    dy = math.radians(lat2 - lat1)
    return 6_371_008.8 * math.hypot(dx, dy)


def _centre(served: ServedTiles) -> tuple[float, float]:
    first = served.stores[0]
    return float(first.lat), float(first.lng)  # type: ignore[arg-type]


def test_stores_near_filters_and_sorts(served):
    lat, lng = _centre(served)
    client = StockfeedClient(served.base_url)

    nearby = client.stores_near(lat, lng, RADIUS_M)

    expected = {
        store.code: _approximate_distance_m(lat, lng, float(store.lat), float(store.lng))
        for store in served.stores
    }
    inside = {code for code, distance in expected.items() if distance < RADIUS_M * 0.99}
    outside = {code for code, distance in expected.items() if distance > RADIUS_M * 1.01}
    codes = {store.code for store in nearby}
    assert inside <= codes
    assert not codes & outside
    assert nearby[0].code == served.stores[0].code
    assert nearby[0].distance_m == pytest.approx(0.0, abs=0.01)
    distances = [store.distance_m for store in nearby]
    assert distances == sorted(distances)
    for store in nearby:
        assert store.distance_m == pytest.approx(expected[store.code], rel=0.002, abs=1.0)


def test_stores_near_fetches_covering_tiles_only(served):
    lat, lng = _centre(served)
    client = StockfeedClient(served.base_url)

    client.stores_near(lat, lng, RADIUS_M)

    requested = covering_tile_ids(lat, lng, RADIUS_M)
    assert client.stats.requests == len(requested)
    assert {cell.tile_id for cell in cells_covering(lat, lng, RADIUS_M)} <= set(requested)
    assert len(requested) <= 4


def test_region_lists_region_tile(served):
    client = StockfeedClient(served.base_url)

    stores = client.region(SIDO, SIGUNGU)

    tile = served.stage.tile(sigungu_tile_id(SIDO, SIGUNGU))
    assert [store.code for store in stores] == [row["code"] for row in tile["stores"]]
    assert len(stores) == STORE_COUNT
    assert all(store.distance_m is None for store in stores)


def test_unknown_stock_never_available(served):
    client = StockfeedClient(served.base_url)

    stores = {store.code: store for store in client.region(SIDO, SIGUNGU)}

    for index, record in enumerate(served.stores):
        store = stores[record.code]
        if _band_for(index) is None:
            assert store.remain_stat is None
            assert not store.stock_known
            assert not store.is_available
        else:
            assert store.stock_known
            assert store.is_available


def test_missing_tile_means_no_data(served):
    client = StockfeedClient(served.base_url)

    assert client.region(SIDO, "없는구") == []
    assert client.stores_near(37.0, 130.0, 500) == []  # open sea between Korea and Ulleungdo
    assert client.stats.no_data >= 2


def test_forbidden_tile_means_no_data(forbidden_server):
    client = StockfeedClient(forbidden_server.base_url)

    assert client.region(SIDO, SIGUNGU) == []
    assert client.stats.no_data == 1


def test_server_error_raises(broken_server):
    client = StockfeedClient(broken_server.base_url)

    with pytest.raises(StockfeedError, match="HTTP 500"):
        client.region(SIDO, SIGUNGU)


def test_radius_limit_rejected(served):
    client = StockfeedClient(served.base_url)
    lat, lng = _centre(served)

    with pytest.raises(ValueError, match="invalid radius"):
        client.stores_near(lat, lng, MAX_RADIUS_M + 1)
    with pytest.raises(ValueError, match="invalid radius"):
        client.stores_near(lat, lng, 0)
    assert client.stats.requests == 0


def test_etag_revalidation_and_change(served):
    clock = FakeClock()
    client = StockfeedClient(served.base_url, clock=clock)

    first = client.region(SIDO, SIGUNGU)
    client.region(SIDO, SIGUNGU)
    assert client.stats.requests == 1
    assert client.stats.fresh_hits == 1

    clock.now += 60
    unchanged = client.region(SIDO, SIGUNGU)
    assert client.stats.requests == 2
    assert client.stats.not_modified == 1
    assert unchanged == first

    seller = served.stores[0]
    sold = StockReport("some", DELIVERED_AT, "2020-03-17T10:00:00+09:00")
    publish_with_stock(served.stage, {**served.reports, seller.code: sold}, version=2)
    clock.now += 60
    changed = {store.code: store for store in client.region(SIDO, SIGUNGU)}
    assert client.stats.requests == 3
    assert client.stats.not_modified == 1
    assert changed[seller.code].remain_stat == "some"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_es_module_matches_python_client(served, forbidden_server, broken_server):
    lat, lng = _centre(served)
    query = {
        "base": served.base_url,
        "lat": lat,
        "lng": lng,
        "radiusM": RADIUS_M,
        "sido": SIDO,
        "sigungu": SIGUNGU,
        "missingSigungu": "없는구",
        "forbiddenBase": forbidden_server.base_url,
        "brokenBase": broken_server.base_url,
    }

    completed = subprocess.run(
        ["node", str(NODE_SCRIPT), json.dumps(query)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    output = json.loads(completed.stdout)
    python_near = StockfeedClient(served.base_url).stores_near(lat, lng, RADIUS_M)
    assert [store["code"] for store in output["near"]] == [store.code for store in python_near]
    for from_node, from_python in zip(output["near"], python_near, strict=True):
        assert from_node["distance_m"] == pytest.approx(from_python.distance_m, abs=1e-6)
        assert from_node["available"] == from_python.is_available
        assert from_node["known"] == from_python.stock_known
    assert output["coveringTiles"] == covering_tile_ids(lat, lng, RADIUS_M)
    assert output["afterNear"]["requests"] == len(output["coveringTiles"])
    python_region = StockfeedClient(served.base_url).region(SIDO, SIGUNGU)
    assert output["region"] == [store.code for store in python_region]
    assert output["withinMaxAge"]["freshHits"] == 1
    assert output["withinMaxAge"]["requests"] == output["afterRegion"]["requests"]
    assert output["afterMaxAge"]["notModified"] == 1
    assert output["afterMaxAge"]["requests"] == output["afterRegion"]["requests"] + 1
    assert output["revalidatedCodes"] == output["region"]
    assert output["missing"] == []
    assert output["afterMissing"]["noData"] == output["afterMaxAge"]["noData"] + 1
    assert output["forbidden"] == []
    assert output["forbiddenStats"]["noData"] == 1
    assert output["largeRadius"] == "RangeError"
    assert output["serverError"] == "StockfeedError"
