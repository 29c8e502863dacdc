"""The deployment path, offline: the infra stack in moto, the deploy commands, the IAM policies.

moto's CloudFormation creates the table, queue, bucket and log groups. It skips the CloudFront,
bucket policy and alarm resources, so the template checks below cover what it skips or ignores.
"""

import copy
import io
import json
import shutil
import threading
import uuid
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml  # type: ignore[import-untyped]
from chalice.config import Config
from chalice.test import Client
from click.testing import CliRunner

from chalicelib.runtime import Runtime
from chalicelib.settings import Settings
from ops.deploy import (
    API_FUNCTION,
    MAX_RETRY_ATTEMPTS,
    REFRESH_FUNCTION,
    STREAM_FUNCTION,
    deploy,
    function_name,
    policy_file_name,
)
from ops.embedded import EmbeddedAws
from ops.tileserver import TileServer

pytestmark = pytest.mark.functional

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "infra" / "stockfeed.yaml"
CHALICE_DIR = REPO_ROOT / ".chalice"
STAGES = ("dev", "prod")

# Resource types that moto 5.2's CloudFormation does not model: it logs a warning, marks them
# complete and creates nothing. infra/README.md lists the same types.
MOTO_SKIPPED_TYPES = {
    "AWS::S3::BucketPolicy",
    "AWS::CloudFront::OriginAccessControl",
    "AWS::CloudFront::CachePolicy",
    "AWS::CloudFront::ResponseHeadersPolicy",
    "AWS::CloudFront::Distribution",
    "AWS::CloudWatch::Alarm",
}

# What each function calls, and nothing more (the stream handler's extras are explained in
# ops/deploy.py: 404 for missing tiles and the on-failure record).
EXPECTED_ACTIONS = {
    API_FUNCTION: {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "dynamodb:PutItem",
    },
    STREAM_FUNCTION: {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
        "s3:GetObject",
        "s3:PutObject",
        "s3:ListBucket",
        "sqs:SendMessage",
        "dynamodb:UpdateItem",
        "dynamodb:PutItem",
    },
    REFRESH_FUNCTION: {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "dynamodb:Scan",
        "s3:GetObject",
        "s3:PutObject",
        "s3:ListBucket",
    },
}


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = cfn_yaml.load(str(TEMPLATE))
    return loaded


def _without_skipped_outputs(template: dict[str, Any]) -> dict[str, Any]:
    """The template minus outputs that name a skipped resource, which moto cannot resolve."""
    skipped = {
        name
        for name, resource in template["Resources"].items()
        if resource["Type"] in MOTO_SKIPPED_TYPES
    }
    trimmed = copy.deepcopy(template)
    for name, output in template["Outputs"].items():
        value = output["Value"]
        referenced = value.get("Ref") or (value.get("Fn::GetAtt") or [None])[0]
        if referenced in skipped:
            del trimmed["Outputs"][name]
    return trimmed


@pytest.fixture(scope="module")
def moto_template(template: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("infra") / "stockfeed-moto.json"
    path.write_text(json.dumps(_without_skipped_outputs(template)))
    return path


@pytest.fixture(scope="module")
def stacks(aws: EmbeddedAws, template: dict[str, Any], moto_template: Path) -> dict[str, str]:
    """One infra stack per stage in the moto server, made by `deploy infra`, keyed by stage.

    The prod stack gets every parameter explicitly and the dev stack only Stage, so both ways
    of creating a stack are covered.
    """
    every_parameter = [
        f"--parameter={key}={spec['Default']}"
        for key, spec in template["Parameters"].items()
        if "Default" in spec
    ]
    names = {}
    for stage in STAGES:
        name = f"stockfeed-{stage}-{uuid.uuid4().hex[:6]}"
        extra = every_parameter if stage == "prod" else []
        args = ["infra", "--stage", stage, "--stack", name, "--template", str(moto_template)]
        result = _run(*args, *extra)
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["result"] == "created"
        names[stage] = name
    return names


def _outputs(aws: EmbeddedAws, stack_name: str) -> dict[str, str]:
    stack = aws.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]
    return {output["OutputKey"]: output["OutputValue"] for output in stack["Outputs"]}


