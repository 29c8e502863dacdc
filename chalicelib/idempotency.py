"""The submission log: where submission ids go once they are too old for the store item.

The store item's `recent` map makes a live retry cost nothing extra to detect. That map must
stay small because every write pays for the whole item (one write unit per KB). So the stream
handler moves aging entries into the submissions table, with a TTL of the retention period,
before it removes them from the item. Each id is therefore always in at least one of the two.
"""

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.clock import Clock
from chalicelib.stock import submission_log_item

logger = logging.getLogger(__name__)

# Entries stay in the item this long past the live window, so an API instance whose clock is
# behind the handler's still finds them there.
PRUNE_MARGIN_S = 300


class SubmissionLog:
    """Moves aging submission ids from store items to the submissions table."""

    def __init__(
        self,
        client: Any,
        stores_table: str,
        submissions_table: str,
        *,
        window_s: int,
        retention_s: int,
        clock: Clock,
    ) -> None:
        self._client = client
        self._stores_table = stores_table
        self._submissions_table = submissions_table
        self._age_limit = timedelta(seconds=window_s + PRUNE_MARGIN_S)
        self._retention_s = retention_s
        self._clock = clock

    def prune(self, records: Iterable[dict[str, Any]]) -> int:
        """Log and remove the aged entries seen in the stream images; returns how many."""
        latest: dict[str, dict[str, Any]] = {}
        for record in records:
            image = record.get("dynamodb", {}).get("NewImage")
            if image and "code" in image:
                latest[image["code"]["S"]] = image
        cutoff = int((self._clock() - self._age_limit).timestamp())
        pruned = 0
        for code, image in latest.items():
            aged = _aged_entries(image, cutoff)
            if aged:
                self._move(code, aged)
                pruned += len(aged)
        return pruned

    def _move(self, code: str, aged: dict[str, tuple[str, int]]) -> None:
        for submission_id, (fingerprint, occurred_epoch) in aged.items():
            occurred_at = datetime.fromtimestamp(occurred_epoch, UTC)
            item = submission_log_item(
                code, submission_id, fingerprint, occurred_at, self._retention_s
            )
            try:
                self._client.put_item(
                    TableName=self._submissions_table,
                    Item=item,
                    ConditionExpression="attribute_not_exists(id)",
                )
            except ClientError as error:
                if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
        names = {f"#s{index}": submission_id for index, submission_id in enumerate(aged)}
        self._client.update_item(
            TableName=self._stores_table,
            Key={"code": {"S": code}},
            UpdateExpression="REMOVE " + ", ".join(f"recent.{name}" for name in names),
            ConditionExpression="attribute_exists(code)",
            ExpressionAttributeNames=names,
        )
        logger.info("moved %d submission ids of store %s to the log", len(aged), code)


def _aged_entries(image: dict[str, Any], cutoff: int) -> dict[str, tuple[str, int]]:
    aged = {}
    for submission_id, value in image.get("recent", {}).get("M", {}).items():
        fingerprint, _, epoch = value.get("S", "").partition("|")
        if epoch.isdigit() and int(epoch) < cutoff:
            aged[submission_id] = (fingerprint, int(epoch))
    return aged
