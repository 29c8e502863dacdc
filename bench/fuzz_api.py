"""Fuzz the submission API from its OpenAPI document; check that rejected requests write nothing.

schemathesis turns `chalicelib.openapi` into Hypothesis strategies, half of them for valid
bodies and half for invalid ones. Each generated request goes over HTTP to `chalice local` on
127.0.0.1, in front of the moto server. Generated cases are steered towards the code that
writes: most carry a real store code and its key, and valid bodies get event times the server
accepts, or a submission_id that was already used.

For every request the fuzzer records:
- a status of 500 or more (there must be none);
- a response that the document does not describe (status, content type or body schema);
- any change to the tables that the response does not account for. A rejected request must
  change nothing, and an accepted one must change the store's version and stock by exactly
  the quantities in its events.

Usage: `python -m bench.fuzz_api [--requests 10000]` from the repository root. The last line
printed is one JSON object.
"""

import argparse
import itertools
import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import requests
import schemathesis
from botocore.exceptions import BotoCoreError, ClientError
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.errors import FailureGroup

from chalicelib.clock import system_clock
from chalicelib.idempotency import SubmissionLog
from chalicelib.openapi import SUBMISSIONS_PATH, openapi_document
from chalicelib.runtime import Runtime
from chalicelib.settings import Settings
from chalicelib.stores import StoreRecord, read_store_list
from ops.embedded import (
    create_submissions_table,
    die_with_parent,
    embedded_aws,
    free_port,
    wait_for_port,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
STORE_LIST = REPO_ROOT / "data" / "kr-mask-stores-2020-03-15.csv"
KST = timezone(timedelta(hours=9))
# A stage that .chalice/config.json does not define. `chalice local` copies the chosen stage's
# environment_variables over the process environment, so with this one the STOCKFEED_*
# variables set here reach app.py unchanged.
CHALICE_STAGE = "test"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_S = 15.0
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Past this many, further write violations are counted but their text is dropped.
MAX_RECORDED_VIOLATIONS = 20
# Resident memory at which the fuzz bench stops its moto server, and how often it checks.
MAX_MOTO_RESIDENT_KB = 4 * 1024 * 1024
MEMORY_CHECK_INTERVAL_S = 5.0
# Age of the live events the fuzzer sends, and how often it prunes the store items.
LIVE_EVENT_AGE = timedelta(minutes=13)
PRUNE_EVERY_REQUESTS = 100
# After this many failed requests to chalice local the run ends: the server has most likely
# stopped, and every further request would only add to the count.
MAX_TRANSPORT_ERRORS = 20


@dataclass(frozen=True, slots=True)
class ApiServer:
    """A running `chalice local` and the stores it serves, with their keys."""

    base_url: str
    settings: Settings
    dynamodb: Any
    keys: dict[str, str]

    @property
    def codes(self) -> list[str]:
        return sorted(self.keys)


@contextmanager
def run_api_server(
    runtime: Runtime,
    environment: Mapping[str, str],
    stores: Sequence[StoreRecord],
    log_path: Path | None = None,
    port: int | None = None,
) -> Iterator[ApiServer]:
    """Import `stores`, issue their keys, and run `chalice local` for the runtime's tables.

    `environment` points boto3 at the embedded AWS (`EmbeddedAws.environment()`).
    """
    runtime.registry.import_stores(list(stores))
    keys = {store.code: str(runtime.keys.issue(store.code)) for store in stores}
    port = port or free_port()
    chalice = Path(sys.executable).parent / "chalice"
    command = [str(chalice), "local", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--stage", CHALICE_STAGE, "--no-autoreload"]
    log = open(log_path or os.devnull, "ab")  # noqa: SIM115 - closed in finally
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **environment, **runtime.settings.as_environment()},
        preexec_fn=die_with_parent,
    )
    try:
        wait_for_port(port, timeout_s=START_TIMEOUT_S, process=process)
        yield ApiServer(f"http://127.0.0.1:{port}", runtime.settings, runtime.dynamodb, keys)
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)
        log.close()


@dataclass(frozen=True, slots=True)
class TableSnapshot:
    """Store versions and stocks, and both tables' item counts, at one moment."""

    stores: dict[str, tuple[int, int]]  # store code -> (version, stock or 0)
    store_items: int
    submissions: int


