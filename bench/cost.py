"""Daily AWS bill at the 2020 scale, for stockfeed and for a per-request read API.

The workload is the 2020 public-mask programme: 25,000 stores, 5 million sales a day and 35
million app reads a day (peaking at 9.6 million an hour). Two designs serve it:

- stockfeed: sales through API Gateway and Lambda into DynamoDB; the stream handler Lambda
  rewrites tiles on S3; apps read the tiles from CloudFront.
- per-request API: the same write side, and one API Gateway call per app read, served by a
  Lambda that reads DynamoDB, as the 2020 API did.

Request counts per sale, per batch and per read come from the other benchmarks' figures in
bench/results.json when they are there (bench/run_all.py runs this script last), else from the
fallback values below; `cost_input_sources` in the output names which. Prices are for
ap-northeast-2 (Seoul), and each carries its source and the date it was read. docs/cost.md
explains every line.

The script ends by printing one JSON line of figures.
"""

import argparse
import json
import math
import random
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from bench._stack import REPO_ROOT, STORE_LIST, print_figures
from chalicelib.grid import GRID_ZOOM
from chalicelib.stores import read_store_list
from chalicelib.tiles import snapshot_from_item, tile_ids_for

TIME_LIMIT_S = 60
RESULTS = REPO_ROOT / "bench" / "results.json"

# The 2020 workload, from the product's issue.
STORES = 25_000
SALES_PER_DAY = 5_000_000
READS_PER_DAY = 35_000_000
PEAK_READS_PER_HOUR = 9_600_000
DAYS_PER_MONTH = 30
# Cache-Control max-age of the tiles (chalicelib/settings.py default).
TILE_MAX_AGE_S = 5


@dataclass(frozen=True, slots=True)
class Price:
    """A unit price in USD, with where it was read."""

    usd: float
    unit: str
    source: str


# Sources, all read on the date given. AWS's pricing pages fill their tables with JavaScript,
# so where their text had no numbers, the AWS Price List API values for ap-northeast-2 were
# taken from the public documents named here, which quote them.
_PL_CATALOG = (
    "AWS Price List offer files for ap-northeast-2, read 2026-10-01, as quoted in a public "
    "Korean cloud-cost catalogue"
)
_PL_DYNAMODB = (
    "AWS Price List API, usage types APN2-WriteRequestUnits and APN2-ReadRequestUnits, "
    "read 2026-06-12, as quoted in a public pricing module"
)
PRICES: dict[str, Price] = {
    "dynamodb_write_unit": Price(0.68 / 1e6, "write request unit", _PL_DYNAMODB),
    "dynamodb_read_unit": Price(0.1355 / 1e6, "read request unit", _PL_DYNAMODB),
    "lambda_request": Price(0.20 / 1e6, "request", _PL_CATALOG),
    "lambda_gb_second": Price(0.0000166667, "GB-second (x86)", _PL_CATALOG),
    "s3_put": Price(0.0045 / 1000, "PUT request", _PL_CATALOG),
    "s3_get": Price(0.0035 / 10_000, "GET request", _PL_CATALOG),
    "cloudfront_https_request": Price(
        0.0120 / 10_000,
        "HTTPS request",
        "ESTIMATE: the catalogue gives $0.0090 per 10,000 HTTP requests for Asia Pacific; "
        "the HTTPS rate was not found in an opened source and is assumed one third higher",
    ),
    "cloudfront_transfer_gb": Price(
        0.120, "GB to viewers in Asia Pacific (first 10 TB)", _PL_CATALOG
    ),
    "internet_transfer_gb": Price(
        0.126, "GB out of ap-northeast-2 to the internet (first 10 TB)", _PL_CATALOG
    ),
    "dynamodb_stream_read_by_lambda": Price(
        0.0,
        "GetRecords call",
        "Amazon DynamoDB Developer Guide, 'Evaluate your DynamoDB streams usage': read "
        "requests made by Lambda-based consumers are free; read 2026-12-04",
    ),
}

# API Gateway REST API calls, tiered by calls per month: (calls in tier, USD per million).
API_GATEWAY_TIERS = (
    (333_000_000, 3.50),
    (667_000_000, 2.80),
    (19_000_000_000, 2.38),
    (math.inf, 1.51),
)
API_GATEWAY_SOURCE = (
    "ESTIMATE for ap-northeast-2: the REST tiers of the AWS whitepaper 'Best Practices for "
    "Designing Amazon API Gateway Private APIs and Private Integration' (Table 4, no region "
    "named), read 2026-12-04"
)

# Values used when bench/results.json lacks the measured figure, with the benchmark that
# measures it.
FALLBACKS: dict[str, float] = {
    # bench/write_path.py: one conditional UpdateItem per sale.
    "dynamodb_requests_per_submission": 1.0,
    # bench/submission_cost.py (DynamoDB Local): write units of one sale's UpdateItem.
    "ddb_wcu_per_sale": 1.0,
    # bench/truth_rate.py: the stream handler's S3 requests per batch, and the batch size.
    "tile_puts_per_batch": 30.0,
    "tile_gets_per_batch": 20.0,
    "stream_records_per_batch": 15.0,
    "stream_handler_ms_per_batch": 1000.0,
    # bench/read_path.py: the size of a grid tile as a CDN sends it (gzip), and the per-read
    # API's DynamoDB read units and response size.
    "grid_tile_gzip_bytes_mean": 4200.0,
    "dynamic_read_units_per_read": 10.0,
    "dynamic_response_bytes_mean": 11_000.0,
}

