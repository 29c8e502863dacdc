"""The one settings object: every tunable the Lambda functions and the ops tools read.

Values come from environment variables once, at start-up. Chalice sets them per stage from
`.chalice/config.json`; the local stack sets them for its child processes.
"""

import os
import re
from collections.abc import Mapping
from datetime import timedelta, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_OFFSET_PATTERN = re.compile(r"^([+-])(\d{2}):(\d{2})$")

# Environment variable -> settings field. One table so the names are documented in one place.
ENVIRONMENT_VARIABLES: dict[str, str] = {
    "STOCKFEED_STAGE": "stage",
    "STOCKFEED_TABLE": "table_name",
    "STOCKFEED_BUCKET": "bucket_name",
    "STOCKFEED_SUBMISSIONS_TABLE": "submissions_table_name",
    "STOCKFEED_STREAM_ARN": "stream_arn",
    "STOCKFEED_TILE_PREFIX": "tile_prefix",
    "STOCKFEED_UTC_OFFSET": "utc_offset",
    "STOCKFEED_TILE_MAX_AGE_S": "tile_max_age_s",
    "STOCKFEED_STALE_AFTER_S": "stale_after_s",
    "STOCKFEED_LOG_LEVEL": "log_level",
    "STOCKFEED_AWS_READ_TIMEOUT_S": "aws_read_timeout_s",
}


class Settings(BaseModel):
    """Deployment settings for one stage."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: Literal["dev", "prod", "local", "test"] = "dev"
    table_name: str = "stockfeed-dev-stores"
    bucket_name: str = "stockfeed-dev-tiles"
    submissions_table_name: str = "stockfeed-dev-submissions"
    # Events that happened within this many seconds take the one-request path; older ones are
    # checked against the submission log in a transaction.
    recent_window_s: int = Field(default=900, ge=60, le=86_400)
    # How long submission ids are remembered, and so the oldest event accepted (30 days).
    retention_s: int = Field(default=30 * 86_400, ge=86_400)
    # How far an event's time may run ahead of the server's clock (POS clocks drift).
    future_tolerance_s: int = Field(default=300, ge=0, le=3600)
    # Chalice needs a syntactically valid ARN when it loads app.py for packaging; the deployed
    # stage gets the real one from its config.
    stream_arn: str = (
        "arn:aws:dynamodb:ap-northeast-2:000000000000:table/stockfeed-dev-stores/stream/unset"
    )
    tile_prefix: str = "v1"
    # Offset written on every published timestamp. Korea has had no daylight saving time since
    # 1988, so a fixed offset is exact and needs no tz database in the Lambda.
    utc_offset: str = "+09:00"
    # Cache-Control max-age of live tiles, in seconds.
    tile_max_age_s: int = Field(default=5, ge=0, le=3600)
    # A store whose latest report is older than this shows remain_stat null (unknown).
    stale_after_s: int = Field(default=7200, ge=60)
    log_level: str = "INFO"
    # Lambda fails fast and lets the caller retry; the embedded AWS on a busy laptop needs more.
    aws_read_timeout_s: int = Field(default=5, ge=1, le=300)

    @field_validator("utc_offset")
    @classmethod
    def _check_offset(cls, value: str) -> str:
        if not _OFFSET_PATTERN.match(value):
            raise ValueError(f"utc_offset must look like +09:00, got {value!r}")
        return value

    @property
    def timezone(self) -> timezone:
        """The fixed-offset zone that published timestamps use."""
        match = _OFFSET_PATTERN.match(self.utc_offset)
        assert match is not None  # checked by the validator
        sign = -1 if match.group(1) == "-" else 1
        minutes = int(match.group(2)) * 60 + int(match.group(3))
        return timezone(sign * timedelta(minutes=minutes))

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Build settings from STOCKFEED_* variables; unset ones keep their defaults."""
        source = os.environ if environ is None else environ
        values = {
            field: source[variable]
            for variable, field in ENVIRONMENT_VARIABLES.items()
            if source.get(variable)
        }
        return cls.model_validate(values)

    def as_environment(self) -> dict[str, str]:
        """Return the STOCKFEED_* variables that reproduce these settings in a child process."""
        dumped = self.model_dump()
        return {variable: str(dumped[field]) for variable, field in ENVIRONMENT_VARIABLES.items()}