def take_snapshot(dynamodb: Any, settings: Settings, codes: list[str]) -> TableSnapshot:
    """Read the version and stock of the stores in `codes`, and count both tables' items.

    The counts come from DescribeTable: moto 5.2.5 computes ItemCount from the table on every
    call (DynamoDB refreshes it only every few hours, so this needs moto). Scans instead: in
    one measurement, 600 COUNT scans of a 600-item table grew the moto server by 300 MB.
    """
    stores: dict[str, tuple[int, int]] = {}
    for code in codes:
        item = dynamodb.get_item(
            TableName=settings.table_name,
            Key={"code": {"S": code}},
            ConsistentRead=True,
            # Not the whole item: its `recent` map can be large.
            ProjectionExpression="#version, #stock",
            ExpressionAttributeNames={"#version": "version", "#stock": "stock"},
        ).get("Item", {})
        version = int(item.get("version", {"N": "0"})["N"])
        stock = int(item.get("stock", {"N": "0"})["N"])
        stores[code] = (version, stock)
    return TableSnapshot(
        stores,
        _item_count(dynamodb, settings.table_name),
        _item_count(dynamodb, settings.submissions_table_name),
    )


def _item_count(dynamodb: Any, table_name: str) -> int:
    count: int = dynamodb.describe_table(TableName=table_name)["Table"]["ItemCount"]
    return count


def _events_of(body: Any) -> list[dict[str, Any]]:
    if isinstance(body, dict) and isinstance(body.get("events"), list):
        return [event for event in body["events"] if isinstance(event, dict)]
    return [body] if isinstance(body, dict) else []


@dataclass(frozen=True, slots=True)
class Outcome:
    """The events of one request, grouped by what the response reports for each.

    `applied` events were newly applied. `replayed` events were applied once, either by an
    earlier request or by this one: when the SDK inside the API retries a request whose first
    attempt was written, the retry finds the id and the response says `replayed`.
    """

    applied: list[dict[str, Any]] = field(default_factory=list)
    replayed: list[dict[str, Any]] = field(default_factory=list)


def classify_events(body: Any, status: int, payload: Any) -> Outcome:
    """Sort the request's events by the response: newly applied, replayed, or rejected."""
    outcome = Outcome()
    if status != 200 or not isinstance(payload, dict):
        return outcome
    events = _events_of(body)
    if "results" not in payload:
        (outcome.replayed if payload.get("replayed") else outcome.applied).append(events[0])
        return outcome
    for result in payload["results"]:
        state = result.get("state") or {}
        if result.get("status") == 200:
            target = outcome.replayed if state.get("replayed") else outcome.applied
            target.append(events[result["index"]])
    return outcome


def expected_change(events: list[dict[str, Any]]) -> tuple[int, int]:
    """Return the (version, stock) change that applying `events` must cause."""
    stock = 0
    for event in events:
        if event.get("type") == "delivery":
            stock += event["quantity"]
        elif event.get("type") == "sale":
            stock -= event["quantity"]
    return len(events), stock


# Past this many replayed events in one request, only the range of the change is checked.
MAX_REPLAYED_COMBINATIONS = 8


def allowed_changes(outcome: Outcome) -> set[tuple[int, int]] | None:
    """Return every (version, stock) change the outcome allows; None when too many to list."""
    if len(outcome.replayed) > MAX_REPLAYED_COMBINATIONS:
        return None
    changes = set()
    for count in range(len(outcome.replayed) + 1):
        for written in itertools.combinations(outcome.replayed, count):
            changes.add(expected_change([*outcome.applied, *written]))
    return changes


