"""The OpenAPI 3.1 document of the submission API, generated from the pydantic models.

Request schemas come from the models that validate requests (`chalicelib.submissions`), so the
document cannot drift from what the API accepts. Response schemas are the models below, which
describe the bodies that `app.py` returns. `docs/openapi.json` is this module's output:

    python -m chalicelib.openapi > docs/openapi.json

A test regenerates the document and compares it with the committed file, and the fuzz test
checks live responses against it.
"""

import json
import sys
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter
from pydantic.json_schema import JsonSchemaMode

from chalicelib.messages import MESSAGES
from chalicelib.stock import RemainStat
from chalicelib.submissions import MAX_BATCH_EVENTS, Batch, Submission

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1.0.0"
SUBMISSIONS_PATH = "/v1/stores/{code}/submissions"
_REF_TEMPLATE = "#/components/schemas/{model}"
_JSON = "application/json"
_ERROR_CODES: list[JsonValue] = [*sorted(MESSAGES)]


class SubmissionState(BaseModel):
    """The store's state after one accepted or replayed submission."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="Store code.")
    stock: int | None = Field(description="Masks in stock; null before the first delivery.")
    remain_stat: RemainStat | None = Field(
        description=(
            "Stock band: plenty (100 or more), some (30 to 99), few (2 to 29), empty (0 or 1), "
            "break (sales paused). Null before the first delivery."
        )
    )
    stock_at: str | None = Field(
        description="occurred_at of the latest delivery, ISO 8601 with offset."
    )
    created_at: str | None = Field(
        description="When the server received the latest change, ISO 8601 with offset."
    )
    version: int = Field(description="Number of changes recorded for the store.")
    submission_id: str = Field(description="The submission_id of the request.")
    replayed: bool = Field(
        description=(
            "True when this submission_id was accepted before with the same body. Nothing was "
            "changed, and the state is the store's current one."
        )
    )
    superseded: bool = Field(
        description=(
            "True for a pause or resume older than the store's latest one. It was recorded "
            "but did not change the pause state."
        )
    )


class ErrorDetail(BaseModel):
    """The reason a request, or one event of a batch, was rejected."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(
        description="Machine-readable error code.",
        json_schema_extra={"enum": _ERROR_CODES},
    )
    field: str | None = Field(
        description=(
            "The field at fault: a body field such as `quantity` or `events.3.quantity`, "
            "`body`, `code` or the `Authorization` header."
        )
    )
    message: str = Field(description="What to fix, in Korean or English (Accept-Language).")


class ErrorResponse(BaseModel):
    """The body of every 4xx response."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorDetail


class BatchResult(BaseModel):
    """The outcome of one event of a batch, in request order."""

    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0, description="Position of the event in `events`, from 0.")
    submission_id: str | None = Field(
        default=None, description="The event's submission_id; present when status is 200."
    )
    status: int = Field(
        description="The HTTP status the event would have had on its own: 200, 401, 403 or 409."
    )
    state: SubmissionState | None = Field(default=None, description="Present when status is 200.")
    error: ErrorDetail | None = Field(default=None, description="Present when status is not 200.")


class BatchResponse(BaseModel):
    """The body of a 200 response to a batch."""

    model_config = ConfigDict(extra="forbid")

    results: list[BatchResult] = Field(min_length=1, max_length=MAX_BATCH_EVENTS)


class Health(BaseModel):
    """The body of the liveness probe."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["ok"]
    stage: str


