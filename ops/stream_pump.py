"""The stream pump: the local stand-in for Lambda's DynamoDB event source mapping.

It reads the embedded DynamoDB stream with GetRecords and calls the very handler that AWS
would, with Lambda-shaped events. Like the event source mapping with ReportBatchItemFailures,
it redelivers a batch from the lowest failed sequence number, and gives up on a batch after
`max_attempts` (where AWS would send it to the on-failure destination).
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LambdaContext:
    """The few context attributes handlers and loggers read."""

    function_name: str = "stockfeed-local-on_store_change"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = (
        "arn:aws:lambda:ap-northeast-2:000000000000:function:stockfeed-local"
    )
    aws_request_id: str = "local"


@dataclass
class PumpStats:
    """Counters for progress output and benchmarks."""

    batches: int = 0
    records: int = 0
    redelivered: int = 0
    abandoned: int = 0
    last_batch_at: float = 0.0
    handler_s: float = 0.0
    errors: list[str] = field(default_factory=list)


def lambda_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """Reshape a GetRecords record into the record Lambda passes to a handler."""
    body = dict(record["dynamodb"])
    created = body.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        body["ApproximateCreationDateTime"] = created.timestamp()
    return {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion", "ap-northeast-2"),
        "dynamodb": body,
        "eventSourceARN": stream_arn,
    }


class StreamPump:
    """Polls one single-shard stream and feeds the handler."""

    def __init__(
        self,
        streams: Any,
        stream_arn: str,
        handler: Handler,
        *,
        batch_size: int = 100,
        poll_interval_s: float = 0.1,
        max_attempts: int = 3,
    ) -> None:
        self._streams = streams
        self._stream_arn = stream_arn
        self._handler = handler
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._max_attempts = max_attempts
        self._iterator: str | None = None
        self.stats = PumpStats()

    def start(self, position: str = "LATEST") -> None:
        """Open the shard at LATEST (skip history) or TRIM_HORIZON (read it all)."""
        description = self._streams.describe_stream(StreamArn=self._stream_arn)
        shard_id = description["StreamDescription"]["Shards"][0]["ShardId"]
        self._iterator = self._streams.get_shard_iterator(
            StreamArn=self._stream_arn, ShardId=shard_id, ShardIteratorType=position
        )["ShardIterator"]

    def poll_once(self) -> int:
        """Read one page of records and deliver it; returns the number of records read."""
        if self._iterator is None:
            self.start()
        response = self._streams.get_records(ShardIterator=self._iterator, Limit=self._batch_size)
        self._iterator = response.get("NextShardIterator")
        records = [lambda_record(record, self._stream_arn) for record in response["Records"]]
        if records:
            self._deliver(records)
        return len(records)

    def _deliver(self, records: list[dict[str, Any]]) -> None:
        pending = records
        for attempt in range(1, self._max_attempts + 1):
            failed = self._invoke(pending)
            self.stats.batches += 1
            self.stats.last_batch_at = time.monotonic()
            if not failed:
                self.stats.records += len(pending)
                return
            # Lambda restarts the batch at the lowest failed sequence number.
            lowest = min(failed)
            done = [r for r in pending if int(r["dynamodb"]["SequenceNumber"]) < lowest]
            self.stats.records += len(done)
            pending = [r for r in pending if int(r["dynamodb"]["SequenceNumber"]) >= lowest]
            self.stats.redelivered += len(pending)
            logger.warning("redelivering %d records (attempt %d)", len(pending), attempt + 1)
        self.stats.abandoned += len(pending)
        logger.error("abandoned %d stream records after %d attempts", len(pending), attempt)

    def _invoke(self, records: list[dict[str, Any]]) -> list[int]:
        started = time.monotonic()
        try:
            result = self._handler({"Records": records}, LambdaContext())
        except Exception as error:
            logger.exception("stream handler raised; the whole batch fails")
            self.stats.errors.append(repr(error))
            return [int(record["dynamodb"]["SequenceNumber"]) for record in records]
        finally:
            self.stats.handler_s += time.monotonic() - started
        failures = (result or {}).get("batchItemFailures", [])
        return [int(failure["itemIdentifier"]) for failure in failures]

    def run(self, stop: threading.Event) -> None:
        """Poll until `stop` is set; sleeps only when the stream had nothing new."""
        while not stop.is_set():
            try:
                read = self.poll_once()
            except Exception as error:
                logger.exception("reading the stream failed; retrying")
                self.stats.errors.append(repr(error))
                read = 0
            if read == 0:
                stop.wait(self._poll_interval_s)
