"""Read path benchmark: static tiles behind an HTTP cache against a per-request DynamoDB API.

Static path: the real store list is imported and every tile published to the embedded S3.
ops/tileserver.py serves the bucket as the origin, and nginx caches it the way CloudFront is
configured (bench/_nginx.py). wrk loads the cache on loopback with GETs spread round robin over
the grid tiles of Seoul, and the origin's S3 reads are counted.

Dynamic path: bench/dynamic_origin.py serves "stores near lat,lng" by reading DynamoDB on
every request, as the 2020 API read a database per call. wrk loads it the same way, over
points at the locations of Seoul's stores.

Both wrk runs use the same threads, connections and duration on the same machine. The script
ends by printing one JSON line of figures. Requires nginx and wrk (apt-get install -y nginx wrk).
"""

import argparse
import gzip
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench._nginx import caching_proxy
from bench._stack import (
    REPO_ROOT,
    Stage,
    print_figures,
    publish_all_tiles,
    running_stage,
    stop_process,
)
from bench._wrk import WrkResult, run_wrk
from bench.dynamic_origin import DEFAULT_RADIUS_M, create_geo_table, load_geo_table
from chalicelib.stores import StoreRecord
from chalicelib.tiles import snapshot_from_item, tile_ids_for
from ops.embedded import die_with_parent, free_port, wait_for_port
from ops.tileserver import TileServer

# Bound that bench/run_all.py gives this script: set-up (about 45 s) and two wrk runs.
TIME_LIMIT_S = 240

SEOUL = "서울특별시"
DEFAULT_DURATION_S = 20
DEFAULT_THREADS = 2
DEFAULT_CONNECTIONS = 64
# Points the dynamic API is asked about: every n-th located store of Seoul, about 500.
DYNAMIC_POINTS = 500
GEO_TABLE = "bench-geo-stores"


class CountingS3:
    """An S3 client that counts the GetObject calls the origin makes, one per origin request."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()
        self.get_object_calls = 0

    def get_object(self, **kwargs: Any) -> Any:
        with self._lock:
            self.get_object_calls += 1
        return self._client.get_object(**kwargs)

    @property
    def count(self) -> int:
        with self._lock:
            return self.get_object_calls


def seoul_stores(stores: list[StoreRecord]) -> list[StoreRecord]:
    return [store for store in stores if store.sido == SEOUL and store.lat is not None]


def seoul_tile_ids(stores: list[StoreRecord]) -> list[str]:
    """Return the grid tiles that list at least one store of Seoul, sorted."""
    tile_ids = {tile_ids_for(snapshot_from_item(store.registry_item()))[0] for store in stores}
    return sorted(tile_id for tile_id in tile_ids if tile_id.startswith("grid/"))


def tile_sizes(stage: Stage, tile_ids: list[str]) -> tuple[float, float]:
    """Return the mean tile size in bytes, as stored and gzip-compressed as a CDN sends it."""
    s3 = stage.aws.client("s3")
    raw_sizes = []
    gzip_sizes = []
    for tile_id in tile_ids:
        key = stage.runtime.bucket.object_key(tile_id)
        body = s3.get_object(Bucket=stage.settings.bucket_name, Key=key)["Body"].read()
        raw_sizes.append(len(body))
        gzip_sizes.append(len(gzip.compress(body, compresslevel=6)))
    return sum(raw_sizes) / len(raw_sizes), sum(gzip_sizes) / len(gzip_sizes)


def check_conditional_get(proxy_url: str, path: str) -> tuple[bool, int]:
    """GET a tile through the cache, then again with its ETag; returns (ETag seen, status)."""
    with urllib.request.urlopen(proxy_url + path, timeout=10) as response:
        etag = response.headers.get("ETag")
    if not etag:
        return False, 0
    request = urllib.request.Request(proxy_url + path, headers={"If-None-Match": etag})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return True, response.status
    except urllib.error.HTTPError as error:
        # urllib reports 304 Not Modified as an HTTPError.
        return True, error.code


def measure_static(
    stage: Stage, work_dir: Path, tile_ids: list[str], arguments: argparse.Namespace
) -> dict[str, Any]:
    """Load the cache in front of the tile origin; returns the static path's figures."""
    origin_s3 = CountingS3(stage.aws.client("s3"))
    origin = TileServer(0, origin_s3, stage.settings.bucket_name)
    origin.start_in_background()
    prefix = stage.settings.tile_prefix
    paths = [f"/{prefix}/{tile_id}.json" for tile_id in tile_ids]
    try:
        with caching_proxy(origin.base_url) as proxy_url:
            before = origin_s3.count
            # Fill the cache before the load, so the latency percentiles show steady state. The
            # fill's origin requests stay counted, and the bound below includes them.
            for path in paths:
                with urllib.request.urlopen(proxy_url + path, timeout=30) as response:
                    response.read()
            result = run_wrk(
                proxy_url,
                paths,
                work_dir,
                duration_s=arguments.duration,
                threads=arguments.threads,
                connections=arguments.connections,
            )
            origin_requests = origin_s3.count - before
            etag_passed, conditional_status = check_conditional_get(proxy_url, paths[0])
    finally:
        origin.shutdown()
        origin.server_close()

    max_age_s = stage.settings.tile_max_age_s
    client_requests = result.requests + len(paths)
    # nginx fetches each tile once to fill the cache, then at most once per max-age; the
    # figure origin_requests_within_bound checks it.
    bound = len(tile_ids) * (math.floor(result.duration_s / max_age_s) + 1)
    return {
        **_wrk_figures("static", result),
        "origin_requests": origin_requests,
        "origin_request_bound": bound,
        "origin_requests_within_bound": origin_requests <= bound,
        "origin_requests_per_client_request": _ratio(origin_requests, client_requests),
        "read_tiles": len(tile_ids),
        "tile_max_age_s": max_age_s,
        "cache_passes_etag": etag_passed,
        "cache_if_none_match_status": conditional_status,
    }


