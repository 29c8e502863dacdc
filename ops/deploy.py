"""Deployment commands that connect the infra stack, `chalice deploy` and the deployed stage.

The CloudFormation stack in infra/stockfeed.yaml creates what Chalice does not (table, stream,
bucket, CDN, failure queue, alarms). `write-config` copies its outputs into the stage's
environment in .chalice/config.json and renders the stage's IAM policies with the exact ARNs.
`configure-stream` sets the error handling that Chalice cannot set on the stream's event
source mapping. `smoke` checks a deployed stage over HTTPS. Every command uses the operator's
AWS credentials and region, as boto3 finds them.
"""

import json
import os
import shlex
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import click
from botocore.exceptions import ClientError, WaiterError

from chalicelib.keys import new_api_key
from chalicelib.tiles import MANIFEST_SCHEMA

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO_ROOT / ".chalice" / "config.json"
DEFAULT_TEMPLATE = REPO_ROOT / "infra" / "stockfeed.yaml"

APP_NAME = "stockfeed"
STAGES = ("dev", "prod")
API_FUNCTION = "api_handler"
STREAM_FUNCTION = "on_store_change"
REFRESH_FUNCTION = "refresh_stale_tiles"

# After this many retries of a failed batch, Lambda sends a record of it to the failure queue
# and moves on, so one bad batch cannot hold up its shard for the stream's 24-hour retention.
MAX_RETRY_ATTEMPTS = 5
MAPPING_SETTLE_TIMEOUT_S = 120.0
MAPPING_POLL_INTERVAL_S = 2.0
HTTP_TIMEOUT_S = 10.0
# A store code that no real store has (real ones are 8 digits), for the smoke check's probe.
PROBE_STORE_CODE = "0"

# A new CloudFront distribution can take 15 minutes or more to deploy.
STACK_WAIT_DELAY_S = 15
STACK_WAIT_MAX_ATTEMPTS = 240

_COMPLETE_STACK_STATES = {"CREATE_COMPLETE", "UPDATE_COMPLETE"}
_SETTLED_MAPPING_STATES = {"Enabled", "Disabled"}


@dataclass(frozen=True, slots=True)
class StackOutputs:
    """The outputs of one stage's infra stack."""

    stage: str
    table_name: str
    table_arn: str
    stream_arn: str
    bucket_name: str
    failure_queue_arn: str
    distribution_domain: str | None
    submissions_table_name: str

    @property
    def arn_parts(self) -> tuple[str, str, str]:
        """Partition, region and account of the stack, read from the table ARN."""
        _, partition, _, region, account, _ = self.table_arn.split(":", 5)
        return partition, region, account


@dataclass(frozen=True, slots=True)
class PolicyTarget:
    """Names and ARN parts in one stage's IAM policies, where `*` matches any region or account."""

    stage: str
    partition: str
    region: str
    account: str
    table_name: str
    bucket_name: str
    queue_name: str
    submissions_table_name: str

    @classmethod
    def from_outputs(cls, outputs: StackOutputs) -> "PolicyTarget":
        partition, region, account = outputs.arn_parts
        return cls(
            stage=outputs.stage,
            partition=partition,
            region=region,
            account=account,
            table_name=outputs.table_name,
            bucket_name=outputs.bucket_name,
            queue_name=outputs.failure_queue_arn.rsplit(":", 1)[1],
            submissions_table_name=outputs.submissions_table_name,
        )


def function_name(stage: str, function: str) -> str:
    """Return the Lambda function name that Chalice gives a function of the app in a stage."""
    # Chalice keeps the API handler's pre-1.0 name, <app>-<stage>, for compatibility.
    if function == API_FUNCTION:
        return f"{APP_NAME}-{stage}"
    return f"{APP_NAME}-{stage}-{function}"


def policy_file_name(stage: str, function: str) -> str:
    """Return the file under .chalice/ that contains one function's IAM policy in one stage."""
    short = {API_FUNCTION: "api", STREAM_FUNCTION: "stream", REFRESH_FUNCTION: "refresh"}[function]
    return f"policy-{stage}-{short}.json"


# ---------------------------------------------------------------- infra stack


