"""Write path benchmark: the busiest real hour of submissions, as fast as the local API takes them.

The busiest hour is found in the real stock history (data/mask_when_empty) planned with sales
of 2 masks, the usual purchase, so every hour's submissions are as many as real sales would
be. The stores of that hour are first given the stock and pause state they had when the hour
began (untimed). Then the hour's submissions go through `chalice local` over HTTP from
`workers` connections with no pacing: the schedule is compressed 3,600 times, so the API, not
the schedule, sets the pace. Each store's submissions stay in order on one connection.

DynamoDB requests per submission are counted in-process. The first submissions of the same
hour are sent again through chalice's test client in this process, against a second copy of
the stage on the same moto server. Its DynamoDB client counts every request it sends
(botocore's before-send event, so retries count too). chalice local runs in another process,
where requests cannot be counted without patching it.

The script ends by printing one JSON line of figures.
"""

import argparse
import json
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench._stack import (
    HISTORY,
    PatientSubmissionClient,
    RequestCounter,
    Stage,
    chalice_local,
    issue_keys,
    print_figures,
    running_stage,
)
from chalicelib.runtime import Runtime
from chalicelib.settings import Settings
from chalicelib.stores import StoreRecord
from ops.embedded import create_stage_resources
from ops.history import BREAK, KST, PlannedEvent, available_dates, load_history, plan_day
from ops.replay import ReplayResult, replay

# Bound that bench/run_all.py gives this script: set-up (about 30 s) and the hour's replay.
TIME_LIMIT_S = 300

SALE_SIZE = 2
# Replay speed that releases the whole hour within one second, so the API sets the pace.
UNPACED_SPEED = 3600.0
DEFAULT_WORKERS = 8
# Submissions sent again in-process to count DynamoDB requests.
DEFAULT_COUNTED = 1000


@dataclass(frozen=True, slots=True)
class BusiestHour:
    """The hour of the history with the most planned submissions, and its context."""

    day: date
    start: datetime
    events: list[PlannedEvent]
    earlier: list[PlannedEvent]


def find_busiest_hour(registered: set[str]) -> BusiestHour:
    """Plan every day with sales of SALE_SIZE and return the hour with the most submissions."""
    days = [day for day in load_history(HISTORY) if day.code in registered]
    best: BusiestHour | None = None
    for on in available_dates(days):
        plan = plan_day(days, on, sale_size=SALE_SIZE)
        per_hour = Counter(
            event.submit_at.replace(minute=0, second=0, microsecond=0) for event in plan
        )
        start, count = max(per_hour.items(), key=lambda entry: (entry[1], entry[0]))
        if best is None or count > len(best.events):
            end = start + timedelta(hours=1)
            best = BusiestHour(
                day=on,
                start=start,
                events=[event for event in plan if start <= event.submit_at < end],
                earlier=[event for event in plan if event.submit_at < start],
            )
    if best is None:
        raise RuntimeError(f"the history in {HISTORY} has no store of the store list")
    return best


def opening_events(hour: BusiestHour) -> list[PlannedEvent]:
    """Events that give each store of the hour the stock and pause state it had at its start.

    One delivery of the stock the plan had reached, then a pause when the store was paused.
    """
    last_state: dict[str, PlannedEvent] = {}
    paused: dict[str, bool] = {}
    for event in hour.earlier:
        last_state[event.code] = event
        if event.kind in ("pause", "resume"):
            paused[event.code] = event.kind == "pause"

    codes = {event.code for event in hour.events}
    opening: list[PlannedEvent] = []
    for code in sorted(codes & set(last_state)):
        state = last_state[code]
        if state.stock_after > 0:
            opening.append(_event(hour.start, code, "delivery", state.stock_after))
        if paused.get(code, False):
            opening.append(_event(hour.start, code, "pause", None))
    return opening


def _event(at: datetime, code: str, kind: Any, quantity: int | None) -> PlannedEvent:
    # The replay driver derives submission ids from the occurred_at date and the event's place
    # in its plan, so a date one day earlier keeps these ids apart from the hour's own.
    # stock_after and remain_stat_after are not read by the driver.
    return PlannedEvent(
        submit_at=at,
        code=code,
        kind=kind,
        quantity=quantity,
        occurred_at=at - timedelta(days=1),
        stock_after=quantity or 0,
        remain_stat_after=BREAK if kind == "pause" else "",
    )


