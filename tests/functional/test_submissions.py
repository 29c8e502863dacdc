"""The submission API over the Chalice test client, against the moto server."""

import itertools
import json
from typing import Any

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.functional

JSON = "application/json; charset=utf-8"
DELIVERY = {"type": "delivery", "quantity": 250, "occurred_at": "2020-03-17T09:00:00+09:00"}
SALE = {"type": "sale", "quantity": 2, "occurred_at": "2020-03-17T09:05:00+09:00"}


@pytest.fixture
def store(stage, real_store_list):
    stores = real_store_list.stores[:2]
    stage.runtime.registry.import_stores(stores)
    keys = {s.code: str(stage.runtime.keys.issue(s.code)) for s in stores}
    return stores[0].code, keys[stores[0].code], stores[1].code, keys[stores[1].code]


_ids = itertools.count()


def _post(api, code, body, key=None, content_type=JSON, language=None, raw=None, auto_id=True):
    if auto_id and isinstance(body, dict) and "submission_id" not in body and "events" not in body:
        body = {**body, "submission_id": f"test-{next(_ids)}"}
    headers = {"Content-Type": content_type}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if language:
        headers["Accept-Language"] = language
    payload = raw if raw is not None else json.dumps(body)
    return api.http.post(f"/v1/stores/{code}/submissions", headers=headers, body=payload)


def _error(response) -> dict[str, Any]:
    return json.loads(response.body)["error"]


def _version(stage, code) -> int:
    return int(stage.item(code).get("version", {"N": "0"})["N"])


def test_delivery_then_sale_returns_stock(api, store):
    code, key, _, _ = store

    delivered = _post(api, code, DELIVERY, key)
    sold = _post(api, code, SALE, key)

    assert delivered.status_code == 200
    assert json.loads(delivered.body)["stock"] == 250
    body = json.loads(sold.body)
    assert body["stock"] == 248
    assert body["remain_stat"] == "plenty"
    assert body["stock_at"] == "2020-03-17T09:00:00+09:00"
    assert sold.headers["Content-Type"] == JSON


def test_pause_shows_break_until_resume(api, store):
    code, key, _, _ = store
    _post(api, code, DELIVERY, key)

    paused = _post(api, code, {"type": "pause", "occurred_at": "2020-03-17T11:00:00+09:00"}, key)
    resumed = _post(api, code, {"type": "resume", "occurred_at": "2020-03-17T11:30:00+09:00"}, key)

    assert json.loads(paused.body)["remain_stat"] == "break"
    assert json.loads(resumed.body)["remain_stat"] == "plenty"


def test_time_without_offset_is_korea_time(api, store):
    code, key, _, _ = store

    response = _post(api, code, {**DELIVERY, "occurred_at": "2020-03-17T09:00:00"}, key)

    assert json.loads(response.body)["stock_at"] == "2020-03-17T09:00:00+09:00"


def test_utc_time_is_published_in_korea_time(api, store):
    code, key, _, _ = store

    response = _post(api, code, {**DELIVERY, "occurred_at": "2020-03-17T00:00:00Z"}, key)

    assert json.loads(response.body)["stock_at"] == "2020-03-17T09:00:00+09:00"


def test_missing_key_is_401(api, stage, store):
    code, _, _, _ = store

    response = _post(api, code, DELIVERY)

    assert response.status_code == 401
    assert _error(response)["field"] == "Authorization"
    assert _version(stage, code) == 0


def test_wrong_key_is_401(api, stage, store):
    code, key, _, _ = store
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")

    response = _post(api, code, DELIVERY, forged)

    assert response.status_code == 401
    assert _version(stage, code) == 0


def test_other_stores_key_is_403(api, stage, store):
    code, _, other_code, other_key = store

    response = _post(api, code, DELIVERY, other_key)

    assert response.status_code == 403
    assert other_code in _error(response)["message"]
    assert _version(stage, code) == 0


def test_revoked_key_is_401(api, stage, store):
    code, key, _, _ = store
    stage.runtime.keys.revoke(code)

    response = _post(api, code, DELIVERY, key)

    assert response.status_code == 401


def test_rotated_key_replaces_old(api, stage, store):
    code, old_key, _, _ = store
    new_key = str(stage.runtime.keys.issue(code))

    assert _post(api, code, DELIVERY, old_key).status_code == 401
    assert _post(api, code, DELIVERY, new_key).status_code == 200


def test_oversell_is_409_and_writes_nothing(api, stage, store):
    code, key, _, _ = store
    _post(api, code, DELIVERY, key)

    response = _post(api, code, {**SALE, "quantity": 251}, key)

    assert response.status_code == 409
    assert _error(response)["code"] == "oversell"
    assert _error(response)["field"] == "quantity"
    assert stage.item(code)["stock"]["N"] == "250"
    assert _version(stage, code) == 1


