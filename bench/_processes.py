"""Pipeline pieces that a benchmark runs in processes of their own, as they run apart in AWS.

The stream pump plays the Lambda that handles the DynamoDB stream, and the tile server the
origin behind CloudFront. In their own processes they do not compete for the benchmark's
interpreter lock, and each counts the AWS requests it makes, which it reports when it stops.
Both are started with the "spawn" method, so nothing of the parent's threads is copied.
"""

import multiprocessing
import os
import threading
import time
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from typing import Any

from bench._stack import RequestCounter


@dataclass
class SharedProgress:
    """Values the pump process updates and the benchmark reads while it runs."""

    records: Any  # multiprocessing.Value("q")
    last_batch_at: Any  # multiprocessing.Value("d"), time.time() of the last batch


def _redirect_output(log_path: str) -> None:
    # The handler logs and prints its metrics to standard output, which is the benchmark's
    # channel for its one line of figures, so the child writes both streams to a log file.
    descriptor = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(descriptor, 1)
    os.dup2(descriptor, 2)
    os.close(descriptor)


def pump_stream(
    log_path: str,
    environment: dict[str, str],
    stream_arn: str,
    poll_interval_s: float,
    ready: Event,
    stop: Event,
    progress: SharedProgress,
    report: "multiprocessing.Queue[dict[str, Any]]",
) -> None:
    """Feed the stream to app.on_store_change until `stop`; put the counters on `report`."""
    _redirect_output(log_path)
    os.environ.update(environment)
    # Imported here: app.py reads its settings from the environment set just above.
    import app
    from chalicelib.runtime import Runtime
    from chalicelib.settings import Settings
    from ops.stream_pump import StreamPump

    runtime = Runtime(Settings.from_environment())
    counter = RequestCounter()
    counter.attach(runtime.s3)
    counter.attach(runtime.dynamodb)
    app.use_runtime(runtime)

    import boto3

    pump = StreamPump(
        boto3.client("dynamodbstreams"),
        stream_arn,
        app.on_store_change,
        poll_interval_s=poll_interval_s,
    )
    pump.start("LATEST")
    ready.set()

    while not stop.is_set():
        read = pump.poll_once()
        if read:
            with progress.records.get_lock():
                progress.records.value = pump.stats.records
            progress.last_batch_at.value = time.time()
        else:
            stop.wait(poll_interval_s)

    report.put(
        {
            "batches": pump.stats.batches,
            "records": pump.stats.records,
            "redelivered": pump.stats.redelivered,
            "abandoned": pump.stats.abandoned,
            "handler_s": pump.stats.handler_s,
            "errors": len(pump.stats.errors),
            "requests": dict(counter.snapshot()),
        }
    )


def serve_tiles(
    log_path: str,
    environment: dict[str, str],
    bucket: str,
    port_value: Any,
    ready: Event,
    stop: Event,
    report: "multiprocessing.Queue[dict[str, Any]]",
) -> None:
    """Serve the bucket with ops.tileserver until `stop`; put its S3 request count on `report`."""
    _redirect_output(log_path)
    os.environ.update(environment)
    import boto3

    from ops.tileserver import TileServer

    s3 = boto3.client("s3")
    counter = RequestCounter()
    counter.attach(s3)
    server = TileServer(0, s3, bucket)
    port_value.value = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="tile-server", daemon=True)
    thread.start()
    ready.set()

    stop.wait()
    server.shutdown()
    server.server_close()
    report.put({"requests": dict(counter.snapshot())})


def spawn_context() -> Any:
    return multiprocessing.get_context("spawn")