@pytest.fixture
def config_copy(tmp_path: Path) -> Path:
    """A scratch copy of .chalice/ with the config and the committed policies."""
    target = tmp_path / ".chalice"
    target.mkdir()
    for path in CHALICE_DIR.glob("*.json"):
        shutil.copy(path, target / path.name)
    return target / "config.json"


def _run(*args: str) -> Any:
    return CliRunner().invoke(deploy, list(args), catch_exceptions=False)


# ---------------------------------------------------------------- the stack in moto


def test_stack_created_in_moto(aws: EmbeddedAws, stacks: dict[str, str]) -> None:
    cloudformation = aws.client("cloudformation")
    for name in stacks.values():
        stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
        assert stack["StackStatus"] == "CREATE_COMPLETE"

        resources = cloudformation.list_stack_resources(StackName=name)
        summaries = resources["StackResourceSummaries"]
        created = {item["ResourceType"] for item in summaries if item["PhysicalResourceId"]}
        assert created == {
            "AWS::DynamoDB::Table",
            "AWS::SQS::Queue",
            "AWS::S3::Bucket",
            "AWS::Logs::LogGroup",
        }


def test_infra_rejects_bad_parameter(stacks: dict[str, str], moto_template: Path) -> None:
    result = _run(
        "infra",
        "--stage",
        "dev",
        "--stack",
        stacks["dev"],
        "--template",
        str(moto_template),
        "--parameter",
        "LogRetentionDays",
    )

    assert result.exit_code == 2
    assert "is not KEY=VALUE" in result.output


