"""Today's purchase rule from web/purchase-rule.js and the published web/rules.json, run in node.

The rule logic lives only in JavaScript (the map page computes it), so these tests run it in
node once per module and check a table of instants around Korean midnight and the weekend.
"""

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
RULES = json.loads((REPO_ROOT / "web" / "rules.json").read_text(encoding="utf-8"))
SCRIPT = Path(__file__).parent / "js" / "purchase_rule_check.mjs"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")

# (instant, date in KST, expected kind, expected digits)
CASES = [
    ("2020-03-16T09:00:00+09:00", "2020-03-16", "digits", [1, 6]),
    ("2020-03-17T09:00:00+09:00", "2020-03-17", "digits", [2, 7]),
    ("2020-03-18T09:00:00+09:00", "2020-03-18", "digits", [3, 8]),
    ("2020-03-19T09:00:00+09:00", "2020-03-19", "digits", [4, 9]),
    ("2020-03-20T09:00:00+09:00", "2020-03-20", "digits", [5, 0]),
    ("2020-03-21T09:00:00+09:00", "2020-03-21", "anyone", []),
    ("2020-03-22T09:00:00+09:00", "2020-03-22", "anyone", []),
    # 00:30 KST on Tuesday is still Monday in UTC: the rule follows Korea, not UTC.
    ("2020-03-16T15:30:00Z", "2020-03-17", "digits", [2, 7]),
    ("2020-03-17T14:59:59Z", "2020-03-17", "digits", [2, 7]),
    ("2020-03-17T15:00:00Z", "2020-03-18", "digits", [3, 8]),
    # Friday 23:59 KST is Friday; one minute later the weekend starts.
    ("2020-03-20T14:59:00Z", "2020-03-20", "digits", [5, 0]),
    ("2020-03-20T15:00:00Z", "2020-03-21", "anyone", []),
    # Before the first published rule.
    ("2020-03-08T12:00:00+09:00", "2020-03-08", "unpublished", []),
]


def _run(rules: dict[str, Any], instants: list[str], invalid: list[Any]) -> dict[str, Any]:
    argument = json.dumps({"rules": rules, "instants": instants, "invalid": invalid})
    completed = subprocess.run(
        ["node", str(SCRIPT), argument],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    output: dict[str, Any] = json.loads(completed.stdout)
    return output


def _invalid_rules() -> list[dict[str, Any]]:
    wrong_schema = {**RULES, "schema": "other"}
    wrong_offset = {**RULES, "utc_offset": "KST"}
    digit_out_of_range = copy.deepcopy(RULES)
    digit_out_of_range["purchase_rules"][0]["weekdays"]["mon"] = [1, 16]
    missing_weekday = copy.deepcopy(RULES)
    del missing_weekday["purchase_rules"][0]["weekdays"]["sun"]
    bad_date = copy.deepcopy(RULES)
    bad_date["purchase_rules"][0]["valid_from"] = "9 March 2020"
    return [wrong_schema, wrong_offset, digit_out_of_range, missing_weekday, bad_date]


@pytest.fixture(scope="module")
def computed() -> dict[str, Any]:
    return _run(RULES, [case[0] for case in CASES], _invalid_rules())


@pytest.mark.parametrize(("instant", "date", "kind", "digits"), CASES)
def test_rule_for_instant(computed, instant, date, kind, digits):
    result = next(item for item in computed["results"] if item["instant"] == instant)

    assert result["date"] == date
    assert result["kind"] == kind
    assert result["digits"] == digits


def test_invalid_rules_rejected(computed):
    errors = computed["errors"]

    assert errors[0].startswith("RangeError: rules schema")
    assert "invalid utc_offset" in errors[1]
    assert "weekdays.mon is invalid" in errors[2]
    assert "weekdays.sun is invalid" in errors[3]
    assert "valid_from must be a date" in errors[4]


def test_later_rule_replaces_earlier():
    rules = copy.deepcopy(RULES)
    rules["purchase_rules"].append(
        {
            "valid_from": "2020-06-01",
            "valid_until": None,
            "weekdays": {
                day: "anyone" for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
            },
        }
    )

    output = _run(rules, ["2020-05-29T12:00:00+09:00", "2020-06-02T12:00:00+09:00"], [])

    before, after = output["results"]
    assert before["kind"] == "digits"
    assert before["digits"] == [5, 0]
    assert after["kind"] == "anyone"


def test_rule_ends_at_valid_until():
    rules = copy.deepcopy(RULES)
    rules["purchase_rules"][0]["valid_until"] = "2020-03-20"

    output = _run(rules, ["2020-03-20T23:00:00+09:00", "2020-03-21T00:00:00+09:00"], [])

    last_day, after = output["results"]
    assert last_day["kind"] == "digits"
    assert after["kind"] == "unpublished"
