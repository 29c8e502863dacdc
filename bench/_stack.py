"""Shared set-up for the benchmarks: the embedded AWS with the real store list, and the API.

The benchmarks start the pipeline the way the local stack does, but keep their logs in a
temporary directory, so that a run touches neither var/ nor another benchmark's files.
Modules whose name starts with an underscore are helpers: bench/run_all.py does not run them.
"""

import contextlib
import json
import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.keys import new_api_key
from chalicelib.runtime import Runtime
from chalicelib.settings import Settings
from chalicelib.stores import StoreRecord, read_store_list
from chalicelib.tiles import snapshot_from_item
from ops.embedded import (
    EmbeddedAws,
    create_stage_resources,
    die_with_parent,
    embedded_aws,
    free_port,
    wait_for_port,
)
from ops.replay import SubmissionClient

REPO_ROOT = Path(__file__).resolve().parents[1]
STORE_LIST = REPO_ROOT / "data" / "kr-mask-stores-2020-03-15.csv"
HISTORY = REPO_ROOT / "data" / "mask_when_empty"


@dataclass(frozen=True, slots=True)
class Stage:
    """A running moto server with the stores table, submission log, bucket and store list."""

    aws: EmbeddedAws
    settings: Settings
    runtime: Runtime
    stream_arn: str
    stores: list[StoreRecord]


@contextlib.contextmanager
def running_stage(log_dir: Path) -> Iterator[Stage]:
    """Start the embedded AWS, create the stage's resources and import the real store list.

    The environment of this process points boto3 at the moto server for the whole block, so
    child processes started inside it (chalice local) talk to the same server.
    """
    with embedded_aws(log_path=str(log_dir / "moto.log")) as aws:
        os.environ.update(aws.environment())
        # "dev" with the default resource names, like the local stack: chalice local --stage dev
        # applies the dev stage's configured variables, which name the same table and bucket.
        settings = Settings(stage="dev", log_level="WARNING")
        os.environ.update(settings.as_environment())

        stream_arn = create_stage_resources(aws, settings)

        runtime = Runtime(settings)
        stores = read_store_list(STORE_LIST).stores
        runtime.registry.import_stores(stores)
        yield Stage(aws, settings, runtime, stream_arn, stores)


def publish_all_tiles(runtime: Runtime, stores: Iterable[StoreRecord]) -> int:
    """Write every tile and the manifest from the store list; returns the number of tiles.

    The tiles are grouped from the imported list instead of a table scan, because a scan of
    25,439 items takes about 30 s on the moto server and yields the same rows before any sale.
    """
    regenerator = runtime.regenerator
    grouped = regenerator.group(snapshot_from_item(store.registry_item()) for store in stores)
    return regenerator.rebuild(grouped)


def issue_keys(runtime: Runtime, codes: Iterable[str]) -> dict[str, str]:
    """Issue one API key per store; returns store code -> key text."""
    return {code: str(runtime.keys.issue(code, new_api_key(code))) for code in codes}


@contextlib.contextmanager
def chalice_local(settings: Settings, log_path: Path) -> Iterator[str]:
    """Run `chalice local` on a free port for the block; yields its base URL."""
    port = free_port()
    chalice = Path(sys.executable).parent / "chalice"
    command = [
        str(chalice),
        "local",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--stage",
        "dev",
        "--no-autoreload",
    ]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            preexec_fn=die_with_parent,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **settings.as_environment()},
        )
        try:
            wait_for_port(port, timeout_s=60, process=process)
            yield f"http://127.0.0.1:{port}"
        finally:
            stop_process(process)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Terminate a child process and wait for it, killing it after 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


class RequestCounter:
    """Counts the HTTP requests that boto3 clients send, by service and operation.

    It listens to botocore's `before-send` event, which fires once per attempt, so retried
    requests count as often as AWS would bill them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-send", self._count)

    def _count(self, **kwargs: Any) -> None:
        # The event name reads "before-send.<service>.<Operation>".
        name = str(kwargs.get("event_name", "before-send.unknown.Unknown"))
        operation = name.split(".", 1)[1] if "." in name else name
        with self._lock:
            self.counts[operation] += 1

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.counts)

    def total(self, service: str) -> int:
        prefix = f"{service}."
        with self._lock:
            return sum(count for name, count in self.counts.items() if name.startswith(prefix))


class PatientSubmissionClient(SubmissionClient):
    """A SubmissionClient whose failed POST becomes a rejection instead of an exception.

    ops.replay runs each store's submissions on a worker thread that an exception would end,
    silently dropping the rest of its stores' day. On a loaded machine a response can take
    longer than the timeout, so a POST that times out is sent once more (the submission id
    makes that safe) and then reported with status 0 and the error code "timeout".
    """

    def __init__(self, base_url: str, timeout_s: float = 30.0) -> None:
        super().__init__(base_url, timeout_s=timeout_s)

    def post(self, code: str, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        for _attempt in (1, 2):
            try:
                return super().post(code, key, body)
            except OSError:
                # The next attempt finds the connection unusable and opens a new one.
                continue
        return 0, {"error": {"code": "timeout"}}


def print_figures(figures: dict[str, Any]) -> None:
    """Print the benchmark's one JSON line of named figures, the line bench/run_all.py reads."""
    print(json.dumps(figures, ensure_ascii=False, sort_keys=True), flush=True)
