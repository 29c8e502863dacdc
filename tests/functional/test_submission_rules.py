"""Retries, order and batches of the submission API, against the moto server."""

import json
from datetime import UTC, timedelta

import pytest

from chalicelib.runtime import Runtime
from tests.conftest import FIXED_NOW

pytestmark = pytest.mark.functional

JSON = "application/json; charset=utf-8"
NOW = FIXED_NOW.isoformat()


class MovableClock:
    def __init__(self) -> None:
        self.now = FIXED_NOW

    def __call__(self):
        return self.now


@pytest.fixture
def clock(stage, app_module):
    moving = MovableClock()
    stage.runtime = Runtime(stage.settings, clock=moving)
    app_module.use_runtime(stage.runtime)
    return moving


@pytest.fixture
def store(stage, clock, real_store_list):
    store = real_store_list.stores[0]
    stage.runtime.registry.import_stores([store])
    return store.code, str(stage.runtime.keys.issue(store.code))


def _at(minutes_before_now: float) -> str:
    return (FIXED_NOW - timedelta(minutes=minutes_before_now)).isoformat()


def _post(api, code, key, body):
    return api.http.post(
        f"/v1/stores/{code}/submissions",
        headers={"Content-Type": JSON, "Authorization": f"Bearer {key}", "Accept-Language": "en"},
        body=json.dumps(body),
    )


def _event(kind, submission_id, minutes_before_now=1.0, quantity=None):
    body = {"type": kind, "submission_id": submission_id, "occurred_at": _at(minutes_before_now)}
    if quantity is not None:
        body["quantity"] = quantity
    return body


def _stock(stage, code):
    return int(stage.item(code)["stock"]["N"])


def test_retry_returns_first_result_unchanged(api, stage, store):
    code, key = store
    _post(api, code, key, _event("delivery", "d1", quantity=250))
    first = _post(api, code, key, _event("sale", "s1", quantity=2))

    again = _post(api, code, key, _event("sale", "s1", quantity=2))

    assert again.status_code == 200
    assert json.loads(again.body)["replayed"] is True
    assert json.loads(again.body)["stock"] == json.loads(first.body)["stock"] == 248
    assert _stock(stage, code) == 248
    assert stage.item(code)["version"]["N"] == "2"


def test_same_id_other_body_is_409(api, stage, store):
    code, key = store
    _post(api, code, key, _event("delivery", "d1", quantity=250))
    _post(api, code, key, _event("sale", "s1", quantity=2))

    response = _post(api, code, key, _event("sale", "s1", quantity=3))

    assert response.status_code == 409
    assert json.loads(response.body)["error"]["code"] == "submission_conflict"
    assert _stock(stage, code) == 248


def test_same_instant_other_offset_is_same_body(api, stage, store):
    code, key = store
    _post(api, code, key, _event("delivery", "d1", quantity=250))
    utc = (FIXED_NOW - timedelta(minutes=1)).astimezone(UTC).isoformat()
    body = {"type": "sale", "submission_id": "s1", "quantity": 2}

    _post(api, code, key, {**body, "occurred_at": _at(1)})
    again = _post(api, code, key, {**body, "occurred_at": utc})

    assert json.loads(again.body)["replayed"] is True
    assert _stock(stage, code) == 248


def test_retry_days_later_is_recognised(api, stage, clock, store, app_module):
    code, key = store
    _post(api, code, key, _event("delivery", "d1", quantity=250))
    _post(api, code, key, _event("sale", "s1", quantity=2))
    pump = stage.pump(app_module.on_store_change, position="TRIM_HORIZON")

    clock.now = FIXED_NOW + timedelta(days=3)
    _post(
        api, code, key, {**_event("sale", "s2", quantity=1), "occurred_at": clock.now.isoformat()}
    )
    while pump.poll_once():
        pass
    again = _post(api, code, key, _event("sale", "s1", quantity=2))

    assert "s1" not in stage.item(code)["recent"]["M"]  # moved to the submission log
    assert json.loads(again.body)["replayed"] is True
    assert _stock(stage, code) == 247


