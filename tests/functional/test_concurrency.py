"""Concurrent sales at one store lose no update and never oversell.

32 threads play 32 POS terminals of one store, each with its own submission ids. The threads
call the submission service in this process rather than `chalice local`: a Chalice app keeps
the current request in one attribute, so concurrent requests in one process would overwrite
each other's request. In Lambda an instance serves one request at a time, so concurrency meets
only in DynamoDB, which is what these tests exercise.

Every test runs against DynamoDB Local and the embedded moto server. moto 5.2.5's own server
applies concurrent writes to one item without a lock: under this load it failed some writes
with HTTP 500 ("dictionary changed size during iteration") after applying them, and let two
sales take the same unit of stock. The embedded server (ops/moto_server.py) therefore runs one
DynamoDB request at a time, so the moto runs check the API against that server, and DynamoDB
Local is the reference for DynamoDB's own behaviour.
"""

import pytest

from bench.submission_cost import (
    LATE_TIME,
    LIVE_TIME,
    SPARE_STOCK,
    LedgerStage,
    check_lost_updates,
    delivery_body,
    run_concurrent_sales,
)

pytestmark = pytest.mark.functional

CLIENTS = 32
SALES_PER_CLIENT = 50
# A late sale is a transaction and a read. The moto server runs DynamoDB requests one at a time,
# so 32 x 50 of them take minutes there. 32 x 5 still races every client against the others.
LATE_SALES_PER_CLIENT = 5


@pytest.mark.parametrize(
    ("occurred_at", "sales_per_client"),
    [(LIVE_TIME, SALES_PER_CLIENT), (LATE_TIME, LATE_SALES_PER_CLIENT)],
    ids=["live", "late"],
)
def test_concurrent_sales_lose_no_update(
    ledger_stage: LedgerStage, occurred_at: str, sales_per_client: int
) -> None:
    report = check_lost_updates(ledger_stage, CLIENTS, sales_per_client, occurred_at)

    # Accepted and replayed are both a 200; a replay means the SDK retried a written request.
    assert set(report.outcomes) <= {"accepted", "replayed"}, report.outcomes
    assert report.applied == CLIENTS * sales_per_client
    assert report.stored_stock == SPARE_STOCK
    assert report.lost_updates == 0
    assert report.lost_versions == 0


def test_live_sales_return_own_version(ledger_stage: LedgerStage) -> None:
    report = check_lost_updates(ledger_stage, CLIENTS, SALES_PER_CLIENT, LIVE_TIME)

    # A live sale's response is its own write's result (ReturnValues=ALL_NEW). A late sale's
    # response is read after the write and may include other clients' sales, so it is not
    # checked here.
    assert report.distinct_versions == report.outcomes.get("accepted", 0)


def test_concurrent_oversell_stops_at_zero(ledger_stage: LedgerStage) -> None:
    delivered = ledger_stage.submit(delivery_body("oversell-delivery", quantity=100))

    run = run_concurrent_sales(ledger_stage, clients=CLIENTS, sales_per_client=10)

    assert delivered.outcome == "accepted"
    assert run.outcomes["accepted"] + run.outcomes["replayed"] == 100, run.outcomes
    assert run.outcomes["InsufficientStockError"] == CLIENTS * 10 - 100, run.outcomes
    assert ledger_stage.stock() == 0
    assert all(0 <= (state.stock or 0) < 100 for state in run.states)
    # Each accepted sale saw its own stock level: no two sales took the same unit.
    stocks = [state.stock for state in run.states]
    assert len(set(stocks)) == len(stocks)
