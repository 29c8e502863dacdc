"""Sales in, tiles out: import, submission, stock, stream and tile, over HTTP to moto."""

import itertools
import json
from dataclasses import replace
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from chalicelib.errors import DemoDataInProdError
from chalicelib.grid import cell_for
from chalicelib.runtime import Runtime
from chalicelib.stores import StoreList, StoreRecord
from chalicelib.tiles import sido_tile_id, sigungu_tile_id
from ops.cli import cli
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.functional

JSON = "application/json; charset=utf-8"


_ids = itertools.count()


def _post(api: Any, code: str, key: str, body: dict[str, Any]) -> Any:
    body = {"submission_id": f"pipeline-{next(_ids)}", **body}
    return api.http.post(
        f"/v1/stores/{code}/submissions",
        headers={"Content-Type": JSON, "Authorization": f"Bearer {key}"},
        body=json.dumps(body),
    )


def _row(tile: dict[str, Any] | None, code: str) -> dict[str, Any] | None:
    assert tile is not None
    rows = [*tile["stores"], *tile.get("stores_without_location", [])]
    return next((row for row in rows if row["code"] == code), None)


def _located(stores: StoreList, count: int) -> list[StoreRecord]:
    return [store for store in stores.stores if store.lat is not None][:count]


def test_sale_reaches_every_tile_of_its_store(stage, api, app_module, real_store_list):
    store = _located(real_store_list, 1)[0]
    stage.runtime.registry.import_stores([store])
    stage.rebuild()
    pump = stage.pump(app_module.on_store_change)
    key = str(stage.runtime.keys.issue(store.code))

    delivered = _post(
        api,
        store.code,
        key,
        {"type": "delivery", "quantity": 250, "occurred_at": "2020-03-17T09:00:00"},
    )
    sold = _post(
        api,
        store.code,
        key,
        {"type": "sale", "quantity": 160, "occurred_at": "2020-03-17T10:15:00+09:00"},
    )
    pump.poll_once()

    assert delivered.status_code == 200
    assert sold.status_code == 200
    assert json.loads(sold.body)["remain_stat"] == "some"
    tile_ids = [
        cell_for(float(store.lat), float(store.lng)).tile_id,
        sido_tile_id(store.sido),
        sigungu_tile_id(store.sido, store.sigungu),
    ]
    for tile_id in tile_ids:
        row = _row(stage.tile(tile_id), store.code)
        assert row is not None, tile_id
        assert row["remain_stat"] == "some"
        assert row["stock_at"] == "2020-03-17T09:00:00+09:00"
        assert row["created_at"] == "2020-03-17T12:00:00+09:00"  # received, by the fixed clock
        assert row["version"] == 2
        assert stage.tile(tile_id)["generated_at"] == "2020-03-17T12:00:00+09:00"


def test_tile_lists_2020_field_names(stage, real_store_list):
    store = _located(real_store_list, 1)[0]
    stage.runtime.registry.import_stores([store])
    stage.rebuild()

    tile = stage.tile(sido_tile_id(store.sido))

    assert tile is not None
    assert tile["generated_at"] is None  # no store of this tile has reported yet
    assert tile["kind"] == "sido"
    row = tile["stores"][0]
    for field in (
        "code",
        "name",
        "addr",
        "type",
        "lat",
        "lng",
        "stock_at",
        "remain_stat",
        "created_at",
    ):
        assert field in row
    assert row["remain_stat"] is None  # never reported: unknown, not plenty


def test_tile_objects_carry_json_headers(stage, real_store_list):
    store = _located(real_store_list, 1)[0]
    stage.runtime.registry.import_stores([store])
    stage.rebuild()

    head = stage.s3.head_object(
        Bucket=stage.settings.bucket_name,
        Key=stage.runtime.bucket.object_key(sido_tile_id(store.sido)),
    )

    assert head["ContentType"] == "application/json; charset=utf-8"
    assert "max-age=" in head["CacheControl"]


def test_manifest_lists_every_tile(stage, real_store_list):
    stores = real_store_list.stores[:200]
    stage.runtime.registry.import_stores(stores)

    written = stage.rebuild()
    manifest = stage.runtime.bucket.read(stage.runtime.bucket.manifest_key)

    assert manifest is not None
    assert manifest.document["tile_count"] == written
    for tile_id, entry in manifest.document["tiles"].items():
        tile = stage.tile(tile_id)
        assert tile is not None
        assert entry["version"] == tile["version"]
        assert entry["count"] == tile["count"]


