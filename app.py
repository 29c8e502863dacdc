"""stockfeed's Lambda functions: the submission API and the stock stream handler.

This module is the thin edge: it parses requests and events, calls one domain object from
`chalicelib`, and maps domain errors to HTTP responses. Nothing here talks to AWS directly.
"""

import json
import os
import time
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from chalice.app import Chalice, CloudWatchEvent, DynamoDBEvent, Rate, Response
from pydantic import ValidationError

from chalicelib.errors import (
    EventTimeError,
    ForeignStoreKeyError,
    InsufficientStockError,
    InvalidApiKeyError,
    NoStockRecordedError,
    StockfeedError,
    SubmissionConflictError,
    UnknownStoreError,
)
from chalicelib.messages import MESSAGES, Language, choose_language, describe_validation_error
from chalicelib.regeneration import (
    MalformedRecordError,
    change_from_record,
    snapshots_from_items,
)
from chalicelib.runtime import Runtime
from chalicelib.settings import Settings
from chalicelib.stock import LedgerOutcome
from chalicelib.submissions import Batch, Event, SubmissionService, submission_adapter

SETTINGS = Settings.from_environment()
logger = Logger(service="stockfeed", level=SETTINGS.log_level)
app = Chalice(app_name="stockfeed")
app.log.setLevel(SETTINGS.log_level)

JSON_UTF8 = "application/json; charset=utf-8"


_runtime: Runtime | None = None


def runtime() -> Runtime:
    """Return the process's domain objects, building them on first use."""
    global _runtime
    if _runtime is None:
        _runtime = Runtime(SETTINGS)
    return _runtime


def use_runtime(replacement: Runtime | None) -> None:
    """Swap the domain objects, for tests and the local stack that pick resources at run time."""
    global _runtime
    _runtime = replacement


def _json_response(status: int, body: dict[str, Any]) -> Response:
    return Response(
        body=json.dumps(body, ensure_ascii=False),
        status_code=status,
        headers={"Content-Type": JSON_UTF8, "Cache-Control": "no-store"},
    )


def _error_body(
    language: Language, message_id: str, field: str | None = None, **values: Any
) -> dict[str, Any]:
    message = MESSAGES[message_id]
    return {
        "code": message_id,
        "field": field,
        "message": message.render(language, field=field, **values),
    }


def _error(
    status: int, language: Language, message_id: str, field: str | None = None, **values: Any
) -> Response:
    return _json_response(status, {"error": _error_body(language, message_id, field, **values)})


def _outcome_body(outcome: LedgerOutcome, submission_id: str) -> dict[str, Any]:
    state = outcome.state
    remain_stat = state.remain_stat
    return {
        "code": state.code,
        "stock": state.stock,
        "remain_stat": remain_stat.value if remain_stat else None,
        "stock_at": state.stock_at,
        "created_at": state.received_at,
        "version": state.version,
        "submission_id": submission_id,
        "replayed": outcome.replayed,
        "superseded": outcome.superseded,
    }


def _bearer_token(headers: Any) -> str | None:
    value = headers.get("authorization") or ""
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _parse_body(raw: bytes, language: Language) -> Any | Response:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _error(400, language, "body_not_utf8", "body")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        return _error(400, language, "body_not_json", "body", detail=error.msg)


@app.route("/v1/stores/{code}/submissions", methods=["POST"], content_types=["application/json"])
def post_submission(code: str) -> Response:
    """Record one event, or a batch of up to 100, for the store in the path."""
    request = app.current_request
    assert request is not None  # chalice sets it for every route invocation
    language = choose_language(request.headers.get("accept-language"))
    raw_body = request.raw_body
    body = _parse_body(raw_body if isinstance(raw_body, bytes) else b"", language)
    if isinstance(body, Response):
        return body
    if not isinstance(body, dict):
        return _error(400, language, "body_not_object", "body")
    service = runtime().submissions
    try:
        key_hash = service.authorize(code, _bearer_token(request.headers))
        events = _validate(body, service)
    except ValidationError as error:
        field, message_id, values = describe_validation_error(error.errors()[0])
        return _error(400, language, message_id, field, **values)
    except _InvalidEventTime as invalid:
        status, error_body = _domain_error(invalid.error, language, invalid.field)
        return _json_response(status, {"error": error_body})
    except StockfeedError as error:
        status, error_body = _domain_error(error, language)
        return _json_response(status, {"error": error_body})
    if "events" in body:
        results = [_submit_one(service, code, key_hash, event, language) for event in events]
        return _json_response(200, {"results": _indexed(results)})
    status, result = _submit_one(service, code, key_hash, events[0], language)
    return _json_response(status, result if status == 200 else {"error": result})


class _InvalidEventTime(Exception):
    def __init__(self, error: EventTimeError, field: str) -> None:
        self.error = error
        self.field = field


def _validate(body: dict[str, Any], service: SubmissionService) -> list[Event]:
    """Validate the whole request before anything is written: one bad event rejects all."""
    events = (
        list(Batch.model_validate(body).events)
        if "events" in body
        else [submission_adapter.validate_python(body)]
    )
    for index, event in enumerate(events):
        try:
            service.check_time(event)
        except EventTimeError as error:
            field = f"events.{index}.occurred_at" if "events" in body else "occurred_at"
            raise _InvalidEventTime(error, field) from error
    return events


def _submit_one(
    service: SubmissionService, code: str, key_hash: str, event: Event, language: Language
) -> tuple[int, dict[str, Any]]:
    try:
        outcome = service.submit(code, key_hash, event)
    except StockfeedError as error:
        return _domain_error(error, language)
    logger.info(
        "submission accepted",
        extra={
            "store": code,
            "type": event.type,
            "submission_id": event.submission_id,
            "version": outcome.state.version,
            "replayed": outcome.replayed,
        },
    )
    return 200, _outcome_body(outcome, event.submission_id)


