"""Wiring: builds the AWS clients and the domain objects from the settings, once, on first use.

No boto3 client exists at import time, so importing app.py stays fast for cold starts and
safe under test setups that pick the endpoint after import.
"""

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import boto3
import botocore
from botocore.config import Config

from chalicelib.clock import Clock, system_clock
from chalicelib.idempotency import SubmissionLog
from chalicelib.keys import KeyRegistry
from chalicelib.publishing import TileBucket
from chalicelib.regeneration import TileRegenerator
from chalicelib.settings import Settings
from chalicelib.stock import StockLedger
from chalicelib.stores import StoreRegistry
from chalicelib.submissions import SubmissionService


@dataclass
class Runtime:
    """The domain objects of one process, sharing clients."""

    settings: Settings
    clock: Clock = system_clock

    @cached_property
    def _client_config(self) -> Config:
        # Short timeouts and standard retry mode: a Lambda fails fast and the caller retries.
        return Config(
            connect_timeout=2,
            read_timeout=self.settings.aws_read_timeout_s,
            retries={"mode": "standard", "max_attempts": 3},
            max_pool_connections=32,
        )

    @cached_property
    def dynamodb(self) -> Any:
        return boto3.client("dynamodb", config=self._client_config)

    @cached_property
    def s3(self) -> Any:
        client = boto3.client("s3", config=self._client_config)
        put_object = client.meta.service_model.operation_model("PutObject")
        if "IfMatch" not in put_object.input_shape.members:
            # The Lambda runtime provides boto3 (it is not bundled); tiles need If-Match.
            raise RuntimeError(
                f"botocore {botocore.__version__} cannot send conditional S3 PUTs (If-Match); "
                "add a newer boto3 to requirements.txt"
            )
        return client

    @cached_property
    def ledger(self) -> StockLedger:
        return StockLedger(
            self.dynamodb,
            self.settings.table_name,
            self.settings.submissions_table_name,
            self.settings.timezone,
            self.clock,
            window_s=self.settings.recent_window_s,
            retention_s=self.settings.retention_s,
        )

    @cached_property
    def submission_log(self) -> SubmissionLog:
        return SubmissionLog(
            self.dynamodb,
            self.settings.table_name,
            self.settings.submissions_table_name,
            window_s=self.settings.recent_window_s,
            retention_s=self.settings.retention_s,
            clock=self.clock,
        )

    @cached_property
    def keys(self) -> KeyRegistry:
        return KeyRegistry(self.dynamodb, self.settings.table_name)

    @cached_property
    def registry(self) -> StoreRegistry:
        return StoreRegistry(self.dynamodb, self.settings.table_name, self.settings.stage)

    @cached_property
    def submissions(self) -> SubmissionService:
        return SubmissionService(self.ledger, self.keys, self.settings, self.clock)

    @cached_property
    def bucket(self) -> TileBucket:
        return TileBucket(
            self.s3,
            self.settings.bucket_name,
            self.settings.tile_prefix,
            self.settings.tile_max_age_s,
        )

    @cached_property
    def regenerator(self) -> TileRegenerator:
        return TileRegenerator(
            self.bucket,
            stage=self.settings.stage,
            zone=self.settings.timezone,
            clock=self.clock,
            stale_after_s=self.settings.stale_after_s,
        )