def check_writes(
    before: TableSnapshot, after: TableSnapshot, code: str, outcome: Outcome
) -> list[str]:
    """Compare two snapshots with the change the response accounts for; return violations.

    Every update the API makes to a store item adds 1 to `version` in the same request, so an
    unchanged version means an unchanged item.
    """
    violations = []
    if after.store_items != before.store_items:
        violations.append(f"store items went from {before.store_items} to {after.store_items}")
    allowed = allowed_changes(outcome)
    for store_code, (version, stock) in after.stores.items():
        old_version, old_stock = before.stores.get(store_code, (0, 0))
        actual = (version - old_version, stock - old_stock)
        if store_code != code:
            permitted = {(0, 0)}
        elif allowed is None:
            low, high = len(outcome.applied), len(outcome.applied) + len(outcome.replayed)
            permitted = {actual} if low <= actual[0] <= high else set()
        else:
            permitted = allowed
        if actual not in permitted:
            violations.append(
                f"store {store_code}: (version, stock) changed by {actual}, "
                f"allowed {sorted(permitted)}"
            )
    logged = after.submissions - before.submissions
    # Only events older than the live window are logged at once, so up to one record each.
    written = len(outcome.applied) + len(outcome.replayed)
    if not 0 <= logged <= written:
        violations.append(f"submission log grew by {logged} for {written} applied events")
    return violations


@dataclass
class FuzzReport:
    """Counts of one fuzz run."""

    requests: int = 0
    server_errors: int = 0
    transport_errors: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    nonconforming: Counter[str] = field(default_factory=Counter)
    nonconforming_samples: list[str] = field(default_factory=list)
    write_violations: int = 0
    violation_samples: list[str] = field(default_factory=list)
    applied_events: int = 0
    elapsed_s: float = 0.0
    # Why the run stopped before `request_count`, when a server it needs stopped responding.
    aborted: str | None = None

    def record_violations(self, violations: list[str], case: Case[Any]) -> None:
        self.write_violations += len(violations)
        room = MAX_RECORDED_VIOLATIONS - len(self.violation_samples)
        self.violation_samples += [f"{v} after {case.as_curl_command()}" for v in violations][:room]


class _TimeBudgetSpent(Exception):
    """Ends the Hypothesis run once the fuzz run's time budget is spent."""


class _ServerLost(Exception):
    """Ends the Hypothesis run when the moto server or `chalice local` no longer responds."""


class _Steering:
    """Turns a generated case into one that reaches the code which writes, most of the time.

    The choices come from a seeded `random.Random`, not from Hypothesis: they depend on ids
    used earlier in the run, and Hypothesis requires draws that do not depend on outside state.
    """

    def __init__(self, server: ApiServer, random_seed: int) -> None:
        self._server = server
        self._random = random.Random(random_seed)
        self._used_ids: list[str] = []
        self._fresh = 0

    def steer(self, case: Case[Any], positive: bool) -> tuple[str, str | None]:
        """Rewrite the case's store and (for valid bodies) times and ids.

        Returns the store code and the Authorization header to send, or None to send the
        generated one.
        """
        codes = self._server.codes
        code = str(case.path_parameters.get("code", ""))
        if self._random.random() < 0.9:
            code = self._random.choice(codes)
            case.path_parameters["code"] = code
        authorization = None
        key_choice = self._random.choices(["own", "other", "generated"], weights=[8, 1, 1])[0]
        if key_choice != "generated" and code in self._server.keys:
            key_code = code if key_choice == "own" else next(c for c in codes if c != code)
            authorization = f"Bearer {self._server.keys[key_code]}"
        if positive:
            for event in _events_of(case.body):
                self._steer_event(event)
        return code, authorization

    def _steer_event(self, event: dict[str, Any]) -> None:
        now = datetime.now(KST).replace(microsecond=0)
        moment = self._random.choices(["live", "late", "generated"], weights=[3, 5, 2])[0]
        if moment == "live":
            # Near the end of the 15-minute live window, so that `prune_recent_ids` moves the
            # id out of the store item within minutes and the item stays small.
            event["occurred_at"] = (now - LIVE_EVENT_AGE).isoformat()
        elif moment == "late":
            event["occurred_at"] = (now - timedelta(hours=2)).isoformat()
        identity = self._random.choices(["fresh", "reuse", "generated"], weights=[6, 2, 2])[0]
        if identity == "fresh":
            self._fresh += 1
            event["submission_id"] = f"fuzz-{self._fresh}"
        elif identity == "reuse" and self._used_ids:
            event["submission_id"] = self._random.choice(self._used_ids)
        submission_id = event.get("submission_id")
        if isinstance(submission_id, str) and len(self._used_ids) < 1000:
            self._used_ids.append(submission_id)


