"""The embedded AWS's server process: moto's HTTP server, one DynamoDB request at a time.

moto applies a DynamoDB UpdateItem as read, change and write with no lock, so two requests
served on two threads can lose an update: 10 of 1,600 concurrent sales were lost in
bench/submission_cost.py on moto 5.2.5. DynamoDB itself serializes the writes to one item. A
lock around each DynamoDB and DynamoDB Streams request gives the embedded server that
atomicity. S3 requests, which move the large tiles, keep running concurrently.
"""

import argparse
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class SerializedDynamoDB:
    """WSGI middleware that runs DynamoDB requests under one lock, others freely."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        # The JSON protocol names the operation in X-Amz-Target: "DynamoDB_20120810.UpdateItem",
        # "DynamoDBStreams_20120810.GetRecords".
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            return list(self._app(environ, start_response))
        with self._lock:
            # The body is produced inside the lock too: moto may build it lazily.
            return list(self._app(environ, start_response))


def main() -> None:
    parser = argparse.ArgumentParser(description="moto server, one DynamoDB request at a time")
    parser.add_argument("-H", "--host", default="127.0.0.1", help="Address to bind.")
    parser.add_argument("-p", "--port", type=int, required=True, help="TCP port to bind.")
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    app = SerializedDynamoDB(DomainDispatcherApplication(create_backend_app))
    run_simple(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