def test_stack_table_matches_design(aws: EmbeddedAws, stacks: dict[str, str]) -> None:
    for stage, name in stacks.items():
        outputs = _outputs(aws, name)
        table = aws.client("dynamodb").describe_table(TableName=outputs["TableName"])["Table"]

        assert table["TableName"] == f"stockfeed-{stage}-stores"
        assert table["KeySchema"] == [{"AttributeName": "code", "KeyType": "HASH"}]
        assert table["AttributeDefinitions"] == [{"AttributeName": "code", "AttributeType": "S"}]
        assert not table.get("GlobalSecondaryIndexes")
        assert not table.get("LocalSecondaryIndexes")
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        assert table["StreamSpecification"] == {
            "StreamEnabled": True,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
        assert outputs["StreamArn"] == table["LatestStreamArn"]


def test_stack_queue_and_log_groups(aws: EmbeddedAws, stacks: dict[str, str]) -> None:
    sqs = aws.client("sqs")
    logs = aws.client("logs")
    for stage, name in stacks.items():
        queue_url = sqs.get_queue_url(QueueName=f"stockfeed-{stage}-stream-failures")["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])
        assert attributes["Attributes"]["QueueArn"] == _outputs(aws, name)["FailureQueueArn"]
        assert attributes["Attributes"]["MessageRetentionPeriod"] == "1209600"
        assert attributes["Attributes"]["SqsManagedSseEnabled"] == "true"

        for function in (API_FUNCTION, STREAM_FUNCTION, REFRESH_FUNCTION):
            group_name = f"/aws/lambda/{function_name(stage, function)}"
            groups = logs.describe_log_groups(logGroupNamePrefix=group_name)["logGroups"]
            (group,) = [group for group in groups if group["logGroupName"] == group_name]
            assert group["retentionInDays"] == 30


def test_stages_share_no_resources(aws: EmbeddedAws, stacks: dict[str, str]) -> None:
    dev = _outputs(aws, stacks["dev"])
    prod = _outputs(aws, stacks["prod"])
    for key in ("TableName", "TableArn", "StreamArn", "BucketName", "FailureQueueArn"):
        assert dev[key] != prod[key], key
    assert dev["Stage"] == "dev"
    assert prod["Stage"] == "prod"


# ---------------------------------------------------------------- what moto skips or ignores


def _resources_of_type(template: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [
        resource["Properties"]
        for resource in template["Resources"].values()
        if resource["Type"] == resource_type
    ]


def test_template_table_recovery(template: dict[str, Any]) -> None:
    # moto 5.2 ignores PointInTimeRecoverySpecification in templates.
    tables = _resources_of_type(template, "AWS::DynamoDB::Table")
    assert len(tables) == 2  # the stores and the submission log
    for table in tables:
        assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert table["BillingMode"] == "PAY_PER_REQUEST"


def test_template_bucket_is_private(template: dict[str, Any]) -> None:
    (bucket,) = _resources_of_type(template, "AWS::S3::Bucket")
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }

    (policy,) = _resources_of_type(template, "AWS::S3::BucketPolicy")
    allows = [item for item in policy["PolicyDocument"]["Statement"] if item["Effect"] == "Allow"]
    assert len(allows) == 1
    assert allows[0]["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allows[0]["Action"] == "s3:GetObject"
    assert "AWS:SourceArn" in allows[0]["Condition"]["StringEquals"]


def test_template_distribution_uses_oac(template: dict[str, Any]) -> None:
    (distribution,) = _resources_of_type(template, "AWS::CloudFront::Distribution")
    config = distribution["DistributionConfig"]
    (origin,) = config["Origins"]
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["TileOriginAccessControl", "Id"]}
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}

    behavior = config["DefaultCacheBehavior"]
    assert behavior["Compress"] is True
    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behavior["CachePolicyId"] == {"Ref": "TileCachePolicy"}
    assert behavior["ResponseHeadersPolicyId"] == {"Ref": "TileResponseHeadersPolicy"}


def test_template_cache_honours_origin(template: dict[str, Any]) -> None:
    (policy,) = _resources_of_type(template, "AWS::CloudFront::CachePolicy")
    config = policy["CachePolicyConfig"]
    assert config["MinTTL"] == 0

    key = config["ParametersInCacheKeyAndForwardedToOrigin"]
    # No header in the key, so Origin never splits the cache.
    assert key["HeadersConfig"] == {"HeaderBehavior": "none"}
    assert key["CookiesConfig"] == {"CookieBehavior": "none"}
    assert key["QueryStringsConfig"] == {"QueryStringBehavior": "none"}
    assert key["EnableAcceptEncodingGzip"] is True
    assert key["EnableAcceptEncodingBrotli"] is True


def test_template_cors_from_any_origin(template: dict[str, Any]) -> None:
    (policy,) = _resources_of_type(template, "AWS::CloudFront::ResponseHeadersPolicy")
    cors = policy["ResponseHeadersPolicyConfig"]["CorsConfig"]
    assert cors["AccessControlAllowOrigins"] == {"Items": ["*"]}
    assert "GET" in cors["AccessControlAllowMethods"]["Items"]
    assert cors["AccessControlAllowCredentials"] is False
    assert cors["OriginOverride"] is True


def test_template_short_error_caching(template: dict[str, Any]) -> None:
    (distribution,) = _resources_of_type(template, "AWS::CloudFront::Distribution")
    responses = distribution["DistributionConfig"]["CustomErrorResponses"]
    cached = {item["ErrorCode"]: item["ErrorCachingMinTTL"] for item in responses}
    assert set(cached) == {403, 404}
    assert all(seconds <= 10 for seconds in cached.values())


def test_template_alarms(template: dict[str, Any]) -> None:
    alarms = _resources_of_type(template, "AWS::CloudWatch::Alarm")
    metrics = {(alarm["Namespace"], alarm["MetricName"]) for alarm in alarms}
    assert ("AWS/Lambda", "IteratorAge") in metrics
    assert ("Stockfeed", "TileAgeSeconds") in metrics
    assert ("AWS/ApiGateway", "5XXError") in metrics


def test_template_outputs(template: dict[str, Any]) -> None:
    assert {
        "TableName",
        "StreamArn",
        "BucketName",
        "DistributionDomainName",
        "FailureQueueArn",
    } <= set(template["Outputs"])


# ---------------------------------------------------------------- write-config


def test_write_config_sets_stage_environment(
    aws: EmbeddedAws, stacks: dict[str, str], config_copy: Path
) -> None:
    before = json.loads(config_copy.read_text())
    outputs = _outputs(aws, stacks["dev"])

    result = _run(
        "write-config", "--stage", "dev", "--stack", stacks["dev"], "--config", str(config_copy)
    )

    assert result.exit_code == 0, result.output
    after = json.loads(config_copy.read_text())
    variables = after["stages"]["dev"]["environment_variables"]
    assert variables["STOCKFEED_STAGE"] == "dev"
    assert variables["STOCKFEED_TABLE"] == outputs["TableName"]
    assert variables["STOCKFEED_BUCKET"] == outputs["BucketName"]
    assert variables["STOCKFEED_STREAM_ARN"] == outputs["StreamArn"]
    assert variables["STOCKFEED_UTC_OFFSET"] == "+09:00"

    # Everything except the dev stage's variables is as it was.
    before["stages"]["dev"]["environment_variables"] = variables
    assert after == before


def test_write_config_renders_exact_policies(
    aws: EmbeddedAws, stacks: dict[str, str], config_copy: Path
) -> None:
    outputs = _outputs(aws, stacks["prod"])

    result = _run(
        "write-config", "--stage", "prod", "--stack", stacks["prod"], "--config", str(config_copy)
    )

    assert result.exit_code == 0, result.output
    api = json.loads((config_copy.parent / policy_file_name("prod", API_FUNCTION)).read_text())
    stream = json.loads(
        (config_copy.parent / policy_file_name("prod", STREAM_FUNCTION)).read_text()
    )
    api_resources = _resources_by_action(api)
    stream_resources = _resources_by_action(stream)
    assert api_resources["dynamodb:UpdateItem"] == {outputs["TableArn"]}
    assert stream_resources["dynamodb:GetRecords"] == {f"{outputs['TableArn']}/stream/*"}
    assert stream_resources["s3:PutObject"] == {f"arn:aws:s3:::{outputs['BucketName']}/v1/*"}
    assert stream_resources["sqs:SendMessage"] == {outputs["FailureQueueArn"]}
    _check_least_privilege(api, API_FUNCTION)
    _check_least_privilege(stream, STREAM_FUNCTION)


def test_write_config_rejects_other_stage(stacks: dict[str, str], config_copy: Path) -> None:
    before = config_copy.read_text()

    result = _run(
        "write-config", "--stage", "prod", "--stack", stacks["dev"], "--config", str(config_copy)
    )

    assert result.exit_code != 0
    assert "serves stage dev, not prod" in result.output
    assert config_copy.read_text() == before


def test_print_env_exports_stage(config_copy: Path) -> None:
    result = _run("print-env", "--stage", "prod", "--config", str(config_copy))

    assert result.exit_code == 0, result.output
    assert "export STOCKFEED_STAGE=prod" in result.output.splitlines()
    assert "export STOCKFEED_TABLE=stockfeed-prod-stores" in result.output.splitlines()


# ---------------------------------------------------------------- configure-stream


def _lambda_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return {}\n")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def stream_function(aws: EmbeddedAws, stacks: dict[str, str]) -> str:
    """The dev stream handler and its mapping as `chalice deploy` leaves them; never invoked."""
    role = aws.client("iam").create_role(
        RoleName=f"stockfeed-dev-on_store_change-{uuid.uuid4().hex[:6]}",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]
    lambda_client = aws.client("lambda")
    name = function_name("dev", STREAM_FUNCTION)
    lambda_client.create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=role["Arn"],
        Handler="app.handler",
        Code={"ZipFile": _lambda_zip()},
    )
    lambda_client.create_event_source_mapping(
        EventSourceArn=_outputs(aws, stacks["dev"])["StreamArn"],
        FunctionName=name,
        BatchSize=100,
        StartingPosition="LATEST",
    )
    return name


