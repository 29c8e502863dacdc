"""Shared fixtures: one moto server for the session, fresh resources for every test.

Functional tests talk to the moto server over HTTP on 127.0.0.1, the way the deployed code
talks to AWS; nothing patches boto3.
"""

import os
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from chalicelib.regeneration import snapshots_from_items
from chalicelib.runtime import Runtime
from chalicelib.settings import Settings
from chalicelib.stores import StoreList, read_store_list
from ops.embedded import (
    EmbeddedAws,
    create_stage_resources,
    embedded_aws,
)
from ops.stream_pump import StreamPump

REPO_ROOT = Path(__file__).resolve().parents[1]
STORE_LIST = REPO_ROOT / "data" / "kr-mask-stores-2020-03-15.csv"
KST = timezone(timedelta(hours=9))
FIXED_NOW = datetime(2020, 3, 17, 12, 0, tzinfo=KST)


@pytest.fixture(scope="session")
def aws() -> Iterator[EmbeddedAws]:
    with embedded_aws() as server:
        saved = {name: os.environ.get(name) for name in server.environment()}
        os.environ.update(server.environment())
        yield server
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="session")
def real_store_list() -> StoreList:
    return read_store_list(STORE_LIST)


class Stage:
    """One test's table, bucket, stream and runtime in the embedded AWS."""

    def __init__(self, aws: EmbeddedAws) -> None:
        suffix = uuid.uuid4().hex[:10]
        self.settings = Settings(
            stage="test",
            table_name=f"stores-{suffix}",
            bucket_name=f"tiles-{suffix}",
            submissions_table_name=f"submissions-{suffix}",
            aws_read_timeout_s=120,
        )
        self.aws = aws
        self.dynamodb = aws.client("dynamodb")
        self.s3 = aws.client("s3")
        self.stream_arn = create_stage_resources(aws, self.settings)
        self.runtime = Runtime(self.settings, clock=lambda: FIXED_NOW)

    def pump(self, handler: Any, position: str = "LATEST") -> StreamPump:
        pump = StreamPump(self.aws.client("dynamodbstreams"), self.stream_arn, handler)
        pump.start(position)
        return pump

    def rebuild(self) -> int:
        regenerator = self.runtime.regenerator
        scan_started_at = regenerator.scan_marker()
        grouped = regenerator.group(snapshots_from_items(self.runtime.registry.scan()))
        return regenerator.rebuild(grouped, scan_started_at=scan_started_at)

    def tile(self, tile_id: str) -> dict[str, Any] | None:
        stored = self.runtime.bucket.read(self.runtime.bucket.object_key(tile_id))
        return stored.document if stored else None

    def item(self, code: str) -> dict[str, Any] | None:
        response = self.dynamodb.get_item(
            TableName=self.settings.table_name, Key={"code": {"S": code}}, ConsistentRead=True
        )
        item: dict[str, Any] | None = response.get("Item")
        return item


@pytest.fixture
def stage(aws: EmbeddedAws) -> Stage:
    return Stage(aws)


@pytest.fixture
def app_module(stage: Stage) -> Iterator[Any]:
    import app

    app.use_runtime(stage.runtime)
    yield app
    app.use_runtime(None)  # type: ignore[arg-type]


@pytest.fixture
def api(app_module: Any) -> Iterator[Any]:
    from chalice.test import Client

    with Client(app_module.app) as client:
        yield client
