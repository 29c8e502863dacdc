"""What a sale costs in DynamoDB: the requests the SDK sends and the capacity units they use.

Requests are counted on the client with botocore's `before-send` event, so SDK retries count
too. Capacity units come from ReturnConsumedCapacity=TOTAL, which DynamoDB Local reports and
moto does not (see bench/submission_cost.py). Every write pays for the whole item, one unit
per KB, so the expected figures hold only while the store item's `recent` map is small.
"""

import pytest

from bench.submission_cost import LedgerStage, SaleCosts, measure_sale_costs

pytestmark = pytest.mark.functional

SALES = 3


@pytest.fixture
def costs(ledger_stage: LedgerStage) -> SaleCosts:
    return measure_sale_costs(ledger_stage, SALES, with_capacity=False)


def test_sale_is_one_update_without_read(costs: SaleCosts) -> None:
    for cost in costs.first:
        assert cost.outcome == "accepted"
        assert cost.operations == ("UpdateItem",)


def test_retry_is_one_request_and_replayed(costs: SaleCosts) -> None:
    for cost in costs.retry:
        assert cost.outcome == "replayed"
        assert cost.operations == ("UpdateItem",)


def test_late_sale_is_transaction_then_read(costs: SaleCosts) -> None:
    # An event older than the live window is also logged in the submissions table, in the
    # same transaction. A transaction returns no item, so the response needs a read.
    for cost in costs.late:
        assert cost.outcome == "accepted"
        assert cost.operations == ("TransactWriteItems", "GetItem")


def test_late_retry_is_transaction_then_read(costs: SaleCosts) -> None:
    # Only the log record's condition fails, so the cancellation reasons carry no store item
    # and the state for the response is read. (When the store's condition fails too, for
    # example at zero stock, its old image comes back and the read is skipped.)
    for cost in costs.late_retry:
        assert cost.outcome == "replayed"
        assert cost.operations == ("TransactWriteItems", "GetItem")


@pytest.mark.parametrize("backend_client", ["dynamodb_local"], indirect=True)
def test_sale_write_units_on_dynamodb_local(ledger_stage: LedgerStage) -> None:
    costs = measure_sale_costs(ledger_stage, SALES, with_capacity=True)

    for cost in costs.first:
        assert cost.capacity.write == 1.0
        assert cost.capacity.read == 0.0
    for cost in costs.late:
        # DynamoDB Local 3.3.1 reports 2 units for each item of a transaction (the store item
        # and its log record), twice what a plain write of the same item costs.
        assert cost.capacity.write == 4.0
        assert cost.capacity.read == 1.0