def test_configure_stream_sets_error_handling(
    aws: EmbeddedAws, stacks: dict[str, str], stream_function: str
) -> None:
    outputs = _outputs(aws, stacks["dev"])

    result = _run("configure-stream", "--stage", "dev", "--stack", stacks["dev"])

    assert result.exit_code == 0, result.output
    lambda_client = aws.client("lambda")
    (mapping,) = lambda_client.list_event_source_mappings(FunctionName=stream_function)[
        "EventSourceMappings"
    ]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["MaximumRetryAttempts"] == MAX_RETRY_ATTEMPTS
    assert mapping["DestinationConfig"] == {
        "OnFailure": {"Destination": outputs["FailureQueueArn"]}
    }
    assert mapping["BatchSize"] == 100


def test_configure_stream_is_repeatable(stacks: dict[str, str], stream_function: str) -> None:
    first = _run("configure-stream", "--stage", "dev", "--stack", stacks["dev"])
    second = _run("configure-stream", "--stage", "dev", "--stack", stacks["dev"])

    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert json.loads(first.output) == json.loads(second.output)


def test_configure_stream_without_mapping(stacks: dict[str, str]) -> None:
    # The prod stack has a stream but no function reads it in this test.
    result = _run(
        "configure-stream",
        "--stage",
        "prod",
        "--stack",
        stacks["prod"],
        "--function-name",
        "stockfeed-prod-missing",
    )

    assert result.exit_code != 0
    assert "no event source mapping connects" in result.output