# Assumptions: not measured here, with the reason for each value.
ASSUMPTIONS: dict[str, tuple[float, str]] = {
    "lambda_memory_gb": (1.0, "prod stage's lambda_memory_size (1024 MB, .chalice/config.json)"),
    "api_lambda_billed_ms": (
        20.0,
        "one DynamoDB request and JSON work per call; the same for both designs",
    ),
    "search_radius_m": (1000.0, "a phone's street-level search, the dynamic API's default"),
    "stream_shards": (4.0, "DynamoDB Streams shards of the stores table at this write rate"),
    "stream_polls_per_shard_per_s": (4.0, "assumed Lambda polling rate of a stream shard"),
    "active_hours_per_day": (12.0, "the hours in which pharmacies sold masks"),
    "log_writes_per_sale": (
        1.0,
        "the stream handler copies each submission id to the submission log once (PutItem)",
    ),
    "prune_writes_per_sale": (
        1.0,
        "upper bound: one REMOVE UpdateItem on the store item per aged id batch",
    ),
    "per_batch_files": (1.0, "the manifest, written once per batch besides the tiles"),
}


def load_measured(path: Path) -> tuple[dict[str, float], dict[str, str]]:
    """Measured figures from results.json, else the fallbacks; and the source of each."""
    figures: dict[str, Any] = {}
    if path.exists():
        figures = json.loads(path.read_text(encoding="utf-8")).get("figures", {})
    values: dict[str, float] = {}
    sources: dict[str, str] = {}
    for name, fallback in FALLBACKS.items():
        value = figures.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            values[name] = float(value)
            sources[name] = "measured"
        else:
            values[name] = fallback
            sources[name] = "fallback"
    return values, sources


def expected_tiles_per_read(radius_m: float, lat: float = 37.55) -> float:
    """Grid tiles a search circle's bounding box touches on average, at Seoul's latitude.

    Along each axis a box of width w over cells of width c touches 1 + w / c cells on average.
    """
    cell_m = 40_075_016.686 * math.cos(math.radians(lat)) / (1 << GRID_ZOOM)
    return (1 + 2 * radius_m / cell_m) ** 2


@cache
def store_tile_sets() -> tuple[tuple[str, ...], ...]:
    """Return the tiles of each store of the real list."""
    stores = read_store_list(STORE_LIST).stores
    return tuple(tuple(tile_ids_for(snapshot_from_item(store.registry_item()))) for store in stores)


def tile_count() -> int:
    return len({tile_id for tile_ids in store_tile_sets() for tile_id in tile_ids})


def expected_dirty_tiles(records: int, trials: int = 200) -> float:
    """Distinct tiles that a batch of `records` random stores touches, by sampling the list."""
    tile_sets = store_tile_sets()
    generator = random.Random(20200317)
    total = 0
    for _trial in range(trials):
        touched: set[str] = set()
        for tile_ids in generator.sample(tile_sets, records):
            touched.update(tile_ids)
        total += len(touched)
    return total / trials


def api_gateway_daily(calls_per_day: float) -> float:
    """Daily share of a month's tiered API Gateway bill at a constant daily volume."""
    remaining = calls_per_day * DAYS_PER_MONTH
    monthly = 0.0
    for size, per_million in API_GATEWAY_TIERS:
        in_tier = min(remaining, size)
        monthly += in_tier / 1e6 * per_million
        remaining -= in_tier
        if remaining <= 0:
            break
    return monthly / DAYS_PER_MONTH


def _assumed(name: str) -> float:
    return ASSUMPTIONS[name][0]


def _price(name: str) -> float:
    return PRICES[name].usd


def write_side(measured: dict[str, float]) -> dict[str, float]:
    """Daily cost of taking 5 million sales: the same for both designs."""
    memory = _assumed("lambda_memory_gb")
    api_seconds = _assumed("api_lambda_billed_ms") / 1000
    # The sale's UpdateItem and the later prune write each pay for the whole store item; the
    # submission log item is small (one unit).
    write_units = measured["ddb_wcu_per_sale"] * (1 + _assumed("prune_writes_per_sale"))
    write_units += _assumed("log_writes_per_sale")
    return {
        "api_gateway_submissions": api_gateway_daily(SALES_PER_DAY),
        "lambda_api_requests": SALES_PER_DAY * _price("lambda_request"),
        "lambda_api_compute": SALES_PER_DAY * api_seconds * memory * _price("lambda_gb_second"),
        "dynamodb_writes": SALES_PER_DAY * write_units * _price("dynamodb_write_unit"),
    }