def test_store_without_coordinates_only_in_region_tiles(stage, real_store_list):
    unlocated = next(s for s in real_store_list.stores if s.lat is None and s.sido)
    stage.runtime.registry.import_stores([unlocated])

    stage.rebuild()
    manifest = stage.runtime.bucket.read(stage.runtime.bucket.manifest_key)

    assert manifest is not None
    tile_ids = set(manifest.document["tiles"])
    assert not any(tile_id.startswith("grid/") for tile_id in tile_ids)
    tile = stage.tile(sido_tile_id(unlocated.sido))
    assert tile["stores"] == []
    row = tile["stores_without_location"][0]
    assert row["code"] == unlocated.code
    assert "lat" not in row
    assert "lng" not in row


def test_import_twice_writes_nothing(stage, real_store_list):
    stores = real_store_list.stores[:300]
    pump = stage.pump(lambda event, context: {"batchItemFailures": []})
    first = stage.runtime.registry.import_stores(stores)
    while pump.poll_once():
        pass
    records_after_first = pump.stats.records

    second = stage.runtime.registry.import_stores(stores)
    while pump.poll_once():
        pass

    assert first.created == 300
    assert second.created == 0
    assert second.updated == 0
    assert second.unchanged == 300
    assert pump.stats.records == records_after_first  # no stream record: nothing was written


def test_newer_list_updates_what_changed(stage, real_store_list):
    stores = real_store_list.stores[:50]
    stage.runtime.registry.import_stores(stores)
    renamed = replace(stores[0], name=stores[0].name + " 2호점")
    newer = [renamed, *stores[2:], real_store_list.stores[50]]

    report = stage.runtime.registry.import_stores(newer, prune=True)

    assert report.created == 1
    assert report.updated == 1
    assert report.unchanged == 48
    assert report.absent_from_list == 1
    assert report.removed == 1
    assert stage.item(stores[1].code) is None
    assert stage.item(renamed.code)["name"]["S"] == renamed.name


def test_reimport_keeps_stock(stage, api, real_store_list):
    store = real_store_list.stores[0]
    stage.runtime.registry.import_stores([store])
    key = str(stage.runtime.keys.issue(store.code))
    _post(
        api,
        store.code,
        key,
        {"type": "delivery", "quantity": 120, "occurred_at": "2020-03-17T09:00:00+09:00"},
    )

    stage.runtime.registry.import_stores([replace(store, addr=store.addr + " 1층")])

    item = stage.item(store.code)
    assert item["stock"]["N"] == "120"
    assert item["addr"]["S"].endswith("1층")


def test_pruned_store_leaves_its_tiles(stage, app_module, real_store_list):
    stores = _located(real_store_list, 2)
    stage.runtime.registry.import_stores(stores)
    stage.rebuild()
    pump = stage.pump(app_module.on_store_change)

    stage.runtime.registry.import_stores(stores[:1], prune=True)
    pump.poll_once()

    gone = stores[1]
    assert _row(stage.tile(sido_tile_id(gone.sido)), gone.code) is None
    assert _row(stage.tile(sido_tile_id(stores[0].sido)), stores[0].code) is not None


def test_moved_store_changes_sigungu_tile(stage, app_module, real_store_list):
    store = _located(real_store_list, 1)[0]
    stage.runtime.registry.import_stores([store])
    stage.rebuild()
    pump = stage.pump(app_module.on_store_change)
    moved = replace(store, sigungu="테스트구")

    stage.runtime.registry.import_stores([moved])
    pump.poll_once()

    assert _row(stage.tile(sigungu_tile_id(store.sido, store.sigungu)), store.code) is None
    assert _row(stage.tile(sigungu_tile_id(store.sido, "테스트구")), store.code) is not None


def test_redelivered_batch_leaves_tiles_unchanged(stage, api, app_module, real_store_list):
    store = _located(real_store_list, 1)[0]
    stage.runtime.registry.import_stores([store])
    stage.rebuild()
    key = str(stage.runtime.keys.issue(store.code))
    captured: list[dict[str, Any]] = []

    def capture(event, context):
        captured.append(event)
        return app_module.on_store_change(event, context)

    pump = stage.pump(capture)
    _post(
        api,
        store.code,
        key,
        {"type": "delivery", "quantity": 250, "occurred_at": "2020-03-17T09:00:00+09:00"},
    )
    pump.poll_once()
    tile_id = sido_tile_id(store.sido)
    before = stage.s3.get_object(
        Bucket=stage.settings.bucket_name, Key=stage.runtime.bucket.object_key(tile_id)
    )["Body"].read()

    result = app_module.on_store_change(captured[0], None)
    after = stage.s3.get_object(
        Bucket=stage.settings.bucket_name, Key=stage.runtime.bucket.object_key(tile_id)
    )["Body"].read()

    assert result == {"batchItemFailures": []}
    assert after == before