@contextmanager
def dynamic_origin(stage: Stage, log_path: Path) -> Iterator[str]:
    """Run bench/dynamic_origin.py in its own process; yields its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "bench.dynamic_origin", "--port", str(port)]
    command += ["--table", GEO_TABLE]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **stage.aws.environment()},
            preexec_fn=die_with_parent,
        )
        try:
            wait_for_port(port, timeout_s=30, process=process)
            yield f"http://127.0.0.1:{port}"
        finally:
            stop_process(process)


def dynamic_paths(stores: list[StoreRecord]) -> list[str]:
    step = max(1, len(stores) // DYNAMIC_POINTS)
    chosen = stores[::step][:DYNAMIC_POINTS]
    radius = int(DEFAULT_RADIUS_M)
    return [f"/v1/stores-near?lat={store.lat}&lng={store.lng}&m={radius}" for store in chosen]


def measure_dynamic(
    stage: Stage, work_dir: Path, seoul: list[StoreRecord], arguments: argparse.Namespace
) -> dict[str, Any]:
    """Load the per-request DynamoDB API; returns the dynamic path's figures."""
    dynamodb = stage.aws.client("dynamodb")
    create_geo_table(dynamodb, GEO_TABLE)
    load_geo_table(dynamodb, GEO_TABLE, stage.stores)

    with dynamic_origin(stage, work_dir / "dynamic-origin.log") as origin_url:
        result = run_wrk(
            origin_url,
            dynamic_paths(seoul),
            work_dir,
            duration_s=arguments.duration,
            threads=arguments.threads,
            connections=arguments.connections,
        )
        with urllib.request.urlopen(origin_url + "/stats", timeout=10) as response:
            stats = json.load(response)

    answered = stats["requests"]
    return {
        **_wrk_figures("dynamic", result),
        "dynamic_dynamodb_requests_per_read": _ratio(stats["dynamodb_requests"], answered),
        "dynamic_items_read_per_read": _ratio(stats["items_read"], answered),
        "dynamic_read_units_per_read": _ratio(stats["read_units"], answered),
    }


def _wrk_figures(name: str, result: WrkResult) -> dict[str, Any]:
    return {
        f"{name}_rps": round(result.requests_per_s, 1),
        f"{name}_requests": result.requests,
        f"{name}_errors": result.error_count,
        f"{name}_latency_p50_ms": round(result.latency_p50_ms, 2),
        f"{name}_latency_p99_ms": round(result.latency_p99_ms, 2),
        f"{name}_response_bytes_mean": round(result.bytes / max(1, result.requests)),
    }


def _ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 6) if denominator else None


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Static tiles behind a cache vs a dynamic API.")
    parser.add_argument(
        "--duration", type=int, default=DEFAULT_DURATION_S, help="Seconds of each wrk run."
    )
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS, help="wrk threads.")
    parser.add_argument(
        "--connections", type=int, default=DEFAULT_CONNECTIONS, help="wrk open connections."
    )
    return parser.parse_args()


def main() -> None:
    arguments = parse_arguments()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-read-") as directory:
        work_dir = Path(directory)
        with running_stage(work_dir) as stage:
            publish_all_tiles(stage.runtime, stage.stores)
            seoul = seoul_stores(stage.stores)
            tile_ids = seoul_tile_ids(seoul)
            raw_mean, gzip_mean = tile_sizes(stage, tile_ids)

            static = measure_static(stage, work_dir, tile_ids, arguments)
            dynamic = measure_dynamic(stage, work_dir, seoul, arguments)

    figures = {
        **static,
        **dynamic,
        "static_vs_dynamic_rps_ratio": _ratio(static["static_rps"], dynamic["dynamic_rps"]),
        "read_duration_s": arguments.duration,
        "read_wrk_threads": arguments.threads,
        "read_wrk_connections": arguments.connections,
        "grid_tile_bytes_mean": round(raw_mean),
        "grid_tile_gzip_bytes_mean": round(gzip_mean),
        "read_path_wall_s": round(time.monotonic() - started, 1),
    }
    print_figures(figures)


if __name__ == "__main__":
    main()
