"""The curl examples of the POS guides run as written and respond as the guides show.

Each guide (English and Korean) runs against its own `chalice local` and moto server with two
fresh stores. A `sh` block that starts with `curl` is run with bash, with STOCKFEED_API,
STORE_KEY and SECOND_STORE_KEY set. The `http` block after it is the documented response:
its status, Content-Type and JSON body must match.

The guides use times from 17 March 2020, but the server checks event times against its own
clock. Every timestamp in a command and in its documented response is therefore moved by the
same amount, so that the guide's "now" (GUIDE_NOW) becomes the real now. `created_at` is the
time the server received the change, so only its form is checked.
"""

import itertools
import json
import os
import re
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from bench.fuzz_api import ApiServer
from chalicelib.openapi import SUBMISSIONS_PATH, openapi_document

pytestmark = pytest.mark.functional

DOCS = Path(__file__).resolve().parents[2] / "docs"
GUIDES = [DOCS / "pos-integration.md", DOCS / "pos-integration.ko.md"]
KST = timezone(timedelta(hours=9))
# Later than every event in the guides and close enough that the last ones are live events.
GUIDE_NOW = datetime(2020, 3, 17, 9, 40, tzinfo=KST)
FIRST_STORE, SECOND_STORE = "34840559", "37844571"
CURL_TIMEOUT_S = 30

_FENCE = re.compile(r"^```(?P<language>\w*)\n(?P<text>.*?)^```$", re.MULTILINE | re.DOTALL)
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:Z|[+-]\d{2}:\d{2})?")


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """An HTTP response: status, Content-Type and body text."""

    status: int
    content_type: str | None
    body: str


@dataclass(frozen=True, slots=True)
class Example:
    """A curl command from a guide and the response the guide documents for it."""

    line: int
    command: str
    response: HttpResponse


def parse_response(text: str) -> HttpResponse:
    """Parse a status line, headers, a blank line and a body (curl -i output or a doc block)."""
    head, _, body = text.replace("\r\n", "\n").partition("\n\n")
    status_line, *header_lines = head.splitlines()
    headers = dict(line.split(":", 1) for line in header_lines if ":" in line)
    content_type = next(
        (value.strip() for name, value in headers.items() if name.lower() == "content-type"),
        None,
    )
    return HttpResponse(int(status_line.split()[1]), content_type, body.strip())


def read_examples(path: Path) -> list[Example]:
    """Collect every curl block of a guide with the http block that follows it."""
    text = path.read_text(encoding="utf-8")
    blocks = list(_FENCE.finditer(text))
    examples = []
    for block, following in itertools.pairwise(blocks):
        if block["language"] != "sh" or not block["text"].startswith("curl "):
            continue
        assert following["language"] == "http", f"{path.name}: curl block without a response"
        line = text.count("\n", 0, block.start()) + 1
        examples.append(Example(line, block["text"], parse_response(following["text"])))
    return examples


def shift_timestamps(text: str, delta: timedelta) -> str:
    """Move every ISO 8601 timestamp in `text` by `delta`, keeping its form."""

    def shift(match: re.Match[str]) -> str:
        original = match.group()
        moment = datetime.fromisoformat(original)
        if moment.tzinfo is None:
            return (moment + delta).isoformat()
        shifted = (moment + delta).isoformat()
        return shifted.replace("+00:00", "Z") if original.endswith("Z") else shifted

    return _TIMESTAMP.sub(shift, text)


def mask_received_times(value: Any) -> Any:
    """Replace every created_at value with a marker, after checking that it is a timestamp."""
    if isinstance(value, list):
        return [mask_received_times(item) for item in value]
    if not isinstance(value, dict):
        return value
    masked = {key: mask_received_times(item) for key, item in value.items()}
    if "created_at" in masked:
        assert datetime.fromisoformat(masked["created_at"]).tzinfo is not None, masked
        masked["created_at"] = "<received at>"
    return masked


def run_curl(command: str, server: ApiServer) -> HttpResponse:
    """Run a guide's curl command with the guide's variables pointing at the test server."""
    environment = {
        "PATH": os.environ["PATH"],
        "STOCKFEED_API": server.base_url,
        "STORE_KEY": server.keys[FIRST_STORE],
        "SECOND_STORE_KEY": server.keys[SECOND_STORE],
    }
    completed = subprocess.run(
        ["bash", "-c", command],
        env=environment,
        capture_output=True,
        text=True,
        timeout=CURL_TIMEOUT_S,
        check=True,
    )
    return parse_response(completed.stdout)


@pytest.mark.parametrize("guide", GUIDES, ids=lambda path: path.name)
def test_guide_examples_respond_as_documented(guide: Path, api_server: ApiServer) -> None:
    assert set(api_server.keys) == {FIRST_STORE, SECOND_STORE}
    examples = read_examples(guide)
    delta = datetime.now(KST).replace(microsecond=0) - GUIDE_NOW

    for example in examples:
        where = f"{guide.name}:{example.line}"
        actual = run_curl(shift_timestamps(example.command, delta), api_server)
        documented_body = json.loads(shift_timestamps(example.response.body, delta))

        assert actual.status == example.response.status, (where, actual.body)
        assert actual.content_type == example.response.content_type, where
        assert mask_received_times(json.loads(actual.body)) == mask_received_times(
            documented_body
        ), where


def test_guides_show_same_examples() -> None:
    english, korean = (read_examples(guide) for guide in GUIDES)

    assert len(english) >= 10
    assert [example.response.status for example in korean] == [
        example.response.status for example in english
    ]


@pytest.mark.parametrize("guide", GUIDES, ids=lambda path: path.name)
def test_guide_responses_match_openapi(guide: Path) -> None:
    document = openapi_document()
    operation = document["paths"][SUBMISSIONS_PATH]["post"]

    for example in read_examples(guide):
        response = operation["responses"][str(example.response.status)]
        schema = response.get("content", {}).get("application/json", {}).get("schema")
        if schema is None:
            continue
        # The component references resolve against the document that carries them.
        validator = Draft202012Validator({**schema, "components": document["components"]})
        errors = [
            error.message for error in validator.iter_errors(json.loads(example.response.body))
        ]
        assert not errors, f"{guide.name}:{example.line}: {errors}"