# ---------------------------------------------------------------- IAM policies


def _statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    statements = policy["Statement"]
    return [statements] if isinstance(statements, dict) else list(statements)


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _resources_by_action(policy: dict[str, Any]) -> dict[str, set[str]]:
    granted: dict[str, set[str]] = {}
    for statement in _statements(policy):
        if statement["Effect"] != "Allow":
            continue
        for action in _as_list(statement["Action"]):
            granted.setdefault(action, set()).update(_as_list(statement["Resource"]))
    return granted


def _check_least_privilege(policy: dict[str, Any], function: str) -> None:
    granted = _resources_by_action(policy)
    assert set(granted) == EXPECTED_ACTIONS[function]
    # Stricter than "no data action on *": no action at all, and every resource is an ARN.
    for action, resources in granted.items():
        assert "*" not in resources, f"{action} is granted on every resource"
        assert all(resource.startswith("arn:") for resource in resources), action
    for statement in _statements(policy):
        assert "NotAction" not in statement
        assert "NotResource" not in statement


def _committed_policy(stage: str, function: str) -> dict[str, Any]:
    """The policy that Chalice attaches to a function's role, found the way Chalice finds it."""
    config_from_disk = json.loads((CHALICE_DIR / "config.json").read_text())
    config = Config(chalice_stage=stage, function_name=function, config_from_disk=config_from_disk)
    assert config.autogen_policy is False
    assert config.iam_policy_file == policy_file_name(stage, function)
    policy: dict[str, Any] = json.loads((CHALICE_DIR / config.iam_policy_file).read_text())
    return policy


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("function", [API_FUNCTION, STREAM_FUNCTION, REFRESH_FUNCTION])
def test_policy_least_privilege(stage: str, function: str) -> None:
    _check_least_privilege(_committed_policy(stage, function), function)


@pytest.mark.parametrize("stage", STAGES)
def test_policy_names_own_stage(stage: str) -> None:
    other = "prod" if stage == "dev" else "dev"
    for function in (API_FUNCTION, STREAM_FUNCTION, REFRESH_FUNCTION):
        resources = set().union(*_resources_by_action(_committed_policy(stage, function)).values())
        assert all(f"stockfeed-{stage}" in resource for resource in resources)
        assert not any(f"stockfeed-{other}" in resource for resource in resources)


def test_policy_api_cannot_write_tiles() -> None:
    for stage in STAGES:
        api = _resources_by_action(_committed_policy(stage, API_FUNCTION))
        stream = _resources_by_action(_committed_policy(stage, STREAM_FUNCTION))
        assert not any(action.startswith("s3:") for action in api)
        # The stream handler only prunes submission ids: no reads or deletes of items, and
        # puts only into the submission log.
        assert {action for action in stream if action.endswith("Item")} == {
            "dynamodb:UpdateItem",
            "dynamodb:PutItem",
        }
        assert all(
            arn.endswith(f"table/stockfeed-{stage}-submissions")
            for arn in stream["dynamodb:PutItem"]
        )


def test_policy_tables_differ_by_stage() -> None:
    tables = {}
    buckets = {}
    for stage in STAGES:
        tables[stage] = _resources_by_action(_committed_policy(stage, API_FUNCTION))[
            "dynamodb:UpdateItem"
        ]
        buckets[stage] = _resources_by_action(_committed_policy(stage, STREAM_FUNCTION))[
            "s3:PutObject"
        ]
    assert tables["dev"].isdisjoint(tables["prod"])
    assert buckets["dev"].isdisjoint(buckets["prod"])


def test_app_has_no_admin_routes(app_module: Any) -> None:
    # Store import, keys and rebuilds run as the ops CLI with the operator's credentials.
    for path in app_module.app.routes:
        for word in ("admin", "import", "key", "rebuild"):
            assert word not in path.lower(), path


