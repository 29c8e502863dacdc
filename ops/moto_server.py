"""The embedded AWS's server process: moto's HTTP server, handling one request at a time.

moto applies a DynamoDB UpdateItem as read, change and write with no lock, so two requests
served on two threads can lose an update: 10 of 1,600 concurrent sales were lost in
bench/submission_cost.py on moto 5.2.5. DynamoDB itself serializes the writes to one item. A
lock around each request gives the embedded server that atomicity. Connections are still
accepted concurrently, so slow clients do not block each other.
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


class OneRequestAtATime:
    """WSGI middleware that runs the wrapped application under one lock."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            # The body is produced inside the lock too: moto may build it lazily.
            return list(self._app(environ, start_response))


def main() -> None:
    parser = argparse.ArgumentParser(description="moto server, one request at a time")
    parser.add_argument("-H", "--host", default="127.0.0.1", help="Address to bind.")
    parser.add_argument("-p", "--port", type=int, required=True, help="TCP port to bind.")
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    app = OneRequestAtATime(DomainDispatcherApplication(create_backend_app))
    run_simple(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