def test_handler_publishes_tile_age_metric(
    stage, api, app_module, real_store_list, capsys, monkeypatch
):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "stockfeed-test-on_store_change")
    store = _located(real_store_list, 1)[0]
    stage.runtime.registry.import_stores([store])
    key = str(stage.runtime.keys.issue(store.code))
    pump = stage.pump(app_module.on_store_change)
    _post(
        api,
        store.code,
        key,
        {"type": "delivery", "quantity": 5, "occurred_at": "2020-03-17T09:00:00+09:00"},
    )

    pump.poll_once()

    metric_lines = [line for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    assert any('"TileAgeSeconds"' in line and '"Stage"' in line for line in metric_lines)


def test_malformed_record_is_reported_not_fatal(stage, api, app_module, real_store_list):
    store = _located(real_store_list, 1)[0]
    stage.runtime.registry.import_stores([store])
    stage.rebuild()
    key = str(stage.runtime.keys.issue(store.code))
    captured: list[dict[str, Any]] = []
    pump = stage.pump(lambda event, context: captured.append(event))
    _post(
        api,
        store.code,
        key,
        {"type": "delivery", "quantity": 250, "occurred_at": "2020-03-17T09:00:00+09:00"},
    )
    pump.poll_once()
    good = captured[0]["Records"][0]
    bad = {"eventID": "x", "eventName": "MODIFY", "dynamodb": {"SequenceNumber": "7"}}

    result = app_module.on_store_change({"Records": [bad, good]}, None)

    assert result == {"batchItemFailures": [{"itemIdentifier": "7"}]}
    assert _row(stage.tile(sido_tile_id(store.sido)), store.code)["remain_stat"] == "plenty"


@pytest.mark.slow
def test_whole_real_list_imports_and_publishes(stage, real_store_list):
    report = stage.runtime.registry.import_stores(real_store_list.stores)
    written = stage.rebuild()

    assert report.created == len(real_store_list.stores) == 25_439
    assert written > 2_000
    manifest = stage.runtime.bucket.read(stage.runtime.bucket.manifest_key)
    assert manifest is not None
    listed = sum(
        entry["count"]
        for tile_id, entry in manifest.document["tiles"].items()
        if tile_id.count("/") == 1 and tile_id.startswith("region/")
    )
    assert listed == 25_439  # every store is in exactly one sido tile
    again = stage.runtime.registry.import_stores(real_store_list.stores)
    assert again.unchanged == 25_439
    assert again.created == again.updated == 0
    _validate_every_tile(stage, manifest.document)


def _validate_every_tile(stage, manifest: dict[str, Any]) -> None:
    schemas = REPO_ROOT / "docs" / "schema"
    tile_schema = json.loads((schemas / "tile.schema.json").read_text())
    jsonschema.validate(manifest, json.loads((schemas / "manifest.schema.json").read_text()))
    validator = jsonschema.Draft202012Validator(tile_schema)
    for tile_id in manifest["tiles"]:
        errors = list(validator.iter_errors(stage.tile(tile_id)))
        assert errors == [], (tile_id, errors[:1])


def test_prod_rejects_demo_import(stage, real_store_list):
    demo = [replace(store, source="demo") for store in real_store_list.stores[:3]]
    prod = Runtime(stage.settings.model_copy(update={"stage": "prod"}))

    with pytest.raises(DemoDataInProdError):
        prod.registry.import_stores([real_store_list.stores[3], *demo])

    assert stage.item(real_store_list.stores[3].code) is None  # nothing was written


def test_dev_marks_demo_stores(stage, real_store_list):
    demo = replace(real_store_list.stores[0], source="demo")

    stage.runtime.registry.import_stores([demo])

    assert stage.item(demo.code)["source"]["S"] == "demo"


def test_cli_demo_import_into_prod_fails(aws, stage, tmp_path, monkeypatch):
    sample = tmp_path / "demo.csv"
    sample.write_text(
        "addr,code,latitude,longitude,name,type\n"
        "서울특별시 중구 세종대로 110,99000001,37.5663,126.9779,시험약국,01\n",
        encoding="utf-8",
    )
    prod = stage.settings.model_copy(update={"stage": "prod"})
    for name, value in prod.as_environment().items():
        monkeypatch.setenv(name, value)

    result = CliRunner().invoke(cli, ["import-stores", "--file", str(sample), "--demo"])

    assert result.exit_code != 0
    assert "demo" in result.output
    assert stage.item("99000001") is None
