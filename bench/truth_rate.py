"""Truth rate benchmark: how often the band a phone shows matches the band the store really has.

A window of the busiest real day (data/mask_when_empty) is replayed through the whole local
pipeline: submissions over HTTP to `chalice local`, the DynamoDB stream fed to the stream
handler (its own process), the tiles on the embedded S3, the tile server as origin (its own
process) and nginx as the CDN cache. Every 10 s of replayed time, each replayed store is looked
up the way a phone would: its smallest tile (grid tile, or its district's tile when it has no
coordinates) is fetched through nginx and the store's remain_stat read from it. Each sample is
compared with `ops.history.true_band`, the band the real feed recorded for that store at that
moment.

The replay runs `speed` times faster than real time, and so does every delay that belongs to
the system: nginx runs under libfaketime with its clock `speed` times faster, so max-age=5 and
stale-while-revalidate=5 last 5 s of replayed time; the stream is polled `speed` times more
often than an assumed four polls a second per shard for Lambda; the 10 s sampling period is
replayed time. Computing time cannot be scaled, so every real second the pipeline spends counts as
`speed` seconds of replayed time: the measured rate is a lower bound of what the same code
achieves in real time.

A tile shows remain_stat null for a store that showed stock (plenty, some or few) and whose
latest report is older than STOCKFEED_STALE_AFTER_S (2 hours); empty and break stay. The replay
sends the hours before the window within seconds, so that rule cannot fire during it.
`truth_rate_with_stale_rule` therefore also counts as wrong every sample of a store with stock
whose last report, in replayed time, is older than the limit. The last
report is taken from the day planned with every sale of 2 masks reported, as stores report.

The same samples are also scored for the 2020 feed, which showed the truth 5 to 10 minutes
late: its figures compare the truth at each sample with the truth 5 and 10 minutes earlier.

Sales between two band crossings change no band, so the replay sends only the crossings
(plan_day without sale_size). bench/write_path.py measures the full rate of sales.

The script ends by printing one JSON line of figures.
"""

import argparse
import http.client
import json
import tempfile
import threading
import time
from bisect import bisect_right
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from bench._nginx import caching_proxy
from bench._processes import SharedProgress, pump_stream, serve_tiles, spawn_context
from bench._stack import (
    HISTORY,
    PatientSubmissionClient,
    Stage,
    chalice_local,
    issue_keys,
    print_figures,
    publish_all_tiles,
    running_stage,
)
from chalicelib.stores import StoreRecord
from chalicelib.tiles import snapshot_from_item, tile_ids_for
from ops.history import (
    PlannedEvent,
    StoreDay,
    available_dates,
    is_nightly,
    load_history,
    observations,
    plan_day,
    true_band,
)
from ops.replay import ReplayResult, replay

# Bound that bench/run_all.py gives this script: set-up (about 40 s), the replay and scoring.
TIME_LIMIT_S = 360

DEFAULT_STORES = 120
DEFAULT_SPEED = 12.0
DEFAULT_WINDOW_MINUTES = 30
SAMPLE_PERIOD_S = 10.0
# Assumed interval between Lambda's polls of a stream shard (four a second), not measured.
LAMBDA_POLL_INTERVAL_S = 0.25
# The 2020 feed showed the truth this much later.
FEED_2020_DELAYS = {"5min": timedelta(minutes=5), "10min": timedelta(minutes=10)}
# The busiest day is the one with the most submissions when sales are planned 2 masks at a time.
BUSIEST_DAY_SALE_SIZE = 2
UNPACED_SPEED = 86_400.0
SETTLE_TIMEOUT_S = 30.0
SAMPLER_THREADS = 8


@dataclass(frozen=True, slots=True)
class Scenario:
    """The replayed day, its stores, their tiles and the events before and in the window."""

    day: date
    stores: dict[str, StoreDay]
    tiles: dict[str, str]
    before: list[PlannedEvent]
    window: list[PlannedEvent]
    window_start: datetime
    window_end: datetime
    # Store code -> submit times when every sale of 2 masks is reported, as stores did.
    report_times: dict[str, list[datetime]]


@dataclass(frozen=True, slots=True)
class Sample:
    """One store's band as a phone saw it, at a moment of the replayed day."""

    code: str
    at: datetime
    seen: str | None


