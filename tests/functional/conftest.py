"""Fixtures of the functional tests that need more than the moto server.

- `dynamodb_local`: Amazon's DynamoDB Local, once per session, from the npm package.
- `ledger_stage`: a store with its key on a fresh pair of tables, once per backend (moto and
  DynamoDB Local), driven in this process through the submission service.
- `api_server`: `chalice local` on 127.0.0.1 in front of the moto server, for tests that send
  real HTTP requests (the fuzz test and the POS guide's curl examples).
"""

from collections.abc import Iterator
from typing import Any

import pytest

from bench.fuzz_api import ApiServer, run_api_server
from bench.submission_cost import CLIENT_CONFIG, NOW, LedgerStage, moto_client
from chalicelib.stores import StoreList
from ops.embedded import EmbeddedAws
from tests.dynamodb_local import DynamoDbLocal, run_dynamodb_local

BACKENDS = ("moto", "dynamodb_local")


@pytest.fixture(scope="session")
def dynamodb_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DynamoDbLocal]:
    log_path = tmp_path_factory.mktemp("dynamodb-local") / "server.log"
    with run_dynamodb_local(log_path=log_path) as server:
        yield server


@pytest.fixture(params=BACKENDS)
def backend_client(request: pytest.FixtureRequest) -> Any:
    """A DynamoDB client for each backend in turn; a backend starts only when a test uses it."""
    if request.param == "moto":
        aws: EmbeddedAws = request.getfixturevalue("aws")
        return moto_client(aws.endpoint_url)
    server: DynamoDbLocal = request.getfixturevalue("dynamodb_local")
    return server.client(CLIENT_CONFIG)


@pytest.fixture
def ledger_stage(backend_client: Any, real_store_list: StoreList) -> LedgerStage:
    return LedgerStage(backend_client, real_store_list.stores[0], clock=lambda: NOW)


@pytest.fixture
def api_server(
    stage: Any, real_store_list: StoreList, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    """`chalice local` for the `stage` fixture's tables, with two stores and their keys."""
    log_path = tmp_path_factory.mktemp("chalice-local") / "server.log"
    with run_api_server(
        stage.runtime, stage.aws.environment(), real_store_list.stores[:2], log_path
    ) as server:
        yield server
