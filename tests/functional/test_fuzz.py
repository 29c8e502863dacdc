"""Generated requests from the OpenAPI document never cause a 5xx or a stray write.

A smaller run of `python -m bench.fuzz_api` (which sends 10,000), against `chalice local` and
the moto server. Requests the API rejects must change no table. Accepted ones must change the
store's version and stock by exactly the quantities in their events. Every response must match
the document.
"""

import pytest

from bench.fuzz_api import ApiServer, fuzz

pytestmark = pytest.mark.functional

REQUESTS = 500
SEED = 20200317
TIME_BUDGET_S = 300.0


def test_fuzzed_requests_fail_cleanly(api_server: ApiServer) -> None:
    report = fuzz(api_server, REQUESTS, SEED, TIME_BUDGET_S)

    assert report.aborted is None
    assert report.requests == REQUESTS, f"time budget ran out after {report.elapsed_s} s"
    assert report.server_errors == 0, report.nonconforming_samples
    assert report.transport_errors == 0, report.nonconforming
    assert report.write_violations == 0, report.violation_samples
    assert not report.nonconforming, report.nonconforming_samples
    # The run is only meaningful if it reached every outcome, writes included.
    assert report.applied_events > 0
    assert {200, 400, 401, 403, 409} <= set(report.statuses), report.statuses
