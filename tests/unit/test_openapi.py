"""The OpenAPI document: committed file up to date, request schemas taken from the models."""

import json
from pathlib import Path

from chalicelib.openapi import SUBMISSIONS_PATH, openapi_document, render_document
from chalicelib.submissions import MAX_BATCH_EVENTS, Delivery, Sale

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
REF_TEMPLATE = "#/components/schemas/{model}"


def test_committed_document_is_current() -> None:
    # Regenerate with: python -m chalicelib.openapi > docs/openapi.json
    assert COMMITTED.read_text(encoding="utf-8") == render_document()


def test_document_is_openapi_3_1() -> None:
    document = json.loads(render_document())

    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) == {SUBMISSIONS_PATH, "/v1/health", "/v1/openapi.json"}


def test_event_schemas_come_from_models() -> None:
    schemas = openapi_document()["components"]["schemas"]

    assert schemas["Sale"] == Sale.model_json_schema(ref_template=REF_TEMPLATE)
    assert schemas["Delivery"] == Delivery.model_json_schema(ref_template=REF_TEMPLATE)


def test_batch_size_limits_documented() -> None:
    events = openapi_document()["components"]["schemas"]["Batch"]["properties"]["events"]

    assert events["minItems"] == 1
    assert events["maxItems"] == MAX_BATCH_EVENTS


def test_submissions_require_store_key() -> None:
    operation = openapi_document()["paths"][SUBMISSIONS_PATH]["post"]

    assert operation["security"] == [{"storeKey": []}]
    assert {"200", "400", "401", "403", "409", "415"} <= set(operation["responses"])