def replay_hour(
    stage: Stage, hour: BusiestHour, work_dir: Path, workers: int
) -> tuple[ReplayResult, float]:
    """Send the hour through chalice local; returns the result and the elapsed seconds."""
    codes = sorted({event.code for event in hour.events})
    keys = issue_keys(stage.runtime, codes)
    no_tiles: Any = lambda _code: []  # noqa: E731 - the replay needs no freshness probe here

    with chalice_local(stage.settings, work_dir / "chalice-local.log") as api_url:
        client = PatientSubmissionClient(api_url)
        replay(opening_events(hour), client, keys, speed=UNPACED_SPEED, tiles_of=no_tiles)

        started = time.monotonic()
        result = replay(
            hour.events,
            client,
            keys,
            speed=UNPACED_SPEED,
            tiles_of=no_tiles,
            workers=workers,
        )
        elapsed = time.monotonic() - started
    return result, elapsed


def count_dynamodb_requests(
    stage: Stage, hour: BusiestHour, stores: list[StoreRecord], count: int
) -> tuple[int, Counter[str]]:
    """Send the hour's first `count` submissions in-process; returns (sent, requests by name)."""
    # Imported here: app.py reads its settings from the environment that running_stage sets.
    from chalice.test import Client

    import app

    settings = Settings(
        stage="dev",
        log_level="WARNING",
        table_name="bench-count-stores",
        bucket_name="bench-count-tiles",
        submissions_table_name="bench-count-submissions",
    )
    create_stage_resources(stage.aws, settings)

    events = hour.events[:count]
    codes = {event.code for event in events}
    runtime = Runtime(settings)
    runtime.registry.import_stores([store for store in stores if store.code in codes])
    keys = issue_keys(runtime, sorted(codes))
    opening = [event for event in opening_events(hour) if event.code in codes]

    counter = RequestCounter()
    app.use_runtime(runtime)
    try:
        with Client(app.app) as client:
            _send_in_process(client, opening, keys, "opening")
            counter.attach(runtime.dynamodb)
            _send_in_process(client, events, keys, "counted")
    finally:
        app.use_runtime(None)
    return len(events), counter.snapshot()


def _send_in_process(
    client: Any, events: Sequence[PlannedEvent], keys: dict[str, str], label: str
) -> None:
    for sequence, event in enumerate(events):
        body: dict[str, Any] = {
            "type": event.kind,
            "occurred_at": datetime.now(KST).isoformat(),
            "submission_id": f"bench-{label}-{event.code}-{sequence}",
        }
        if event.quantity is not None:
            body["quantity"] = event.quantity
        client.http.post(
            f"/v1/stores/{event.code}/submissions",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "Authorization": f"Bearer {keys[event.code]}",
            },
            body=json.dumps(body).encode("utf-8"),
        )


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Replay the busiest real hour through the API.")
    parser.add_argument(
        "--workers", type=int, default=DEFAULT_WORKERS, help="Concurrent HTTP connections."
    )
    parser.add_argument(
        "--counted",
        type=int,
        default=DEFAULT_COUNTED,
        help="Submissions sent again in-process to count DynamoDB requests.",
    )
    return parser.parse_args()


def main() -> None:
    arguments = parse_arguments()
    with (
        tempfile.TemporaryDirectory(prefix="bench-write-") as directory,
        running_stage(Path(directory)) as stage,
    ):
        hour = find_busiest_hour({store.code for store in stage.stores})
        result, elapsed = replay_hour(stage, hour, Path(directory), arguments.workers)
        counted, requests = count_dynamodb_requests(stage, hour, stage.stores, arguments.counted)

    sent = result.accepted + result.rejected
    dynamodb = {name: count for name, count in requests.items() if name.startswith("dynamodb.")}
    figures = {
        "submissions_per_s": round(sent / elapsed, 1) if elapsed > 0 else None,
        "submission_p50_ms": _rounded(result.latency_percentile(50)),
        "submission_p99_ms": _rounded(result.latency_percentile(99)),
        "write_hour": hour.start.isoformat(),
        "write_submissions": sent,
        "write_accepted": result.accepted,
        "write_rejected": result.rejected,
        "write_rejection_reasons": dict(result.rejection_reasons),
        "write_stores": len({event.code for event in hour.events}),
        "write_elapsed_s": round(elapsed, 2),
        "write_workers": arguments.workers,
        "dynamodb_requests_per_submission": round(sum(dynamodb.values()) / counted, 3)
        if counted
        else None,
        "dynamodb_requests_by_operation": {
            name.split(".", 1)[1]: round(count / counted, 4) for name, count in dynamodb.items()
        },
        "dynamodb_counted_submissions": counted,
    }
    print_figures(figures)


def _rounded(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None


if __name__ == "__main__":
    main()