# ---------------------------------------------------------------- smoke


class _ChaliceProxy(BaseHTTPRequestHandler):
    """Serves the Chalice app over real HTTP, so the smoke check runs as against API Gateway."""

    client: Client

    def do_GET(self) -> None:
        self._forward(self.client.http.get(self.path, headers=dict(self.headers)))

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._forward(self.client.http.post(self.path, headers=dict(self.headers), body=body))

    def _forward(self, response: Any) -> None:
        self.send_response(response.status_code)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def deployed_stage(app_module: Any, stage: Any) -> Iterator[tuple[str, str, str]]:
    """API and tile URLs of a stage on 127.0.0.1, and the stage name that both report."""
    name = app_module.SETTINGS.stage
    settings = Settings(
        stage=name, table_name=stage.settings.table_name, bucket_name=stage.settings.bucket_name
    )
    Runtime(settings).regenerator.rebuild({})
    # The smoke check sends the current time, so the API must use the real clock here.
    app_module.use_runtime(Runtime(stage.settings))

    with Client(app_module.app) as client:
        handler = type("Proxy", (_ChaliceProxy,), {"client": client})
        api_server = HTTPServer(("127.0.0.1", 0), handler)
        tile_server = TileServer(0, stage.s3, stage.settings.bucket_name)
        threads = [
            threading.Thread(target=api_server.serve_forever, daemon=True),
            tile_server.start_in_background(),
        ]
        threads[0].start()
        try:
            yield f"http://127.0.0.1:{api_server.server_address[1]}", tile_server.base_url, name
        finally:
            for server in (api_server, tile_server):
                server.shutdown()
                server.server_close()


def test_smoke_passes_on_healthy_stage(deployed_stage: tuple[str, str, str]) -> None:
    api_url, tiles_url, name = deployed_stage

    result = _run("smoke", "--stage", name, "--api-url", api_url, "--tiles-url", tiles_url)

    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["problems"] == {
        "health": [],
        "table_access": [],
        "manifest": [],
    }


def test_smoke_fails_on_other_stage(deployed_stage: tuple[str, str, str]) -> None:
    api_url, tiles_url, name = deployed_stage
    other = "prod" if name != "prod" else "dev"

    result = _run("smoke", "--stage", other, "--api-url", api_url, "--tiles-url", tiles_url)

    assert result.exit_code == 1
    assert "smoke check failed: health, manifest" in result.output


def test_smoke_fails_when_unreachable(deployed_stage: tuple[str, str, str]) -> None:
    _, tiles_url, name = deployed_stage

    result = _run(
        "smoke", "--stage", name, "--api-url", "http://127.0.0.1:9", "--tiles-url", tiles_url
    )

    assert result.exit_code == 1
    assert "health, table_access" in result.output


# ---------------------------------------------------------------- infra updates
# Last in the file because they change the stacks that the tests above read.


def test_infra_rerun_unchanged(stacks: dict[str, str], moto_template: Path) -> None:
    args = ["infra", "--stage", "dev", "--stack", stacks["dev"], "--template", str(moto_template)]

    result = _run(*args)

    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["result"] == "unchanged"


def test_infra_update_keeps_parameters(
    aws: EmbeddedAws, stacks: dict[str, str], moto_template: Path
) -> None:
    name = stacks["prod"]
    args = ["infra", "--stage", "prod", "--stack", name, "--template", str(moto_template)]

    first = _run(*args, "--parameter", "LogRetentionDays=14")
    second = _run(*args)

    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    stack = aws.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
    parameters = {item["ParameterKey"]: item["ParameterValue"] for item in stack["Parameters"]}
    assert parameters["Stage"] == "prod"
    assert parameters["LogRetentionDays"] == "14"
    assert parameters["ApiGatewayStage"] == "api"


@pytest.mark.xfail(
    strict=True,
    reason="moto 5.2.5 returns 500 (KeyError) to UsePreviousValue for a parameter that kept "
    "its template default at creation; AWS accepts it",
)
def test_infra_update_of_defaults(stacks: dict[str, str], moto_template: Path) -> None:
    args = ["infra", "--stage", "dev", "--stack", stacks["dev"], "--template", str(moto_template)]

    result = _run(*args, "--parameter", "LogRetentionDays=14")

    assert result.exit_code == 0, result.output