def fuzz(
    server: ApiServer, request_count: int, random_seed: int, time_budget_s: float
) -> FuzzReport:
    """Send `request_count` generated requests, or fewer if `time_budget_s` runs out."""
    schema = schemathesis.openapi.from_dict(openapi_document())
    operation = schema[SUBMISSIONS_PATH]["POST"]
    strategies = {
        True: operation.as_strategy(GenerationMode.POSITIVE),
        False: operation.as_strategy(GenerationMode.NEGATIVE),
    }
    report = FuzzReport()
    steering = _Steering(server, random_seed)
    session = requests.Session()
    started = time.monotonic()
    snapshot = take_snapshot(server.dynamodb, server.settings, server.codes)

    @seed(random_seed)
    @settings(
        max_examples=request_count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(data=st.data())
    def one_request(data: st.DataObject) -> None:
        nonlocal snapshot
        if time.monotonic() - started > time_budget_s:
            raise _TimeBudgetSpent
        if report.requests % PRUNE_EVERY_REQUESTS == PRUNE_EVERY_REQUESTS - 1:
            prune_recent_ids(server)
            snapshot = take_snapshot(server.dynamodb, server.settings, server.codes)
        positive = data.draw(st.booleans(), label="valid body")
        case = data.draw(strategies[positive], label="case")
        code, authorization = steering.steer(case, positive)
        status, payload = _send(case, authorization, server, session, report)
        if report.transport_errors >= MAX_TRANSPORT_ERRORS:
            raise _ServerLost(f"{report.transport_errors} requests to chalice local failed")
        try:
            after = take_snapshot(server.dynamodb, server.settings, server.codes)
        except (BotoCoreError, ClientError) as error:
            raise _ServerLost(f"reading the tables failed: {error}") from error
        outcome = classify_events(case.body, status, payload)
        report.applied_events += len(outcome.applied)
        report.record_violations(check_writes(snapshot, after, code, outcome), case)
        snapshot = after

    try:
        with suppress(_TimeBudgetSpent):
            one_request()
    except _ServerLost as lost:
        report.aborted = str(lost)
    report.elapsed_s = round(time.monotonic() - started, 1)
    return report


def _send(
    case: Case[Any],
    authorization: str | None,
    server: ApiServer,
    session: requests.Session,
    report: FuzzReport,
) -> tuple[int, Any]:
    report.requests += 1
    request = case.as_transport_kwargs(base_url=server.base_url)
    if authorization is not None:
        # Set here, not on case.headers: schemathesis drops Authorization at send time from a
        # negative case whose mutation removed it, even after the header is put back.
        request["headers"]["Authorization"] = authorization
    try:
        response = session.request(**request, timeout=REQUEST_TIMEOUT_S)
    except requests.RequestException as error:
        report.transport_errors += 1
        report.nonconforming[f"transport error: {type(error).__name__}"] += 1
        return 0, None
    report.statuses[response.status_code] += 1
    if response.status_code >= 500:
        report.server_errors += 1
    try:
        case.validate_response(response, checks=CHECKS)
    except FailureGroup as group:
        for failure in group.exceptions:
            report.nonconforming[failure.title] += 1
        if len(report.nonconforming_samples) < MAX_RECORDED_VIOLATIONS:
            report.nonconforming_samples.append(str(group))
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, None


def prune_recent_ids(server: ApiServer) -> int:
    """Move aged submission ids from the store items to the log, as the stream handler does.

    Without it every live event would stay in its store item's `recent` map, and each write
    would pay for a larger item. moto 5.2.5 also keeps memory per write in proportion to the
    item's size: 1,500 writes to one growing item of a table with a stream took its server
    to 0.9 GB (0.4 GB without the stream).
    """
    records = []
    for code in server.codes:
        item = server.dynamodb.get_item(
            TableName=server.settings.table_name, Key={"code": {"S": code}}, ConsistentRead=True
        ).get("Item")
        if item is not None:
            records.append({"dynamodb": {"NewImage": item}})
    submission_log = SubmissionLog(
        server.dynamodb,
        server.settings.table_name,
        server.settings.submissions_table_name,
        window_s=server.settings.recent_window_s,
        retention_s=server.settings.retention_s,
        clock=system_clock,
    )
    return submission_log.prune(records)


def probe_read_operations(server: ApiServer) -> dict[str, int]:
    """GET the document's read-only paths once each; return their statuses."""
    return {
        path: requests.get(f"{server.base_url}{path}", timeout=REQUEST_TIMEOUT_S).status_code
        for path in ("/v1/health", "/v1/openapi.json")
    }


@contextmanager
def embedded_api_server(log_path: Path | None) -> Iterator[ApiServer]:
    """Start the moto server, create a stage's tables, and serve two real stores."""
    with embedded_aws() as aws:
        os.environ.update(aws.environment())
        suffix = uuid.uuid4().hex[:10]
        stage_settings = Settings(
            stage="test",
            table_name=f"stores-{suffix}",
            bucket_name=f"tiles-{suffix}",
            submissions_table_name=f"submissions-{suffix}",
        )
        dynamodb = aws.client("dynamodb")
        create_stores_table_without_stream(dynamodb, stage_settings.table_name)
        create_submissions_table(dynamodb, stage_settings.submissions_table_name)
        stores = read_store_list(STORE_LIST).stores[:2]
        runtime = Runtime(stage_settings)
        stop = threading.Event()
        guard = threading.Thread(
            target=_guard_memory, args=(aws.process, stop), name="moto-memory-guard", daemon=True
        )
        guard.start()
        try:
            with run_api_server(runtime, aws.environment(), stores, log_path) as server:
                yield server
        finally:
            stop.set()


def create_stores_table_without_stream(dynamodb: Any, table_name: str) -> None:
    """Create a stores table like `create_stores_table`, but without its DynamoDB stream.

    Nothing reads the stream during a fuzz run, and moto 5.2.5 keeps memory for every stream
    record: 300 late sales (transactions) grew its server to 523 MB with the stream and to
    125 MB without it, growing faster than linearly.
    """
    dynamodb.create_table(
        TableName=table_name,
        KeySchema=[{"AttributeName": "code", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "code", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.get_waiter("table_exists").wait(TableName=table_name)


def _guard_memory(process: subprocess.Popen[bytes], stop: threading.Event) -> None:
    # The machine is shared: a moto server past the limit is stopped, and the run then ends
    # with `fuzz_aborted` instead of pushing other processes into the kernel's OOM killer.
    status = Path(f"/proc/{process.pid}/status")
    while not stop.wait(MEMORY_CHECK_INTERVAL_S):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines())
        except OSError:
            return
        resident_kb = int(fields.get("VmRSS", "0 kB").split()[0])
        if resident_kb > MAX_MOTO_RESIDENT_KB:
            print(f"stopping the moto server: {resident_kb} kB resident", file=sys.stderr)
            process.terminate()
            return


# 10,000 generated requests took 803 s on two busy cores (moto grows with every request).
TIME_LIMIT_S = 900


def main(argv: list[str] | None = None) -> int:
    """Run the fuzzer, print a short report on stderr, and one JSON line on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000, help="requests to generate")
    parser.add_argument("--seed", type=int, default=20200317, help="Hypothesis seed")
    parser.add_argument(
        "--time-budget", type=float, default=3600.0, help="stop after this many seconds"
    )
    parser.add_argument("--log", type=Path, default=None, help="file for chalice local's log")
    options = parser.parse_args(argv)

    with embedded_api_server(options.log) as server:
        probes = probe_read_operations(server)
        report = fuzz(server, options.requests, options.seed, options.time_budget)

    print(f"read probes: {probes}", file=sys.stderr)
    print(f"statuses: {dict(sorted(report.statuses.items()))}", file=sys.stderr)
    for kind, count in report.nonconforming.most_common():
        print(f"nonconforming x{count}: {kind}", file=sys.stderr)
    for sample in report.nonconforming_samples[:3]:
        print(sample, file=sys.stderr)
    for sample in report.violation_samples:
        print(f"write violation: {sample}", file=sys.stderr)
    summary = {
        "fuzz_requests": report.requests,
        "fuzz_5xx": report.server_errors,
        "fuzz_transport_errors": report.transport_errors,
        "fuzz_nonconforming": sum(report.nonconforming.values()),
        "fuzz_write_violations": report.write_violations,
        "fuzz_applied_events": report.applied_events,
        "fuzz_elapsed_s": report.elapsed_s,
        "fuzz_aborted": report.aborted,
    }
    print(json.dumps(summary))
    return 1 if report.aborted else 0


if __name__ == "__main__":
    sys.exit(main())