def test_sale_before_any_delivery_is_409(api, stage, store):
    code, key, _, _ = store

    response = _post(api, code, SALE, key)

    assert response.status_code == 409
    assert _error(response)["code"] == "no_stock"
    assert "stock" not in stage.item(code)


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"quantity": 2, "occurred_at": "2020-03-17T09:00:00+09:00"}, "type", "type_tag"),
        ({**SALE, "type": "refund"}, "type", "type_tag"),
        ({"type": "sale", "occurred_at": "2020-03-17T09:00:00+09:00"}, "quantity", "missing"),
        ({**SALE, "quantity": "2"}, "quantity", "integer"),
        ({**SALE, "quantity": 2.5}, "quantity", "integer"),
        ({**SALE, "quantity": 0}, "quantity", "range"),
        ({"events": []}, "events", "batch_size"),
        ({"events": [SALE] * 101}, "events", "batch_size"),
        (
            {
                "events": [
                    {**SALE, "submission_id": "a"},
                    {**SALE, "submission_id": "b", "quantity": 0},
                ]
            },
            "events.1.quantity",
            "range",
        ),
        ({"events": [{**SALE, "submission_id": "a", "type": "gift"}]}, "events.0.type", "type_tag"),
        ({**SALE, "quantity": -3}, "quantity", "range"),
        ({**SALE, "quantity": 1001}, "quantity", "range"),
        ({**DELIVERY, "quantity": 10_001}, "quantity", "range"),
        ({**SALE, "quantity": True}, "quantity", "integer"),
        ({"type": "sale", "quantity": 2}, "occurred_at", "missing"),
        ({**SALE, "occurred_at": "yesterday"}, "occurred_at", "timestamp"),
        ({**SALE, "occurred_at": "2020-02-30T09:00:00"}, "occurred_at", "timestamp"),
        ({**SALE, "occurred_at": 1584403200}, "occurred_at", "timestamp"),
        ({**SALE, "submission_id": 7}, "submission_id", "submission_id"),
        ({**SALE, "buyer_name": "홍길동"}, "buyer_name", "extra_forbidden"),
        ({**SALE, "submission_id": "has space"}, "submission_id", "submission_id"),
        ({**SALE, "submission_id": ""}, "submission_id", "submission_id"),
        ({**SALE, "submission_id": "x" * 65}, "submission_id", "submission_id"),
    ],
)
def test_invalid_body_names_field(api, stage, store, body, field, code):
    store_code, key, _, _ = store

    if "events" not in body:
        body = {"submission_id": "x-1", **body}

    response = _post(api, store_code, body, key, language="en")

    assert response.status_code == 400
    error = _error(response)
    assert error["field"] == field
    assert error["code"] == code
    assert _version(stage, store_code) == 0


def test_error_message_in_korean_by_default(api, store):
    code, key, _, _ = store

    response = _post(api, code, {**SALE, "quantity": 0}, key)

    assert "정수" in _error(response)["message"]


def test_error_message_in_english_on_request(api, store):
    code, key, _, _ = store

    response = _post(api, code, {**SALE, "quantity": 0}, key, language="en-US,en;q=0.9")

    assert "whole number from 1 to 1000" in _error(response)["message"]


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "Application/JSON;charset=UTF-8"],
)
def test_json_content_types_accepted(api, store, content_type):
    code, key, _, _ = store

    response = _post(api, code, DELIVERY, key, content_type=content_type)

    assert response.status_code == 200


def test_non_utf8_body_is_400(api, stage, store):
    code, key, _, _ = store
    raw = '{"type":"delivery","quantity":250,"occurred_at":"2020-03-17T09:00:00"}'.encode("utf-16")

    response = _post(api, code, None, key, raw=raw)

    assert response.status_code == 400
    assert _error(response)["code"] == "body_not_utf8"
    assert _version(stage, code) == 0


@pytest.mark.parametrize("raw", [b"", b"{", b"[1, 2]", b'"sale"', b"null"])
def test_non_object_body_is_400(api, store, raw):
    code, key, _, _ = store

    response = _post(api, code, None, key, raw=raw)

    assert response.status_code == 400


def test_unknown_store_is_401(api, stage, store):
    _, _, _, _ = store
    from chalicelib.keys import new_api_key

    key = new_api_key("99999999")

    response = _post(api, "99999999", DELIVERY, str(key))

    assert response.status_code == 401
    assert stage.item("99999999") is None


def test_health(api):
    response = api.http.get("/v1/health")

    assert response.status_code == 200


def test_submission_id_is_required(api, stage, store):
    code, key, _, _ = store

    response = _post(api, code, DELIVERY, key, language="en", auto_id=False)

    assert response.status_code == 400
    assert _error(response)["field"] == "submission_id"
    assert _error(response)["code"] == "missing"


def test_openapi_document_is_served(api):
    committed = json.loads((REPO_ROOT / "docs" / "openapi.json").read_text(encoding="utf-8"))

    response = api.http.get("/v1/openapi.json")

    assert response.status_code == 200
    assert json.loads(response.body) == committed
