"""Tiles under stream faults and races, against the moto server.

Races are forced with barriers inside the bucket wrapper, not left to timing.
"""

import itertools
import json
import threading
from dataclasses import replace
from datetime import timedelta
from typing import Any

import jsonschema
import pytest

from chalicelib.publishing import TileBucket
from chalicelib.regeneration import StoreChange, TileRegenerator, snapshots_from_items
from chalicelib.runtime import Runtime
from chalicelib.settings import Settings
from chalicelib.tiles import sido_tile_id, snapshot_from_item
from tests.conftest import FIXED_NOW, REPO_ROOT

pytestmark = pytest.mark.functional

JSON = "application/json; charset=utf-8"
SCHEMAS = REPO_ROOT / "docs" / "schema"
_ids = itertools.count()


def _post(api, code, key, body):
    body = {"submission_id": f"publishing-{next(_ids)}", **body}
    return api.http.post(
        f"/v1/stores/{code}/submissions",
        headers={"Content-Type": JSON, "Authorization": f"Bearer {key}"},
        body=json.dumps(body),
    )


def _delivery(quantity, minutes_before_now=1):
    at = (FIXED_NOW - timedelta(minutes=minutes_before_now)).isoformat()
    return {"type": "delivery", "quantity": quantity, "occurred_at": at}


def _sale(quantity, minutes_before_now=1):
    at = (FIXED_NOW - timedelta(minutes=minutes_before_now)).isoformat()
    return {"type": "sale", "quantity": quantity, "occurred_at": at}


def _located(real_store_list, count, sido="서울특별시"):
    stores = [s for s in real_store_list.stores if s.lat is not None and s.sido == sido]
    return stores[:count]


def _all_objects(stage) -> dict[str, bytes]:
    bucket = stage.settings.bucket_name
    pages = stage.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="v1/")
    keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
    return {
        key: stage.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        for key in keys
        if not key.startswith("v1/schema/")
    }


def _row(tile, code):
    rows = [*tile["stores"], *tile.get("stores_without_location", [])]
    return next((row for row in rows if row["code"] == code), None)


