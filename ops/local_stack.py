"""The local stack: the whole pipeline on one machine, with no AWS account.

Order of start-up: embedded AWS (moto server) -> table and bucket -> store import -> full tile
build -> Chalice API (`chalice local`) -> stream pump -> tile server -> replay of one real day.
The replay's submissions go through the HTTP API and reach the tiles only by way of the
DynamoDB stream and the same handler that runs in Lambda.
"""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import click

from chalicelib.keys import new_api_key
from chalicelib.regeneration import snapshots_from_items
from chalicelib.runtime import Runtime
from chalicelib.settings import Settings
from chalicelib.stores import StoreRecord, read_store_list
from chalicelib.tiles import StoreSnapshot, tile_ids_for
from ops.embedded import (
    EmbeddedAws,
    create_stage_resources,
    die_with_parent,
    embedded_aws,
    free_port,
    wait_for_port,
)
from ops.history import PlannedEvent, available_dates, load_history, plan_day
from ops.replay import FreshnessProbe, SubmissionClient, replay
from ops.site import publish_schemas, publish_site
from ops.stream_pump import StreamPump
from ops.tileserver import TileServer

REPO_ROOT = Path(__file__).resolve().parents[1]
STORE_LIST = REPO_ROOT / "data" / "kr-mask-stores-2020-03-15.csv"
HISTORY = REPO_ROOT / "data" / "mask_when_empty"
LOG_DIRECTORY = REPO_ROOT / "var"
# After the replay, how long to wait for the last submissions to reach the tiles.
SETTLE_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class LocalOptions:
    """Choices of `make run` and `make smoke`."""

    day: date | None
    speed: float
    store_limit: int | None
    api_port: int
    tiles_port: int
    interactive: bool
    # Add the figures beyond the smoke line (for benchmarks).
    report_all: bool = False


def run_local_stack(options: LocalOptions) -> dict[str, Any]:
    """Run the pipeline; returns the smoke figures. Blocks until Ctrl-C when interactive."""
    # SIGTERM (from `timeout`, a supervisor or CI) unwinds like Ctrl-C, so servers get stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    LOG_DIRECTORY.mkdir(exist_ok=True)
    with embedded_aws(log_path=str(LOG_DIRECTORY / "moto.log")) as aws:
        os.environ.update(aws.environment())
        settings = Settings(stage="dev", log_level="WARNING", aws_read_timeout_s=120)
        os.environ.update(settings.as_environment())
        runtime = Runtime(settings)
        stream_arn = _create_resources(aws, settings)
        stores = _import_stores(runtime)
        tiles_built = _build_tiles(runtime)
        publish_site(runtime.s3, settings.bucket_name)
        publish_schemas(runtime.s3, settings.bucket_name, settings.tile_prefix)
        stop = threading.Event()
        with _chalice_local(options.api_port, settings) as api_url:
            pump = _start_pump(aws, stream_arn, runtime, stop)
            tile_server = TileServer(options.tiles_port, runtime.s3, settings.bucket_name)
            tile_server.start_in_background()
            tiles_url = f"{tile_server.base_url}/{settings.tile_prefix}/"
            _print_urls(api_url, tiles_url, aws)
            result = _replay_day(options, runtime, stores, api_url, stop)
            manifest = runtime.bucket.read(runtime.bucket.manifest_key)
            tile_count = len(manifest.document["tiles"]) if manifest else 0
            summary = {
                "stores_imported": len(stores),
                "submissions_accepted": result.accepted,
                "submissions_rejected": result.rejected,
                "tiles_published": tile_count,
                "freshness_p95_s": _rounded(result.freshness_p95()),
            }
            extra_figures = {
                "freshness_max_s": _rounded(max(result.freshness_s, default=None)),
                "freshness_samples": len(result.freshness_s),
                "freshness_never_seen": result.never_seen,
                "submissions_failed": result.failed,
            }
            click.echo(
                f"Replay done: {result.accepted} accepted, {result.rejected} rejected, "
                f"{result.failed} failed after retries"
                f"{' ' + str(dict(result.rejection_reasons)) if result.rejection_reasons else ''}; "
                f"stream batches {pump.stats.batches} "
                f"({pump.stats.records} records, {pump.stats.handler_s:.1f} s in the handler); "
                f"full build wrote {tiles_built} tiles.",
                err=True,
            )
            runtime.regenerator.publish_full_lists()
            if options.report_all:
                summary |= extra_figures
            if options.interactive:
                _serve_until_interrupted(api_url, tiles_url)
            stop.set()
            tile_server.shutdown()
        return summary