def parse_parameters(pairs: tuple[str, ...]) -> dict[str, str]:
    """Parse template parameters from KEY=VALUE strings."""
    parameters = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--parameter")
        parameters[key] = value
    return parameters


def _existing_stack(cloudformation: Any, stack_name: str) -> dict[str, Any] | None:
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if "does not exist" in error.response["Error"].get("Message", ""):
            return None
        raise
    stack: dict[str, Any] = stacks[0]
    return stack


def deploy_stack(
    cloudformation: Any, stack_name: str, template_body: str, parameters: Mapping[str, str]
) -> str:
    """Create or update the stack and wait for it. Return created, updated or unchanged."""
    explicit_parameters = [
        {"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()
    ]
    waiter_config = {"Delay": STACK_WAIT_DELAY_S, "MaxAttempts": STACK_WAIT_MAX_ATTEMPTS}

    stack = _existing_stack(cloudformation, stack_name)
    if stack is None:
        cloudformation.create_stack(
            StackName=stack_name,
            TemplateBody=template_body,
            Parameters=explicit_parameters,
            EnableTerminationProtection=parameters.get("Stage") == "prod",
        )
        waiter = cloudformation.get_waiter("stack_create_complete")
        waiter.wait(StackName=stack_name, WaiterConfig=waiter_config)
        return "created"

    if stack["StackStatus"] == "ROLLBACK_COMPLETE":
        raise click.ClickException(
            f"stack {stack_name} failed to create and cannot be updated. Read its events, "
            "delete it, and run this command again"
        )

    # Parameters left out keep their current values, not the template defaults.
    previous_parameters = [
        {"ParameterKey": item["ParameterKey"], "UsePreviousValue": True}
        for item in stack.get("Parameters", [])
        if item["ParameterKey"] not in parameters
    ]
    try:
        cloudformation.update_stack(
            StackName=stack_name,
            TemplateBody=template_body,
            Parameters=explicit_parameters + previous_parameters,
        )
    except ClientError as error:
        if "No updates are to be performed" in error.response["Error"].get("Message", ""):
            return "unchanged"
        raise
    waiter = cloudformation.get_waiter("stack_update_complete")
    waiter.wait(StackName=stack_name, WaiterConfig=waiter_config)
    return "updated"


# ---------------------------------------------------------------- stack outputs and config


def read_stack_outputs(cloudformation: Any, stack_name: str, stage: str) -> StackOutputs:
    """Read a finished infra stack's outputs, or raise ClickException unless it serves `stage`."""
    stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    stack = stacks[0]
    status = stack["StackStatus"]
    if status not in _COMPLETE_STACK_STATES:
        raise click.ClickException(
            f"stack {stack_name} is in state {status}. Wait for CREATE_COMPLETE or "
            "UPDATE_COMPLETE, or fix the failed update first"
        )

    values = {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
    required = [
        "Stage",
        "TableName",
        "TableArn",
        "SubmissionsTableName",
        "StreamArn",
        "BucketName",
        "FailureQueueArn",
    ]
    missing = [key for key in required if not values.get(key)]
    if missing:
        raise click.ClickException(
            f"stack {stack_name} has no output {', '.join(missing)}. "
            "Was it created from infra/stockfeed.yaml?"
        )
    if values["Stage"] != stage:
        raise click.ClickException(
            f"stack {stack_name} serves stage {values['Stage']}, not {stage}. "
            "Stages must not share resources."
        )

    return StackOutputs(
        stage=stage,
        table_name=values["TableName"],
        table_arn=values["TableArn"],
        stream_arn=values["StreamArn"],
        bucket_name=values["BucketName"],
        failure_queue_arn=values["FailureQueueArn"],
        distribution_domain=values.get("DistributionDomainName"),
        submissions_table_name=values["SubmissionsTableName"],
    )


def stage_environment(outputs: StackOutputs) -> dict[str, str]:
    """Return the STOCKFEED_* variables that the stack's outputs decide."""
    return {
        "STOCKFEED_STAGE": outputs.stage,
        "STOCKFEED_TABLE": outputs.table_name,
        "STOCKFEED_SUBMISSIONS_TABLE": outputs.submissions_table_name,
        "STOCKFEED_BUCKET": outputs.bucket_name,
        "STOCKFEED_STREAM_ARN": outputs.stream_arn,
    }


def with_stage_environment(
    config: Mapping[str, Any], stage: str, environment: Mapping[str, str]
) -> dict[str, Any]:
    """Return a copy of a Chalice config with `environment` merged into one stage's variables."""
    updated: dict[str, Any] = json.loads(json.dumps(config))
    stages = updated.get("stages", {})
    if stage not in stages:
        raise click.ClickException(f"stage {stage} is not defined in the Chalice config")
    variables = stages[stage].setdefault("environment_variables", {})
    variables.update(environment)
    return updated


def write_json(path: Path, document: Mapping[str, Any]) -> None:
    """Write a JSON file in one step, so a crash never leaves half a config behind."""
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", delete=False
    ) as handle:
        handle.write(text)
    os.replace(handle.name, path)


# ---------------------------------------------------------------- IAM policies


def render_policies(target: PolicyTarget) -> dict[str, dict[str, Any]]:
    """Build each function's IAM policy for one stage, keyed by its file name under .chalice/."""
    return {
        policy_file_name(target.stage, API_FUNCTION): _api_policy(target),
        policy_file_name(target.stage, STREAM_FUNCTION): _stream_policy(target),
        policy_file_name(target.stage, REFRESH_FUNCTION): _refresh_policy(target),
    }


def _arn(target: PolicyTarget, service: str, resource: str) -> str:
    return f"arn:{target.partition}:{service}:{target.region}:{target.account}:{resource}"


def _log_statement(target: PolicyTarget, function: str) -> dict[str, Any]:
    # The infra stack creates the log group (to set retention), so no logs:CreateLogGroup.
    log_group = f"log-group:/aws/lambda/{function_name(target.stage, function)}"
    return {
        "Sid": "WriteOwnLogs",
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": _arn(target, "logs", f"{log_group}:*"),
    }


def _api_policy(target: PolicyTarget) -> dict[str, Any]:
    table = _arn(target, "dynamodb", f"table/{target.table_name}")
    submissions = _arn(target, "dynamodb", f"table/{target.submissions_table_name}")
    return {
        "Version": "2012-10-17",
        "Statement": [
            _log_statement(target, API_FUNCTION),
            {
                # UpdateItem alone, or inside TransactWriteItems, which IAM checks per action.
                "Sid": "RecordSubmissions",
                "Effect": "Allow",
                "Action": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
                "Resource": table,
            },
            {
                "Sid": "LogOldSubmissions",
                "Effect": "Allow",
                "Action": "dynamodb:PutItem",
                "Resource": submissions,
            },
        ],
    }


def _tile_statements(target: PolicyTarget) -> list[dict[str, Any]]:
    """Statements that let a function read and write the tiles under v1/ of its bucket."""
    bucket = f"arn:{target.partition}:s3:::{target.bucket_name}"
    return [
        {
            "Sid": "PublishTiles",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": f"{bucket}/v1/*",
        },
        {
            # Without it S3 returns 403 instead of 404 for a GET of a missing object, so the
            # publisher could not tell a tile it must create from a denied read.
            "Sid": "TellMissingTiles",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": bucket,
        },
    ]


def _stream_policy(target: PolicyTarget) -> dict[str, Any]:
    stream = _arn(target, "dynamodb", f"table/{target.table_name}/stream/*")
    return {
        "Version": "2012-10-17",
        "Statement": [
            _log_statement(target, STREAM_FUNCTION),
            {
                "Sid": "ReadStoreChanges",
                "Effect": "Allow",
                "Action": [
                    "dynamodb:DescribeStream",
                    "dynamodb:GetRecords",
                    "dynamodb:GetShardIterator",
                    "dynamodb:ListStreams",
                ],
                "Resource": stream,
            },
            *_tile_statements(target),
            {
                # Lambda sends the on-failure record with the function's own role.
                "Sid": "ReportFailedBatches",
                "Effect": "Allow",
                "Action": "sqs:SendMessage",
                "Resource": _arn(target, "sqs", target.queue_name),
            },
            {
                # Moving aging submission ids: log them, then remove them from the store item.
                "Sid": "PruneRecentSubmissions",
                "Effect": "Allow",
                "Action": "dynamodb:UpdateItem",
                "Resource": _arn(target, "dynamodb", f"table/{target.table_name}"),
            },
            {
                "Sid": "LogAgedSubmissions",
                "Effect": "Allow",
                "Action": "dynamodb:PutItem",
                "Resource": _arn(target, "dynamodb", f"table/{target.submissions_table_name}"),
            },
        ],
    }


def _refresh_policy(target: PolicyTarget) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            _log_statement(target, REFRESH_FUNCTION),
            {
                # Finds the stores whose last report just passed the stale limit.
                "Sid": "FindStaleStores",
                "Effect": "Allow",
                "Action": "dynamodb:Scan",
                "Resource": _arn(target, "dynamodb", f"table/{target.table_name}"),
            },
            *_tile_statements(target),
        ],
    }


# ---------------------------------------------------------------- event source mapping


def find_stream_mapping(lambda_client: Any, function: str, stream_arn: str) -> dict[str, Any]:
    """Find the one event source mapping from `stream_arn` to `function`."""
    paginator = lambda_client.get_paginator("list_event_source_mappings")
    try:
        mappings: list[dict[str, Any]] = [
            mapping
            for page in paginator.paginate(FunctionName=function)
            for mapping in page["EventSourceMappings"]
        ]
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        raise click.ClickException(
            f"Lambda function {function} not found. Run `chalice deploy` for this stage first."
        ) from error
    matching = [mapping for mapping in mappings if mapping["EventSourceArn"] == stream_arn]
    if len(matching) == 1:
        return matching[0]
    if matching:
        raise click.ClickException(
            f"{len(matching)} event source mappings connect {stream_arn} to {function}. "
            "Delete the extra ones."
        )
    others = ", ".join(mapping["EventSourceArn"] for mapping in mappings) or "none"
    raise click.ClickException(
        f"no event source mapping connects {stream_arn} to {function} (its mappings: {others}). "
        "Run `deploy write-config` and `chalice deploy` for this stage first."
    )


def wait_until_settled(
    lambda_client: Any, uuid: str, sleep: Callable[[float], None] = time.sleep
) -> dict[str, Any]:
    """Poll a mapping until it is Enabled or Disabled, because Lambda rejects updates in between."""
    deadline = time.monotonic() + MAPPING_SETTLE_TIMEOUT_S
    while True:
        mapping: dict[str, Any] = lambda_client.get_event_source_mapping(UUID=uuid)
        if mapping["State"] in _SETTLED_MAPPING_STATES:
            return mapping
        if time.monotonic() >= deadline:
            raise click.ClickException(
                f"event source mapping {uuid} stayed in state {mapping['State']} for "
                f"{MAPPING_SETTLE_TIMEOUT_S:.0f} s. Check it in the Lambda console and retry."
            )
        sleep(MAPPING_POLL_INTERVAL_S)


def error_handling_settings(failure_queue_arn: str) -> dict[str, Any]:
    """Return the event source mapping settings that `configure-stream` applies."""
    return {
        # Without this, Lambda ignores the batchItemFailures that the handler returns.
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "BisectBatchOnFunctionError": True,
        "MaximumRetryAttempts": MAX_RETRY_ATTEMPTS,
        "DestinationConfig": {"OnFailure": {"Destination": failure_queue_arn}},
    }


def configure_mapping(lambda_client: Any, uuid: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Apply `settings` to a mapping and return it as Lambda reports it afterwards."""
    wait_until_settled(lambda_client, uuid)
    lambda_client.update_event_source_mapping(UUID=uuid, **settings)
    mapping = wait_until_settled(lambda_client, uuid)

    differing = [key for key, value in settings.items() if mapping.get(key) != value]
    if differing:
        raise click.ClickException(
            f"event source mapping {uuid} did not keep {', '.join(differing)} after the update"
        )
    return mapping


# ---------------------------------------------------------------- smoke check


@dataclass(frozen=True, slots=True)
class HttpResult:
    """One HTTP response, or the error that stood in for it (status 0)."""

    status: int
    headers: dict[str, str]
    body: bytes
    error: str | None = None

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def http_request(
    url: str, method: str = "GET", headers: Mapping[str, str] | None = None, body: bytes = b""
) -> HttpResult:
    """Send one request. HTTP error statuses are returned, and network errors become status 0."""
    request = urllib.request.Request(
        url, data=body or None, method=method, headers=dict(headers or {})
    )
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
            return HttpResult(response.status, _lower_keys(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return HttpResult(error.code, _lower_keys(error.headers), error.read())
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        return HttpResult(0, {}, b"", error=str(error))


def _lower_keys(headers: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def check_health(api_url: str, stage: str) -> list[str]:
    """Check that GET /v1/health returns 200 for `stage`, and return the problems found."""
    result = http_request(f"{api_url.rstrip('/')}/v1/health")
    if result.status != 200:
        return [f"GET /v1/health returned {result.status or result.error}, expected 200"]
    body = result.json()
    if body != {"status": "ok", "stage": stage}:
        return [f"GET /v1/health returned {body!r}, expected status ok and stage {stage}"]
    return []


def check_table_access(api_url: str) -> list[str]:
    """Check a submission that the API can reject only after asking the table.

    The key is well-formed but random, for a store code that does not exist, so the API must
    consult the table and then answer 401 (or 404 for an unknown store). The conditional
    update fails, so nothing is written. A 500 usually means that the API's role may not call
    the table.
    """
    key = new_api_key(PROBE_STORE_CODE)
    body = {
        "type": "pause",
        "occurred_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "submission_id": f"smoke-{uuid.uuid4().hex[:12]}",
    }
    result = http_request(
        f"{api_url.rstrip('/')}/v1/stores/{PROBE_STORE_CODE}/submissions",
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        body=json.dumps(body).encode(),
    )
    if result.status not in (401, 404):
        return [
            f"POST with an unknown key returned {result.status or result.error}, "
            "expected 401 or 404"
        ]
    return []


def check_manifest(tiles_url: str, stage: str) -> list[str]:
    """Check GET /v1/manifest.json through the CDN, requested cross-origin."""
    result = http_request(
        f"{tiles_url.rstrip('/')}/v1/manifest.json",
        headers={"Origin": "https://smoke-check.invalid", "Accept-Encoding": "identity"},
    )
    if result.status != 200:
        return [
            f"GET /v1/manifest.json returned {result.status or result.error}, expected 200. "
            "Run `rebuild-tiles` after the first deploy."
        ]

    problems = []
    manifest = result.json()
    if not isinstance(manifest, dict) or manifest.get("schema") != MANIFEST_SCHEMA:
        problems.append(f"the manifest is not a {MANIFEST_SCHEMA} document")
    elif manifest.get("stage") != stage:
        problems.append(f"the manifest belongs to stage {manifest.get('stage')}, not {stage}")
    if result.headers.get("access-control-allow-origin") != "*":
        problems.append("the manifest response has no Access-Control-Allow-Origin: *")
    if "cache-control" not in result.headers:
        problems.append("the manifest response has no Cache-Control header")
    return problems


def smoke_check(stage: str, api_url: str, tiles_url: str) -> dict[str, list[str]]:
    """Run every smoke check and return its problems, keyed by check name."""
    return {
        "health": check_health(api_url, stage),
        "table_access": check_table_access(api_url),
        "manifest": check_manifest(tiles_url, stage),
    }


# ---------------------------------------------------------------- commands

_stage_option = click.option(
    "--stage", type=click.Choice(STAGES), required=True, help="Chalice stage."
)
_stack_option = click.option(
    "--stack", "stack_name", required=True, help="Name of the stage's infra stack."
)
_config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=DEFAULT_CONFIG,
    show_default=True,
    help="Chalice config file. The policy files are written beside it.",
)


@click.group()
def deploy() -> None:
    """Connect the infra stack and a Chalice stage, and check the deployed stage."""


@deploy.command("infra")
@_stage_option
@_stack_option
@click.option(
    "--template",
    "template_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=DEFAULT_TEMPLATE,
    show_default=True,
    help="CloudFormation template of the stage's resources.",
)
@click.option(
    "--parameter",
    "parameter_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Template parameter, for example AlarmTopicArn=arn:... Repeat for more.",
)
def infra(
    stage: str, stack_name: str, template_path: Path, parameter_pairs: tuple[str, ...]
) -> None:
    """Create or update the stage's infra stack and wait until it is complete."""
    parameters = {**parse_parameters(parameter_pairs), "Stage": stage}
    cloudformation = boto3.client("cloudformation")
    template_body = template_path.read_text(encoding="utf-8")

    try:
        result = deploy_stack(cloudformation, stack_name, template_body, parameters)
    except WaiterError as error:
        raise click.ClickException(
            f"stack {stack_name} did not complete: {error}. Read its events in CloudFormation."
        ) from error

    outputs = read_stack_outputs(cloudformation, stack_name, stage)
    summary = {"stack": stack_name, "result": result, "stream_arn": outputs.stream_arn}
    click.echo(json.dumps(summary, indent=2))


@deploy.command("write-config")
@_stage_option
@_stack_option
@_config_option
def write_config(stage: str, stack_name: str, config_path: Path) -> None:
    """Write the stack's outputs into the stage's config and render its IAM policies."""
    outputs = read_stack_outputs(boto3.client("cloudformation"), stack_name, stage)
    environment = stage_environment(outputs)

    config = json.loads(config_path.read_text(encoding="utf-8"))
    write_json(config_path, with_stage_environment(config, stage, environment))

    policies = render_policies(PolicyTarget.from_outputs(outputs))
    for file_name, document in policies.items():
        write_json(config_path.parent / file_name, document)

    summary = {
        "stage": stage,
        "config": str(config_path),
        "environment_variables": environment,
        "policies": sorted(policies),
        "failure_queue_arn": outputs.failure_queue_arn,
        "tiles_url": f"https://{outputs.distribution_domain}"
        if outputs.distribution_domain
        else None,
    }
    click.echo(json.dumps(summary, indent=2))


@deploy.command("configure-stream")
@_stage_option
@_stack_option
@click.option(
    "--function-name",
    "function_name_option",
    default=None,
    help="Lambda function that reads the stream [default: stockfeed-<stage>-on_store_change].",
)
def configure_stream(stage: str, stack_name: str, function_name_option: str | None) -> None:
    """Set batch item failures, bisection, retries and the failure queue on the stream mapping."""
    outputs = read_stack_outputs(boto3.client("cloudformation"), stack_name, stage)
    function = function_name_option or function_name(stage, STREAM_FUNCTION)

    lambda_client = boto3.client("lambda")
    mapping = find_stream_mapping(lambda_client, function, outputs.stream_arn)
    settings = error_handling_settings(outputs.failure_queue_arn)
    configured = configure_mapping(lambda_client, mapping["UUID"], settings)

    summary = {"uuid": configured["UUID"], "function": function, **settings}
    click.echo(json.dumps(summary, indent=2))


@deploy.command("smoke")
@_stage_option
@click.option("--api-url", required=True, help="Base URL of the stage's API, as chalice prints.")
@click.option("--tiles-url", required=True, help="Base URL of the tile CDN, https://<domain>.")
def smoke(stage: str, api_url: str, tiles_url: str) -> None:
    """Check a deployed stage: health, table access and the manifest through the CDN."""
    problems = smoke_check(stage, api_url, tiles_url)
    click.echo(json.dumps({"stage": stage, "problems": problems}, indent=2))
    failed = [name for name, found in problems.items() if found]
    if failed:
        raise click.ClickException(f"smoke check failed: {', '.join(failed)}")


@deploy.command("print-env")
@_stage_option
@_config_option
def print_env(stage: str, config_path: Path) -> None:
    """Print `export` lines of the stage's STOCKFEED_* variables, for the ops CLI."""
    config = json.loads(config_path.read_text(encoding="utf-8"))
    variables = config.get("stages", {}).get(stage, {}).get("environment_variables", {})
    for name in sorted(variables):
        click.echo(f"export {name}={shlex.quote(str(variables[name]))}")