def _component_schemas() -> dict[str, Any]:
    """JSON Schemas of every request and response body, keyed by component name."""
    adapters: list[tuple[str, TypeAdapter[Any]]] = [
        ("Event", TypeAdapter(Submission)),
        ("Batch", TypeAdapter(Batch)),
        ("SubmissionState", TypeAdapter(SubmissionState)),
        ("BatchResponse", TypeAdapter(BatchResponse)),
        ("ErrorResponse", TypeAdapter(ErrorResponse)),
        ("Health", TypeAdapter(Health)),
    ]
    # Validation mode for responses too: a field with a default may be absent from a body.
    inputs: list[tuple[str, JsonSchemaMode, TypeAdapter[Any]]] = [
        (name, "validation", adapter) for name, adapter in adapters
    ]
    top_level, definitions = TypeAdapter.json_schemas(inputs, ref_template=_REF_TEMPLATE)
    schemas: dict[str, Any] = dict(definitions.get("$defs", {}))
    for (name, _mode), schema in top_level.items():
        # Named models come back as a bare $ref; the Event union comes back inline.
        if schema.get("$ref") != _REF_TEMPLATE.format(model=name):
            schemas[name] = schema
    return dict(sorted(schemas.items()))


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF_TEMPLATE.format(model=name)}


def _json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {_JSON: {"schema": schema}}}


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, **_json_content(_ref("ErrorResponse"))}


def _submissions_operation() -> dict[str, Any]:
    return {
        "operationId": "postSubmissions",
        "summary": "Record one event, or a batch of events, for one store.",
        "description": (
            'The body is one event or `{"events": [...]}` with 1 to '
            f"{MAX_BATCH_EVENTS} events. A batch is validated as a whole: one invalid event "
            "rejects the request with 400 and nothing is written. Valid batches are applied "
            "event by event, in order, and each event gets its own result."
        ),
        "parameters": [
            {
                "name": "code",
                "in": "path",
                "required": True,
                "description": "Store code from the official store list.",
                "schema": {"type": "string", "pattern": "^[0-9]{6,12}$"},
            },
            {
                "name": "Accept-Language",
                "in": "header",
                "required": False,
                "description": "ko (the default) or en: the language of error messages.",
                "schema": {"type": "string"},
            },
        ],
        "requestBody": {
            "required": True,
            **_json_content({"oneOf": [_ref("Event"), _ref("Batch")]}),
        },
        "responses": {
            "200": {
                "description": "The event was recorded or replayed, or the batch was applied.",
                **_json_content({"oneOf": [_ref("SubmissionState"), _ref("BatchResponse")]}),
            },
            "400": _error_response("The body is not valid JSON or breaks the schema."),
            "401": _error_response("The API key is missing, malformed, revoked or replaced."),
            "403": _error_response("The API key belongs to another store."),
            "409": _error_response(
                "Oversell, sale before any delivery, or a submission_id reused with another body."
            ),
            "415": {"description": "The Content-Type is not application/json."},
        },
        "security": [{"storeKey": []}],
    }


def _get_operation(operation_id: str, summary: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "summary": summary,
        "responses": {"200": {"description": summary, **_json_content(schema)}},
        "security": [],
    }


@cache
def openapi_document() -> dict[str, Any]:
    """Build the OpenAPI document; the result is cached, so callers must not change it."""
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "stockfeed submission API",
            "version": API_VERSION,
            "description": (
                "Stores post their mask deliveries and sales; the stock appears in the public "
                "tiles within seconds. Times without an offset are Korea Standard Time."
            ),
        },
        "paths": {
            SUBMISSIONS_PATH: {"post": _submissions_operation()},
            "/v1/health": {"get": _get_operation("getHealth", "Liveness probe.", _ref("Health"))},
            "/v1/openapi.json": {
                "get": _get_operation("getOpenApi", "This document.", {"type": "object"})
            },
        },
        "components": {
            "schemas": _component_schemas(),
            "securitySchemes": {
                "storeKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "sf1.<store code>.<salt>.<secret>",
                    "description": "The store's API key, issued by the operator.",
                }
            },
        },
    }


def render_document() -> str:
    """Return the document as the text committed in docs/openapi.json."""
    return json.dumps(openapi_document(), ensure_ascii=False, indent=2) + "\n"


def main() -> None:
    """Print the document on stdout."""
    sys.stdout.write(render_document())


if __name__ == "__main__":
    main()