class PausingBucket(TileBucket):
    """A tile bucket that stops before its first write of one key until released."""

    def __init__(self, *args: Any, pause_key: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pause_key = pause_key
        self.reached_write = threading.Event()
        self.may_write = threading.Event()

    def write(self, key: str, document: dict[str, Any], replaces_etag: str | None) -> None:
        if key == self.pause_key and not self.reached_write.is_set():
            self.reached_write.set()
            assert self.may_write.wait(30)
        super().write(key, document, replaces_etag)


class FailingBucket(TileBucket):
    """A tile bucket whose first `failures` writes fail like an S3 outage."""

    def __init__(self, *args: Any, failures: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failures = failures

    def write(self, key: str, document: dict[str, Any], replaces_etag: str | None) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("simulated S3 outage")
        super().write(key, document, replaces_etag)


def _regenerator(stage, bucket_class=TileBucket, **kwargs) -> TileRegenerator:
    settings = stage.settings
    bucket = bucket_class(
        stage.aws.client("s3"), settings.bucket_name, settings.tile_prefix, 5, **kwargs
    )
    return TileRegenerator(
        bucket,
        stage=settings.stage,
        zone=settings.timezone,
        clock=lambda: FIXED_NOW,
        stale_after_s=settings.stale_after_s,
    )


def _snapshot(stage, code):
    return snapshot_from_item(stage.item(code))


def test_concurrent_writers_keep_both_changes(stage, real_store_list):
    first, second = _located(real_store_list, 2)
    stage.runtime.registry.import_stores([first, second])
    stage.rebuild()
    tile_id = sido_tile_id(first.sido)
    slow = _regenerator(stage, PausingBucket, pause_key=f"v1/{tile_id}.json")
    fast = _regenerator(stage)
    now = FIXED_NOW.isoformat()
    first_now = replace(_snapshot(stage, first.code), version=5, stock=250, received_at=now)
    second_now = replace(_snapshot(stage, second.code), version=3, stock=10, received_at=now)
    change_a = StoreChange("1", None, first_now)
    change_b = StoreChange("2", None, second_now)

    thread = threading.Thread(target=slow.apply, args=([change_a],))
    thread.start()
    assert slow._bucket.reached_write.wait(30)  # the slow writer has read the tile
    fast.apply([change_b])  # the fast writer publishes first
    slow._bucket.may_write.set()  # the slow writer's If-Match now fails, so it re-reads
    thread.join(30)

    tile = stage.tile(tile_id)
    assert _row(tile, first.code)["remain_stat"] == "plenty"
    assert _row(tile, second.code)["remain_stat"] == "few"


def test_older_change_never_replaces_newer(stage, real_store_list):
    store = _located(real_store_list, 1)[0]
    stage.runtime.registry.import_stores([store])
    stage.rebuild()
    regenerator = _regenerator(stage)
    base = replace(_snapshot(stage, store.code), received_at=FIXED_NOW.isoformat())

    regenerator.apply([StoreChange("2", None, replace(base, version=7, stock=5))])
    regenerator.apply([StoreChange("1", None, replace(base, version=6, stock=500))])

    row = _row(stage.tile(sido_tile_id(store.sido)), store.code)
    assert row["version"] == 7
    assert row["remain_stat"] == "few"


def test_rebuild_equals_incremental_bytes(stage, api, app_module, real_store_list):
    stores = _located(real_store_list, 40)
    stage.runtime.registry.import_stores(stores)
    stage.rebuild()
    pump = stage.pump(app_module.on_store_change)
    for index, store in enumerate(stores[:25]):
        key = str(stage.runtime.keys.issue(store.code))
        _post(api, store.code, key, _delivery(100 + index))
        _post(api, store.code, key, _sale(index + 1))
    while pump.poll_once():
        pass
    incremental = _all_objects(stage)

    fresh = Settings(
        **{**stage.settings.model_dump(), "bucket_name": stage.settings.bucket_name + "-r"}
    )
    stage.s3.create_bucket(
        Bucket=fresh.bucket_name, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"}
    )
    rebuilt_runtime = Runtime(fresh, clock=lambda: FIXED_NOW)
    rebuilt_runtime.regenerator.rebuild(
        rebuilt_runtime.regenerator.group(snapshots_from_items(stage.runtime.registry.scan()))
    )
    rebuilt = _all_objects(replace_bucket(stage, fresh.bucket_name))

    assert incremental.keys() == rebuilt.keys()
    for key in incremental:
        assert incremental[key] == rebuilt[key], key


def replace_bucket(stage, bucket_name):
    class View:
        s3 = stage.s3
        settings = stage.settings.model_copy(update={"bucket_name": bucket_name})

    return View


def test_rebuild_keeps_rows_published_after_scan(stage, real_store_list):
    store = _located(real_store_list, 1)[0]
    stage.runtime.registry.import_stores([store])
    regenerator = stage.runtime.regenerator
    scan_started_at = regenerator.scan_marker()
    grouped = regenerator.group(snapshots_from_items(stage.runtime.registry.scan()))
    newer = replace(_snapshot(stage, store.code), version=9, stock=40, received_at=scan_started_at)

    regenerator.apply([StoreChange("1", None, newer)])  # the stream handler, mid-rebuild
    regenerator.rebuild(grouped, scan_started_at=scan_started_at)

    assert _row(stage.tile(sido_tile_id(store.sido)), store.code)["version"] == 9


def test_failed_put_stays_dirty_until_published(stage, api, app_module, real_store_list):
    store = _located(real_store_list, 1)[0]
    stage.runtime.registry.import_stores([store])
    stage.rebuild()
    key = str(stage.runtime.keys.issue(store.code))
    flaky = Runtime(stage.settings, clock=lambda: FIXED_NOW)
    flaky.__dict__["bucket"] = FailingBucket(
        stage.aws.client("s3"), stage.settings.bucket_name, "v1", 5, failures=3
    )
    app_module.use_runtime(flaky)
    pump = stage.pump(app_module.on_store_change)

    _post(api, store.code, key, _delivery(250))
    pump.poll_once()

    assert pump.stats.redelivered > 0
    assert pump.stats.abandoned == 0
    row = _row(stage.tile(sido_tile_id(store.sido)), store.code)
    assert row["remain_stat"] == "plenty"


def test_stale_store_shows_unknown_not_plenty(stage, api, app_module, real_store_list):
    store = _located(real_store_list, 1)[0]
    stage.runtime.registry.import_stores([store])
    stage.rebuild()
    key = str(stage.runtime.keys.issue(store.code))
    pump = stage.pump(app_module.on_store_change)
    _post(api, store.code, key, _delivery(250))
    pump.poll_once()
    later = FIXED_NOW + timedelta(seconds=stage.settings.stale_after_s + 60)
    app_module.use_runtime(Runtime(stage.settings, clock=lambda: later))

    scheduled_event = {
        "version": "0",
        "id": "1",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": later.isoformat(),
        "region": "ap-northeast-2",
        "resources": [],
        "detail": {},
    }

    result = app_module.refresh_stale_tiles(scheduled_event, None)

    row = _row(stage.tile(sido_tile_id(store.sido)), store.code)
    assert result["stores"] == 1
    assert row["remain_stat"] is None
    assert row["stock_at"] is not None


def test_demo_store_never_published_in_prod(stage, real_store_list):
    store = _located(real_store_list, 1)[0]
    demo = replace(store, source="demo")
    stage.runtime.registry.import_stores([demo])
    prod = Runtime(stage.settings.model_copy(update={"stage": "prod"}), clock=lambda: FIXED_NOW)

    prod.regenerator.rebuild(prod.regenerator.group(snapshots_from_items(prod.registry.scan())))

    manifest = prod.bucket.read(prod.bucket.manifest_key)
    assert manifest.document["tiles"] == {}
    assert manifest.document["test_data"] is False


def test_non_prod_tiles_carry_test_mark(stage, real_store_list):
    stage.runtime.registry.import_stores(_located(real_store_list, 1))

    stage.rebuild()

    tiles = {k: v for k, v in _all_objects(stage).items() if not k.startswith("v1/compat/")}
    document = json.loads(next(iter(tiles.values())))
    assert document["stage"] == "test"
    assert document["test_data"] is True


def test_tiles_match_published_schema(stage, api, app_module, real_store_list):
    stores = (
        _located(real_store_list, 30)
        + [s for s in real_store_list.stores if s.lat is None and s.sido][:3]
    )
    stage.runtime.registry.import_stores(stores)
    stage.rebuild()
    tile_schema = json.loads((SCHEMAS / "tile.schema.json").read_text())
    manifest_schema = json.loads((SCHEMAS / "manifest.schema.json").read_text())

    for key, body in _all_objects(stage).items():
        if key.startswith("v1/compat/"):
            continue  # the 2020-shaped copies follow the 2020 API, not this schema
        document = json.loads(body)
        schema = manifest_schema if key.endswith("manifest.json") else tile_schema
        jsonschema.validate(document, schema)


def test_schema_rejects_changed_field_types():
    tile_schema = json.loads((SCHEMAS / "tile.schema.json").read_text())
    row = {
        "code": "01234567",
        "name": "약국",
        "addr": "서울",
        "type": "01",
        "lat": "37.5",
        "lng": 127.0,
        "stock_at": None,
        "remain_stat": "plenty",
        "created_at": None,
        "version": 1,
    }
    tile = {
        "schema": "stockfeed.tile.v1",
        "tile": "grid/13/1/2",
        "kind": "grid",
        "region": None,
        "bounds": None,
        "stage": "dev",
        "test_data": True,
        "version": 1,
        "generated_at": None,
        "count": 1,
        "stores": [row],
    }

    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(tile, tile_schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            {**tile, "stores": [{**row, "lat": 37.5, "remain_stat": "lots"}]}, tile_schema
        )
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            {**tile, "stores": [{**row, "lat": 37.5, "created_at": "2020-03-17 09:00:00"}]},
            tile_schema,
        )
