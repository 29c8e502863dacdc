"""The embedded AWS: a moto server on 127.0.0.1 and the project's resources inside it.

The local stack, the smoke run and the functional tests all use this, so everything that runs
locally talks to S3, DynamoDB and DynamoDB Streams over HTTP exactly as it would in AWS.
"""

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from chalicelib.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
REGION = "ap-northeast-2"
# moto accepts any credentials; fixed dummy ones keep a developer's real ones out of the way.
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


def die_with_parent() -> None:
    """Ask Linux to send this process SIGTERM when its parent exits (a `preexec_fn`).

    Without it, a local stack whose parent is killed leaves its servers running.
    """
    pr_set_pdeathsig = 1
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: the parent's own clean-up still stops the child


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_port(port: int, timeout_s: float, process: subprocess.Popen[bytes] | None) -> None:
    """Block until something accepts connections on the port."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process on port {port} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout_s} s")


@dataclass(frozen=True, slots=True)
class EmbeddedAws:
    """A running moto server."""

    endpoint_url: str
    process: subprocess.Popen[bytes]

    def environment(self) -> dict[str, str]:
        """Variables that point boto3 in this or a child process at the server."""
        return {**DUMMY_CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint_url}

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@contextmanager
def embedded_aws(port: int | None = None, log_path: str | None = None) -> Iterator[EmbeddedAws]:
    """Run a moto server for the duration of the block."""
    port = port or free_port()
    log = open(log_path or os.devnull, "ab")  # noqa: SIM115 - closed in finally
    process = subprocess.Popen(
        [sys.executable, "-m", "ops.moto_server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **DUMMY_CREDENTIALS},
        cwd=REPO_ROOT,
        preexec_fn=die_with_parent,
    )
    try:
        wait_for_port(port, timeout_s=30, process=process)
        yield EmbeddedAws(endpoint_url=f"http://127.0.0.1:{port}", process=process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def create_stores_table(dynamodb: Any, table_name: str) -> str:
    """Create the stores table with a NEW_AND_OLD_IMAGES stream; returns the stream ARN."""
    response = dynamodb.create_table(
        TableName=table_name,
        KeySchema=[{"AttributeName": "code", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "code", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    dynamodb.get_waiter("table_exists").wait(TableName=table_name)
    stream_arn: str = response["TableDescription"]["LatestStreamArn"]
    return stream_arn


def create_submissions_table(dynamodb: Any, table_name: str) -> None:
    """Create the submission log table, keyed by "<store code>#<submission id>", with a TTL."""
    dynamodb.create_table(
        TableName=table_name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.get_waiter("table_exists").wait(TableName=table_name)
    dynamodb.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
    )


def create_tile_bucket(s3: Any, bucket_name: str) -> None:
    """Create the tile bucket in the embedded region."""
    s3.create_bucket(Bucket=bucket_name, CreateBucketConfiguration={"LocationConstraint": REGION})


def child_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment plus `extra`, for a child process."""
    return {**os.environ, **extra}


def create_stage_resources(aws: EmbeddedAws, settings: Settings) -> str:
    """Create a stage's stores table, submissions table and tile bucket; returns the stream ARN."""
    dynamodb = aws.client("dynamodb")
    stream_arn = create_stores_table(dynamodb, settings.table_name)
    create_submissions_table(dynamodb, settings.submissions_table_name)
    create_tile_bucket(aws.client("s3"), settings.bucket_name)
    return stream_arn