def publishing_side(measured: dict[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    """Daily cost of the stream handler and its S3 writes; returns costs and the volumes."""
    # Each sale writes one stream record, and so does each prune write.
    records = SALES_PER_DAY * (1 + _assumed("prune_writes_per_sale"))
    active_s = _assumed("active_hours_per_day") * 3600
    poll_limit = _assumed("stream_shards") * _assumed("stream_polls_per_shard_per_s") * active_s
    batches = min(records, poll_limit)
    records_per_batch = records / batches

    # Scale the measured PUTs per batch by how many more distinct tiles a bigger batch touches.
    local_records = max(1, round(measured["stream_records_per_batch"]))
    target_records = max(1, round(records_per_batch))
    local_tiles = expected_dirty_tiles(local_records)
    target_tiles = expected_dirty_tiles(target_records)
    tile_puts = measured["tile_puts_per_batch"] * target_tiles / local_tiles
    tile_gets = measured["tile_gets_per_batch"] * target_tiles / local_tiles

    seconds = measured["stream_handler_ms_per_batch"] / 1000
    costs = {
        "lambda_stream_requests": batches * _price("lambda_request"),
        "lambda_stream_compute": batches
        * seconds
        * _assumed("lambda_memory_gb")
        * _price("lambda_gb_second"),
        "dynamodb_stream_reads": 0.0,
        "s3_tile_puts": batches * tile_puts * _price("s3_put"),
        "s3_tile_gets": batches * tile_gets * _price("s3_get"),
    }
    volumes = {
        "stream_records_per_day": records,
        "stream_batches_per_day": batches,
        "records_per_batch": records_per_batch,
        "tile_puts_per_batch": tile_puts,
        "tile_puts_per_day": batches * tile_puts,
    }
    return costs, volumes


def static_reads(measured: dict[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    """Daily cost of 35 million app reads served as tiles from CloudFront."""
    tiles_per_read = expected_tiles_per_read(_assumed("search_radius_m"))
    requests = READS_PER_DAY * tiles_per_read
    gigabytes = requests * measured["grid_tile_gzip_bytes_mean"] / 1e9
    # Upper bound, checked by bench/read_path.py: a cache fetches each tile at most once per
    # max-age, whatever the read rate. One cache is assumed (CloudFront with Origin Shield).
    origin_bound = tile_count() * 86_400 / TILE_MAX_AGE_S
    origin_requests = min(requests, origin_bound)
    costs = {
        "cloudfront_requests": requests * _price("cloudfront_https_request"),
        "cloudfront_transfer": gigabytes * _price("cloudfront_transfer_gb"),
        "s3_origin_gets": origin_requests * _price("s3_get"),
    }
    volumes = {
        "tiles_per_read": tiles_per_read,
        "cdn_requests_per_day": requests,
        "cdn_gigabytes_per_day": gigabytes,
        "origin_requests_per_day_bound": origin_requests,
    }
    return costs, volumes


def dynamic_reads(measured: dict[str, float]) -> dict[str, float]:
    """Daily cost of 35 million app reads, each one API call that reads DynamoDB."""
    seconds = _assumed("api_lambda_billed_ms") / 1000
    gigabytes = READS_PER_DAY * measured["dynamic_response_bytes_mean"] / 1e9
    return {
        "api_gateway_reads": api_gateway_daily(READS_PER_DAY + SALES_PER_DAY)
        - api_gateway_daily(SALES_PER_DAY),
        "lambda_read_requests": READS_PER_DAY * _price("lambda_request"),
        "lambda_read_compute": READS_PER_DAY
        * seconds
        * _assumed("lambda_memory_gb")
        * _price("lambda_gb_second"),
        "dynamodb_reads": READS_PER_DAY
        * measured["dynamic_read_units_per_read"]
        * _price("dynamodb_read_unit"),
        "internet_transfer": gigabytes * _price("internet_transfer_gb"),
    }


def _rounded(values: dict[str, float], digits: int = 2) -> dict[str, float]:
    return {name: round(value, digits) for name, value in values.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description="Daily AWS bill at the 2020 scale.")
    parser.add_argument("--results", type=Path, default=RESULTS, help="Measured figures file.")
    arguments = parser.parse_args()

    measured, sources = load_measured(arguments.results)
    writes = write_side(measured)
    publishing, publishing_volumes = publishing_side(measured)
    static, static_volumes = static_reads(measured)
    dynamic = dynamic_reads(measured)

    stockfeed_total = sum(writes.values()) + sum(publishing.values()) + sum(static.values())
    api_total = sum(writes.values()) + sum(dynamic.values())
    print_figures(
        {
            "daily_cost_usd": round(stockfeed_total, 2),
            "daily_cost_per_request_api_usd": round(api_total, 2),
            "cost_write_side_usd": _rounded(writes),
            "cost_publishing_usd": _rounded(publishing),
            "cost_static_reads_usd": _rounded(static),
            "cost_dynamic_reads_usd": _rounded(dynamic),
            "cost_volumes": _rounded({**publishing_volumes, **static_volumes}, 3),
            "cost_inputs": {name: round(value, 4) for name, value in measured.items()},
            "cost_input_sources": sources,
            "cost_peak_reads_per_s": round(PEAK_READS_PER_HOUR / 3600),
            "cost_stores": STORES,
        }
    )


if __name__ == "__main__":
    main()