def _indexed(results: list[tuple[int, dict[str, Any]]]) -> list[dict[str, Any]]:
    indexed = []
    for index, (status, body) in enumerate(results):
        entry: dict[str, Any] = {"index": index, "status": status}
        if status == 200:
            entry["submission_id"] = body["submission_id"]
            entry["state"] = body
        else:
            entry["error"] = body
        indexed.append(entry)
    return indexed


def _domain_error(
    error: StockfeedError, language: Language, field: str = "occurred_at"
) -> tuple[int, dict[str, Any]]:
    match error:
        case InvalidApiKeyError():
            return 401, _error_body(language, "unauthorized", "Authorization")
        case ForeignStoreKeyError():
            return 403, _error_body(
                language,
                "forbidden",
                "Authorization",
                key_code=error.key_code,
                code=error.target_code,
            )
        case NoStockRecordedError():
            return 409, _error_body(language, "no_stock", "type", code=error.code)
        case InsufficientStockError():
            return 409, _error_body(
                language,
                "oversell",
                "quantity",
                code=error.code,
                available=error.available,
                requested=error.requested,
            )
        case SubmissionConflictError():
            return 409, _error_body(
                language,
                "submission_conflict",
                "submission_id",
                submission_id=error.submission_id,
            )
        case EventTimeError():
            message_id = "event_in_future" if error.reason == "in the future" else "event_too_old"
            return 400, _error_body(language, message_id, field, limit=error.limit)
        case UnknownStoreError():
            return 404, _error_body(language, "unknown_store", "code", code=error.code)
    raise error


def _publish_tile_age(records: list[dict[str, Any]]) -> None:
    """Emit how long the oldest change of the batch took to reach its tiles (CloudWatch EMF)."""
    created = [
        record["dynamodb"]["ApproximateCreationDateTime"]
        for record in records
        if isinstance(record.get("dynamodb", {}).get("ApproximateCreationDateTime"), int | float)
    ]
    # Only Lambda ships stdout to CloudWatch; elsewhere (local stack, benchmarks) the embedded
    # metric lines would mix with the program's own output.
    if not created or "AWS_LAMBDA_FUNCTION_NAME" not in os.environ:
        return
    # Wall-clock time on purpose: the stream stamps records with it.
    age_s = max(0.0, time.time() - min(created))
    with single_metric(
        name="TileAgeSeconds", unit=MetricUnit.Seconds, value=age_s, namespace="Stockfeed"
    ) as metric:
        metric.add_dimension(name="Stage", value=runtime().settings.stage)


@app.route("/v1/openapi.json", methods=["GET"])
def openapi() -> Response:
    """Serve the OpenAPI 3.1 document of this API, generated from the request models."""
    # Imported on first use: building the schemas costs time that a cold start should not pay.
    from chalicelib.openapi import openapi_document

    return _json_response(200, openapi_document())


@app.route("/v1/health", methods=["GET"])
def health() -> dict[str, str]:
    """Liveness probe; touches no AWS resource."""
    return {"status": "ok", "stage": SETTINGS.stage}


@app.on_dynamodb_record(
    stream_arn=SETTINGS.stream_arn,
    batch_size=100,
    starting_position="LATEST",
    name="on_store_change",
)
def on_store_change(event: DynamoDBEvent) -> dict[str, Any]:
    """Republish the tiles of the stores in this batch; report records that failed."""
    changes = []
    failures: list[str] = []
    # Raw records, not chalice's DynamoDBRecord: that class raises on a record missing a key,
    # which would fail the whole batch instead of the one bad record.
    for record in event.to_dict().get("Records", []):
        try:
            changes.append(change_from_record(record))
        except MalformedRecordError:
            logger.exception(
                "skipping malformed stream record", extra={"event_id": record.get("eventID")}
            )
            failures.append(str(record.get("dynamodb", {}).get("SequenceNumber", "")))
    outcome = runtime().regenerator.apply(changes)
    _publish_tile_age(event.to_dict().get("Records", []))
    try:
        runtime().submission_log.prune(event.to_dict().get("Records", []))
    except Exception:
        # The ids stay in the store items, which is safe; the next batch tries again.
        logger.exception("moving submission ids to the log failed")
    logger.info("tiles published", extra={"records": len(changes), "tiles": len(outcome.published)})
    failed = sorted({*failures, *outcome.failed_sequence_numbers} - {""})
    return {"batchItemFailures": [{"itemIdentifier": number} for number in failed]}


# Stores that stopped reporting must turn "unknown" even when nothing else touches their tiles.
# Each run looks back twelve intervals, so a few failed runs leave no store behind.
STALE_REFRESH_MINUTES = 5
STALE_LOOKBACK_S = 12 * STALE_REFRESH_MINUTES * 60


@app.schedule(Rate(STALE_REFRESH_MINUTES, unit=Rate.MINUTES), name="refresh_stale_tiles")
def refresh_stale_tiles(event: CloudWatchEvent) -> dict[str, int]:
    """Republish the rows of stores whose last report just passed the stale limit."""
    start, end = runtime().regenerator.stale_window(STALE_LOOKBACK_S)
    stores = list(snapshots_from_items(runtime().registry.scan_received_between(start, end)))
    outcome = runtime().regenerator.refresh_stale(stores)
    # The 2020-shaped full lists are large (about 7 MB together), so they follow on this timer.
    runtime().regenerator.publish_full_lists()
    logger.info(
        "stale rows refreshed", extra={"stores": len(stores), "tiles": len(outcome.published)}
    )
    return {"stores": len(stores), "tiles": len(outcome.published)}