def test_old_event_takes_logged_path_once(api, stage, store):
    code, key = store
    _post(api, code, key, _event("delivery", "d1", quantity=250))

    first = _post(api, code, key, _event("sale", "late-1", minutes_before_now=600, quantity=5))
    again = _post(api, code, key, _event("sale", "late-1", minutes_before_now=600, quantity=5))

    assert first.status_code == 200
    assert json.loads(first.body)["stock"] == 245
    assert json.loads(again.body)["replayed"] is True
    assert _stock(stage, code) == 245


def test_late_delivery_keeps_latest_stock_at(api, stage, store):
    code, key = store
    _post(api, code, key, _event("delivery", "d-new", minutes_before_now=5, quantity=100))

    late = _post(api, code, key, _event("delivery", "d-old", minutes_before_now=50, quantity=30))

    body = json.loads(late.body)
    assert late.status_code == 200
    assert body["stock"] == 130
    assert body["stock_at"] == _at(5)


def test_late_pause_does_not_override_resume(api, stage, store):
    code, key = store
    _post(api, code, key, _event("delivery", "d1", quantity=250))
    _post(api, code, key, _event("resume", "r1", minutes_before_now=2))

    late = _post(api, code, key, _event("pause", "p0", minutes_before_now=10))

    body = json.loads(late.body)
    assert body["superseded"] is True
    assert body["remain_stat"] == "plenty"


def test_sales_in_any_order_give_same_stock(api, stage, store):
    code, key = store
    _post(api, code, key, _event("delivery", "d1", minutes_before_now=30, quantity=100))

    for index, minutes in enumerate([3, 9, 1, 7, 5]):
        _post(api, code, key, _event("sale", f"s{index}", minutes_before_now=minutes, quantity=4))

    assert _stock(stage, code) == 80


def test_future_event_is_400(api, stage, store):
    code, key = store

    response = _post(api, code, key, _event("delivery", "d1", minutes_before_now=-10, quantity=5))

    assert response.status_code == 400
    assert json.loads(response.body)["error"]["code"] == "event_in_future"
    assert "stock" not in stage.item(code)


def test_event_older_than_retention_is_400(api, stage, store):
    code, key = store

    response = _post(
        api, code, key, _event("delivery", "d1", minutes_before_now=31 * 24 * 60, quantity=5)
    )

    assert response.status_code == 400
    assert json.loads(response.body)["error"]["code"] == "event_too_old"


def test_batch_reports_each_outcome(api, stage, store):
    code, key = store
    events = [
        _event("delivery", "b0", minutes_before_now=5, quantity=10),
        _event("sale", "b1", minutes_before_now=4, quantity=4),
        _event("sale", "b2", minutes_before_now=3, quantity=50),
        _event("sale", "b3", minutes_before_now=2, quantity=6),
    ]

    response = _post(api, code, key, {"events": events})

    results = json.loads(response.body)["results"]
    assert response.status_code == 200
    assert [result["status"] for result in results] == [200, 200, 409, 200]
    assert results[2]["error"]["code"] == "oversell"
    assert results[3]["state"]["stock"] == 0
    assert [result["index"] for result in results] == [0, 1, 2, 3]


def test_batch_with_one_invalid_event_writes_nothing(api, stage, store):
    code, key = store
    events = [_event("delivery", "b0", quantity=10), _event("sale", "b1", quantity=0)]

    response = _post(api, code, key, {"events": events})

    assert response.status_code == 400
    assert json.loads(response.body)["error"]["field"] == "events.1.quantity"
    assert "stock" not in stage.item(code)


def test_batch_retry_replays_every_event(api, stage, store):
    code, key = store
    events = [_event("delivery", "b0", quantity=10), _event("sale", "b1", quantity=3)]
    _post(api, code, key, {"events": events})

    again = json.loads(_post(api, code, key, {"events": events}).body)["results"]

    assert all(result["state"]["replayed"] for result in again)
    assert _stock(stage, code) == 7


def test_batch_without_key_is_401(api, stage, store):
    code, _ = store

    response = _post(api, code, "nope", {"events": [_event("delivery", "b0", quantity=10)]})

    assert response.status_code == 401