def busiest_day(days: list[StoreDay]) -> date:
    def submissions(on: date) -> int:
        return len(plan_day(days, on, sale_size=BUSIEST_DAY_SALE_SIZE))

    return max(available_dates(days), key=submissions)


def smallest_tile(store: StoreRecord) -> str | None:
    """Return the grid tile of a located store, else its district's or province's tile."""
    tile_ids = tile_ids_for(snapshot_from_item(store.registry_item()))
    if not tile_ids:
        return None
    return tile_ids[0] if tile_ids[0].startswith("grid/") else tile_ids[-1]


def busiest_hour(days: Sequence[StoreDay]) -> datetime:
    """Return the start of the hour in which the stores' bands changed most (night excluded)."""
    per_hour: Counter[datetime] = Counter()
    for day in days:
        for item in observations(day):
            if not is_nightly(item.at):
                per_hour[item.at.replace(minute=0, second=0, microsecond=0)] += 1
    return max(per_hour.items(), key=lambda entry: (entry[1], entry[0]))[0]


def build_scenario(stores: list[StoreRecord], arguments: argparse.Namespace) -> Scenario:
    by_code = {store.code: store for store in stores}
    days = [day for day in load_history(HISTORY) if day.code in by_code]
    on = date.fromisoformat(arguments.day) if arguments.day else busiest_day(days)
    day_records = sorted((day for day in days if day.date == on), key=lambda day: day.code)

    tiles = {day.code: smallest_tile(by_code[day.code]) for day in day_records}
    located = [day for day in day_records if tiles[day.code] is not None]
    step = max(1, len(located) // arguments.stores)
    chosen = located[::step][: arguments.stores]

    window_start = busiest_hour(chosen)
    window_end = window_start + timedelta(minutes=arguments.window_minutes)
    plan = plan_day(chosen, on)
    report_times: dict[str, list[datetime]] = {day.code: [] for day in chosen}
    for event in plan_day(chosen, on, sale_size=BUSIEST_DAY_SALE_SIZE):
        report_times[event.code].append(event.submit_at)
    return Scenario(
        day=on,
        stores={day.code: day for day in chosen},
        tiles={day.code: str(tiles[day.code]) for day in chosen},
        before=[event for event in plan if event.submit_at < window_start],
        window=[event for event in plan if window_start <= event.submit_at < window_end],
        window_start=window_start,
        window_end=window_end,
        report_times=report_times,
    )


class TileReader:
    """Fetches tiles through the cache over keep-alive connections, one per thread."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._local = threading.local()
        self.errors = 0

    def bands(self, path: str) -> dict[str, str | None]:
        """Return store code -> remain_stat of one tile; empty when the fetch failed.

        A failed fetch leaves the phone with no band, so its samples count as wrong.
        """
        for _attempt in (1, 2):
            connection = self._connection()
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                body = response.read()
            except (http.client.HTTPException, OSError):
                # nginx closes a keep-alive connection after 1,000 requests, and a loaded
                # machine can time a request out: reconnect and try once more.
                self._local.connection = None
                continue
            if response.status != 200:
                break
            document = json.loads(body)
            # Region tiles list stores without coordinates apart from the located ones.
            rows = [*document["stores"], *document.get("stores_without_location", [])]
            return {row["code"]: row["remain_stat"] for row in rows}
        self.errors += 1
        return {}

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=10)
            self._local.connection = connection
        return connection


def sample_until(
    reader: TileReader,
    scenario: Scenario,
    prefix: str,
    speed: float,
    real_start: float,
) -> tuple[list[Sample], int]:
    """Look up every store every SAMPLE_PERIOD_S of replayed time; returns samples and rounds."""
    origin = scenario.window_start
    codes_by_path: dict[str, list[str]] = {}
    for code, tile_id in scenario.tiles.items():
        # Region tile names are Korean: the request line must be percent-encoded UTF-8.
        codes_by_path.setdefault(quote(f"/{prefix}/{tile_id}.json"), []).append(code)

    def replayed(moment: float) -> datetime:
        return origin + timedelta(seconds=(moment - real_start) * speed)

    def look(path: str) -> list[Sample]:
        bands = reader.bands(path)
        seen_at = replayed(time.monotonic())
        return [Sample(code, seen_at, bands.get(code)) for code in codes_by_path[path]]

    samples: list[Sample] = []
    rounds = 0
    with ThreadPoolExecutor(max_workers=SAMPLER_THREADS) as pool:
        while replayed(time.monotonic()) < scenario.window_end:
            due = real_start + rounds * SAMPLE_PERIOD_S / speed
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            for found in pool.map(look, list(codes_by_path)):
                samples.extend(found)
            rounds += 1
    return samples, rounds


@dataclass
class Scores:
    """Agreement counts over the samples."""

    total: int = 0
    agree: int = 0
    agree_with_plan: int = 0
    agree_but_recent_change: int = 0
    agree_and_reported_recently: int = 0
    feed_agree: Counter[str] | None = None


def score(samples: list[Sample], scenario: Scenario, max_age_s: int, stale_after_s: int) -> Scores:
    """Compare each sample with the truth, the replay's own plan and the 2020 feed.

    The tiles show remain_stat null for a store with stock whose latest report is older than
    `stale_after_s`. The replay compresses the hours before the window into seconds, so that
    rule never fires during it; `agree_and_reported_recently` counts the agreeing samples that
    it would have left showing a band.
    """
    planned = _planned_bands(scenario)
    stale_limit = timedelta(seconds=stale_after_s)
    scores = Scores(feed_agree=Counter())
    assert scores.feed_agree is not None
    for sample in samples:
        day = scenario.stores[sample.code]
        truth = true_band(day, sample.at)
        if truth is None:
            continue  # the store had not opened yet that day
        scores.total += 1
        if sample.seen == truth:
            scores.agree += 1
            # A copy max-age older, as a phone can get from a busy CDN, may show the old band.
            if true_band(day, sample.at - timedelta(seconds=max_age_s)) != truth:
                scores.agree_but_recent_change += 1
        if sample.seen == _band_at(planned[sample.code], sample.at):
            scores.agree_with_plan += 1
        last_report = _last_report_at(scenario.report_times[sample.code], sample.at)
        recent = last_report is not None and sample.at - last_report <= stale_limit
        # The rule leaves empty and break alone: leaving them takes a reported delivery or resume.
        if sample.seen == truth and (recent or truth in ("empty", "break")):
            scores.agree_and_reported_recently += 1
        for name, delay in FEED_2020_DELAYS.items():
            if true_band(day, sample.at - delay) == truth:
                scores.feed_agree[name] += 1
    return scores


def write_mismatches(path: Path, samples: list[Sample], scenario: Scenario) -> None:
    """Write one JSON line per sample that disagreed with the truth, for diagnosis."""
    planned = _planned_bands(scenario)
    with path.open("w", encoding="utf-8") as log:
        for sample in samples:
            truth = true_band(scenario.stores[sample.code], sample.at)
            if truth is None or sample.seen == truth:
                continue
            line = {
                "code": sample.code,
                "at": sample.at.isoformat(),
                "seen": sample.seen,
                "truth": truth,
                "planned": _band_at(planned[sample.code], sample.at),
            }
            log.write(json.dumps(line) + "\n")


def _planned_bands(scenario: Scenario) -> dict[str, list[PlannedEvent]]:
    planned: dict[str, list[PlannedEvent]] = {code: [] for code in scenario.stores}
    for event in [*scenario.before, *scenario.window]:
        planned[event.code].append(event)
    return planned


def _last_report_at(times: list[datetime], at: datetime) -> datetime | None:
    index = bisect_right(times, at) - 1
    return times[index] if index >= 0 else None


def _band_at(events: list[PlannedEvent], at: datetime) -> str | None:
    index = bisect_right([event.submit_at for event in events], at) - 1
    return events[index].remain_stat_after if index >= 0 else None


def _shift_a_day(events: list[PlannedEvent]) -> list[PlannedEvent]:
    # The replay driver derives submission ids from the occurred_at date and the event's place
    # in its plan, so the opening replay uses the previous date to keep its ids apart.
    return [replace(event, occurred_at=event.occurred_at - timedelta(days=1)) for event in events]


def wait_for_stream(progress: SharedProgress, records: int, quiet_s: float = 1.5) -> None:
    """Wait until the stream handler has taken `records` records and then been idle `quiet_s`.

    Each accepted submission writes one stream record. The handler's own writes to the store
    items (moving submission ids to the log) add more, hence the quiet period.
    """
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while time.monotonic() < deadline:
        handled = progress.records.value >= records
        if handled and time.time() - progress.last_batch_at.value > quiet_s:
            return
        time.sleep(0.2)


def run_replay(stage: Stage, scenario: Scenario, arguments: argparse.Namespace) -> dict[str, Any]:
    """Replay the scenario through the pipeline and score the samples; returns the figures."""
    context = spawn_context()
    environment = {**stage.aws.environment(), **stage.settings.as_environment()}
    stop = context.Event()
    reports = context.Queue()

    keys = issue_keys(stage.runtime, sorted(scenario.stores))
    progress = SharedProgress(context.Value("q", 0), context.Value("d", 0.0))
    pump_ready = context.Event()
    poll_interval_s = max(LAMBDA_POLL_INTERVAL_S / arguments.speed, 0.005)
    pump = context.Process(
        target=pump_stream,
        args=(
            str(arguments.work_dir / "stream-pump.log"),
            environment,
            stage.stream_arn,
            poll_interval_s,
            pump_ready,
            stop,
            progress,
            reports,
        ),
        name="stream-pump",
    )
    origin_port = context.Value("i", 0)
    origin_ready = context.Event()
    origin = context.Process(
        target=serve_tiles,
        args=(
            str(arguments.work_dir / "tile-origin.log"),
            environment,
            stage.settings.bucket_name,
            origin_port,
            origin_ready,
            stop,
            reports,
        ),
        name="tile-origin",
    )
    pump.start()
    origin.start()
    try:
        if not (pump_ready.wait(60) and origin_ready.wait(60)):
            raise TimeoutError("the stream pump or the tile origin did not start within 60 s")
        figures = _replay_through(stage, scenario, arguments, keys, progress, origin_port.value)
    finally:
        stop.set()
        for process in (pump, origin):
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()

    figures.update(_process_figures([reports.get(timeout=5) for _ in range(2)]))
    return figures


def _replay_through(
    stage: Stage,
    scenario: Scenario,
    arguments: argparse.Namespace,
    keys: dict[str, str],
    progress: SharedProgress,
    origin_port: int,
) -> dict[str, Any]:
    speed = arguments.speed
    no_tiles: Any = lambda _code: []  # noqa: E731 - freshness is scored from the samples

    with (
        chalice_local(stage.settings, arguments.work_dir / "chalice-local.log") as api_url,
        caching_proxy(f"http://127.0.0.1:{origin_port}", clock_speed=speed) as proxy_url,
    ):
        client = PatientSubmissionClient(api_url)
        opening = replay(
            _shift_a_day(scenario.before), client, keys, speed=UNPACED_SPEED, tiles_of=no_tiles
        )
        wait_for_stream(progress, opening.accepted)

        reader = TileReader(proxy_url)
        outcome: dict[str, ReplayResult] = {}

        def send_window() -> None:
            # ops.replay counts time from the plan's first event, and the samples from the
            # window's start, so the replay starts that much later.
            if scenario.window:
                lead = scenario.window[0].submit_at - scenario.window_start
                time.sleep(lead.total_seconds() / speed)
            outcome["window"] = replay(
                scenario.window, client, keys, speed=speed, tiles_of=no_tiles
            )

        real_start = time.monotonic()
        # A daemon thread, so that a failed sampler does not wait for the whole window to be sent.
        sender = threading.Thread(target=send_window, name="window-replay", daemon=True)
        sender.start()
        samples, rounds = sample_until(
            reader, scenario, stage.settings.tile_prefix, speed, real_start
        )
        sender.join()
        real_elapsed = time.monotonic() - real_start

    window = outcome["window"]
    settings = stage.settings
    scores = score(samples, scenario, settings.tile_max_age_s, settings.stale_after_s)
    if arguments.mismatch_log:
        write_mismatches(Path(arguments.mismatch_log), samples, scenario)
    return _figures(scenario, arguments, scores, samples, rounds, real_elapsed, opening, window) | {
        "truth_tile_fetch_errors": reader.errors
    }


def _figures(
    scenario: Scenario,
    arguments: argparse.Namespace,
    scores: Scores,
    samples: list[Sample],
    rounds: int,
    real_elapsed: float,
    opening: ReplayResult,
    window: ReplayResult,
) -> dict[str, Any]:
    total = scores.total
    feed = scores.feed_agree or Counter()
    return {
        "truth_rate": _share(scores.agree, total),
        "truth_rate_vs_replayed_plan": _share(scores.agree_with_plan, total),
        "truth_rate_busy_cache_lower_bound": _share(
            scores.agree - scores.agree_but_recent_change, total
        ),
        "truth_rate_with_stale_rule": _share(scores.agree_and_reported_recently, total),
        **{f"feed_2020_truth_rate_{name}": _share(feed[name], total) for name in FEED_2020_DELAYS},
        "truth_samples": total,
        "truth_samples_before_opening": len(samples) - total,
        "truth_rounds": rounds,
        "truth_day": scenario.day.isoformat(),
        "truth_window_start": scenario.window_start.isoformat(),
        "truth_window_end": scenario.window_end.isoformat(),
        "truth_stores": len(scenario.stores),
        "truth_tiles": len(set(scenario.tiles.values())),
        "truth_speed": arguments.speed,
        "truth_real_elapsed_s": round(real_elapsed, 1),
        "truth_window_submissions": window.accepted + window.rejected,
        "truth_rejected": opening.rejected + window.rejected,
        "truth_api_latency_p50_ms": _rounded(window.latency_percentile(50)),
    }


def _process_figures(reports: list[dict[str, Any]]) -> dict[str, Any]:
    pump = next(report for report in reports if "batches" in report)
    origin = next(report for report in reports if "batches" not in report)
    requests: Counter[str] = Counter(pump["requests"])
    batches = max(1, pump["batches"])
    records = max(1, pump["records"])
    dynamodb = sum(count for name, count in requests.items() if name.startswith("dynamodb."))
    return {
        "stream_batches": pump["batches"],
        "stream_records": pump["records"],
        "stream_records_per_batch": round(pump["records"] / batches, 2),
        "stream_handler_ms_per_batch": round(pump["handler_s"] * 1000 / batches, 1),
        "stream_handler_errors": pump["errors"],
        "tile_puts_per_batch": round(requests["s3.PutObject"] / batches, 2),
        "tile_gets_per_batch": round(requests["s3.GetObject"] / batches, 2),
        "tile_puts_per_record": round(requests["s3.PutObject"] / records, 3),
        "handler_dynamodb_requests_per_record": round(dynamodb / records, 3),
        "handler_requests_by_operation": dict(sorted(requests.items())),
        "truth_origin_requests": sum(origin["requests"].values()),
    }


def _share(part: int, total: int) -> float | None:
    return round(part / total, 5) if total else None


def _rounded(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Share of phone samples that show the truth.")
    parser.add_argument("--day", help="Day to replay, YYYY-MM-DD (default: the busiest).")
    parser.add_argument(
        "--stores", type=int, default=DEFAULT_STORES, help="Stores replayed and sampled."
    )
    parser.add_argument(
        "--speed", type=float, default=DEFAULT_SPEED, help="Replayed seconds per real second."
    )
    parser.add_argument(
        "--window-minutes",
        type=int,
        default=DEFAULT_WINDOW_MINUTES,
        help="Minutes of the day replayed and sampled, from its busiest hour.",
    )
    parser.add_argument("--mismatch-log", help="File to write the disagreeing samples to.")
    return parser.parse_args()


def main() -> None:
    arguments = parse_arguments()
    with tempfile.TemporaryDirectory(prefix="bench-truth-") as directory:
        arguments.work_dir = Path(directory)
        with running_stage(arguments.work_dir) as stage:
            scenario = build_scenario(stage.stores, arguments)
            publish_all_tiles(stage.runtime, stage.stores)
            figures = run_replay(stage, scenario, arguments)
    print_figures(figures)


if __name__ == "__main__":
    main()