def _rounded(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


def _create_resources(aws: EmbeddedAws, settings: Settings) -> str:
    stream_arn = create_stage_resources(aws, settings)
    click.echo(
        f"Embedded AWS at {aws.endpoint_url}: table {settings.table_name}, "
        f"bucket {settings.bucket_name}",
        err=True,
    )
    return stream_arn


def _import_stores(runtime: Runtime) -> list[StoreRecord]:
    store_list = read_store_list(STORE_LIST)
    with click.progressbar(
        length=len(store_list.stores), label="Importing stores", file=sys.stderr
    ) as bar:
        report = runtime.registry.import_stores(store_list.stores, progress=bar.update)
    click.echo(
        f"Imported {report.created} stores ({store_list.without_coordinates} without "
        f"coordinates, {store_list.without_region} without a region).",
        err=True,
    )
    return store_list.stores


def _build_tiles(runtime: Runtime) -> int:
    scan_started_at = runtime.regenerator.scan_marker()
    grouped = runtime.regenerator.group(snapshots_from_items(runtime.registry.scan()))
    with click.progressbar(length=len(grouped), label="Publishing tiles", file=sys.stderr) as bar:
        return runtime.regenerator.rebuild(
            grouped, scan_started_at=scan_started_at, progress=bar.update
        )


@contextlib.contextmanager
def _chalice_local(port: int, settings: Settings) -> Iterator[str]:
    port = port or free_port()
    chalice = Path(sys.executable).parent / "chalice"
    log = open(LOG_DIRECTORY / "chalice-local.log", "ab")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            str(chalice),
            "local",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--stage",
            "dev",
            "--no-autoreload",
        ],
        cwd=REPO_ROOT,
        preexec_fn=die_with_parent,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **settings.as_environment()},
    )
    try:
        wait_for_port(port, timeout_s=60, process=process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _start_pump(
    aws: EmbeddedAws, stream_arn: str, runtime: Runtime, stop: threading.Event
) -> StreamPump:
    # Imported here: app.py reads its settings from the environment set up above.
    import app

    app.use_runtime(runtime)
    pump = StreamPump(aws.client("dynamodbstreams"), stream_arn, app.on_store_change)
    # LATEST: the full build already covers the import, so the pump only follows what comes next.
    pump.start("LATEST")
    threading.Thread(target=pump.run, args=(stop,), name="stream-pump", daemon=True).start()
    return pump


def _print_urls(api_url: str, tiles_url: str, aws: EmbeddedAws) -> None:
    click.echo("", err=True)
    exports = " ".join(f"{name}={value}" for name, value in aws.environment().items())
    click.echo("  Ops CLI against this stack, from another terminal:", err=True)
    click.echo(f"    export {exports}", err=True)
    click.echo(f"  Map page       : {tiles_url.removesuffix('v1/')}index.html", err=True)
    click.echo(f"  Submission API : {api_url}/v1/stores/<code>/submissions", err=True)
    click.echo(f"  Manifest       : {tiles_url}manifest.json", err=True)
    click.echo(f"  Region tile    : {tiles_url}region/서울특별시/강남구.json", err=True)
    click.echo(f"  Grid tile      : {tiles_url}grid/13/6985/3172.json (Seoul City Hall)", err=True)
    click.echo("", err=True)


def _snapshot(store: StoreRecord) -> StoreSnapshot:
    return StoreSnapshot(
        code=store.code,
        name=store.name,
        addr=store.addr,
        type=store.type,
        lat=float(store.lat) if store.lat is not None else None,
        lng=float(store.lng) if store.lng is not None else None,
        sido=store.sido,
        sigungu=store.sigungu,
        stock=None,
        paused=False,
        stock_at=None,
        received_at=None,
        version=0,
    )


def _smallest_tile(store: StoreRecord) -> str:
    tile_ids = tile_ids_for(_snapshot(store))
    return tile_ids[0] if tile_ids[0].startswith("grid/") else tile_ids[-1]


def _plan(options: LocalOptions, registered: set[str]) -> list[PlannedEvent]:
    days = [day for day in load_history(HISTORY) if day.code in registered]
    dates = available_dates(days)
    on = options.day or max(dates, key=lambda d: sum(1 for day in days if day.date == d))
    plan = plan_day(days, on, store_limit=options.store_limit)
    replayed = len({event.code for event in plan})
    click.echo(
        f"Replaying {on}: {replayed} stores, {len(plan)} submissions, speed {options.speed:g}x.",
        err=True,
    )
    return plan


def _replay_day(
    options: LocalOptions,
    runtime: Runtime,
    stores: list[StoreRecord],
    api_url: str,
    stop: threading.Event,
) -> Any:
    by_code = {store.code: store for store in stores}
    plan = _plan(options, set(by_code))
    codes = sorted({event.code for event in plan})
    keys = {code: str(runtime.keys.issue(code, new_api_key(code))) for code in codes}
    # Freshness is timed on each store's smallest tile: its grid tile, or its sigungu tile when it
    # has no coordinates. The handler writes all of a store's tiles in the same batch, and
    # polling the province tiles (up to 1.3 MB each) would load the machine being measured.
    tiles = {code: [_smallest_tile(by_code[code])] for code in codes}
    probe = FreshnessProbe(runtime.bucket)
    threading.Thread(target=probe.run, args=(stop,), name="freshness-probe", daemon=True).start()
    with click.progressbar(length=len(plan), label="Replaying submissions", file=sys.stderr) as bar:
        result = replay(
            plan,
            SubmissionClient(api_url),
            keys,
            speed=options.speed,
            tiles_of=tiles.__getitem__,
            probe=probe,
            progress=bar.update,
        )
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while probe.pending and time.monotonic() < deadline:
        time.sleep(0.1)
    result.freshness_s = list(probe.freshness_s)
    result.never_seen = probe.pending
    return result


def _serve_until_interrupted(api_url: str, tiles_url: str) -> None:
    click.echo(
        f"Serving. Tiles at {tiles_url}manifest.json, API at {api_url}. Press Ctrl-C to stop.",
        err=True,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        click.echo("Stopping.", err=True)
