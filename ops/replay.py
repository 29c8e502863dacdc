"""The replay driver: sends a planned day of real store events through the HTTP API.

Events go out at their planned times divided by `speed`, each store's events in order on one
worker. A freshness probe watches the published tiles the way a polite client does (the
manifest first, then only the tiles whose version moved) and times how long each accepted
submission takes to appear in every tile of its store.
"""

import http.client
import json
import logging
import queue
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from chalicelib.publishing import TileBucket
from ops.history import PlannedEvent

logger = logging.getLogger(__name__)


@dataclass
class ReplayResult:
    """Counts and timings of one replay."""

    accepted: int = 0
    rejected: int = 0
    rejection_reasons: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    freshness_s: list[float] = field(default_factory=list)
    never_seen: int = 0
    failed: int = 0

    def freshness_p95(self) -> float | None:
        return _percentile(self.freshness_s, 95)

    def latency_percentile(self, percent: float) -> float | None:
        return _percentile(self.latencies_ms, percent)


def _percentile(values: Sequence[float], percent: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(percent) - 1]


class SubmissionClient:
    """Posts submissions over keep-alive HTTP connections, one per thread."""

    def __init__(self, base_url: str, timeout_s: float = 30.0, attempts: int = 4) -> None:
        parts = urlsplit(base_url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._timeout_s = timeout_s
        self._attempts = attempts
        self._local = threading.local()

    def post(self, code: str, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """POST one submission; returns the status and the decoded JSON body."""
        payload = json.dumps(body).encode("utf-8")
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Authorization": f"Bearer {key}",
            "Accept-Language": "en",
        }
        for attempt in range(1, self._attempts + 1):
            connection = self._connection()
            try:
                connection.request("POST", f"/v1/stores/{code}/submissions", payload, headers)
                response = connection.getresponse()
                data = response.read()
                return response.status, json.loads(data or b"{}")
            except (http.client.HTTPException, OSError) as error:
                # A closed keep-alive connection or a timeout: resend on a new connection, as a
                # POS does. The submission id makes the resend safe if the first one landed.
                self._local.connection = None
                connection.close()
                if attempt == self._attempts:
                    raise
                logger.warning("resending submission for store %s after %r", code, error)
        raise AssertionError("unreachable")

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout_s)
            self._local.connection = connection
        return connection


class FreshnessProbe:
    """Times accepted submissions until every tile of their store shows them."""

    def __init__(self, bucket: TileBucket, poll_interval_s: float = 0.1) -> None:
        self._bucket = bucket
        self._poll_interval_s = poll_interval_s
        self._lock = threading.Lock()
        # (code, tile id) -> (version expected, accepted at, monotonic seconds)
        self._pending: dict[tuple[str, str], tuple[int, float]] = {}
        self._remaining: dict[tuple[str, int], set[str]] = {}
        self._seen_versions: dict[str, int] = {}
        self.freshness_s: list[float] = []

    def expect(self, code: str, version: int, tile_ids: Sequence[str], accepted_at: float) -> None:
        with self._lock:
            self._remaining[(code, version)] = set(tile_ids)
            for tile_id in tile_ids:
                self._pending[(code, tile_id)] = (version, accepted_at)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._remaining)

    def poll_once(self) -> None:
        stored = self._bucket.read(self._bucket.manifest_key)
        if stored is None:
            return
        with self._lock:
            wanted = {tile_id for (_code, tile_id) in self._pending}
        for tile_id in wanted:
            version = stored.document["tiles"].get(tile_id, {}).get("version", 0)
            if version != self._seen_versions.get(tile_id):
                self._seen_versions[tile_id] = version
                self._check_tile(tile_id)

    def _check_tile(self, tile_id: str) -> None:
        tile = self._bucket.read(self._bucket.object_key(tile_id))
        if tile is None:
            return
        now = time.monotonic()
        versions = {row["code"]: row["version"] for row in tile.document["stores"]}
        with self._lock:
            for (code, pending_tile), (version, accepted_at) in list(self._pending.items()):
                if pending_tile != tile_id or versions.get(code, -1) < version:
                    continue
                del self._pending[(code, pending_tile)]
                self._settle(code, version, tile_id, now - accepted_at)

    def _settle(self, code: str, version: int, tile_id: str, elapsed_s: float) -> None:
        # Earlier versions of the same store are shown too once a later one is.
        for (pending_code, pending_version), tiles in list(self._remaining.items()):
            if pending_code != code or pending_version > version:
                continue
            tiles.discard(tile_id)
            if not tiles:
                del self._remaining[(pending_code, pending_version)]
                if pending_version == version:
                    self.freshness_s.append(elapsed_s)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.poll_once()
            except Exception:
                logger.exception("freshness probe failed to read tiles; retrying")
            stop.wait(self._poll_interval_s)


def replay(
    plan: Sequence[PlannedEvent],
    client: SubmissionClient,
    keys: dict[str, str],
    *,
    speed: float,
    tiles_of: Callable[[str], Sequence[str]],
    probe: FreshnessProbe | None = None,
    workers: int = 8,
    progress: Callable[[int], None] | None = None,
) -> ReplayResult:
    """Send the plan; each store's events stay in order on one of `workers` threads."""
    result = ReplayResult()
    lock = threading.Lock()
    queues: list[queue.Queue[tuple[int, PlannedEvent] | None]] = [
        queue.Queue() for _ in range(workers)
    ]

    origin = plan[0].submit_at if plan else datetime.now(UTC)
    wall_origin = datetime.now(UTC)

    def replay_time(moment: datetime) -> datetime:
        # The replayed day runs `speed` times faster than real time, and so do its event times.
        # The API receives a day that happens now, compressed.
        return wall_origin + (moment - origin) / speed

    def work(inbox: queue.Queue[tuple[int, PlannedEvent] | None]) -> None:
        while (item := inbox.get()) is not None:
            sequence, event = item
            occurred_at = replay_time(event.occurred_at)
            _send(sequence, event, occurred_at, client, keys, result, lock, tiles_of, probe)
            if progress:
                progress(1)

    threads = [threading.Thread(target=work, args=(inbox,), daemon=True) for inbox in queues]
    for thread in threads:
        thread.start()
    _dispatch(plan, origin, speed, queues)
    for inbox in queues:
        inbox.put(None)
    for thread in threads:
        thread.join()
    return result


def _dispatch(
    plan: Sequence[PlannedEvent],
    origin: datetime,
    speed: float,
    queues: list[queue.Queue[tuple[int, PlannedEvent] | None]],
) -> None:
    """Hand each event to its store's worker at its scaled time."""
    started = time.monotonic()
    for sequence, event in enumerate(plan):
        due = started + (event.submit_at - origin).total_seconds() / speed
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        queues[hash(event.code) % len(queues)].put((sequence, event))


def _send(
    sequence: int,
    event: PlannedEvent,
    occurred_at: datetime,
    client: SubmissionClient,
    keys: dict[str, str],
    result: ReplayResult,
    lock: threading.Lock,
    tiles_of: Callable[[str], Sequence[str]],
    probe: FreshnessProbe | None,
) -> None:
    body: dict[str, Any] = {
        "type": event.kind,
        "occurred_at": occurred_at.isoformat(),
        "submission_id": f"replay-{event.code}-{event.occurred_at:%Y%m%d}-{sequence}",
    }
    if event.quantity is not None:
        body["quantity"] = event.quantity
    sent = time.monotonic()
    try:
        status, response = client.post(event.code, keys[event.code], body)
    except (http.client.HTTPException, OSError):
        logger.exception("submission for store %s failed after retries", event.code)
        with lock:
            result.failed += 1
        return
    accepted_at = time.monotonic()
    with lock:
        result.latencies_ms.append((accepted_at - sent) * 1000)
        if status == 200:
            result.accepted += 1
        else:
            result.rejected += 1
            result.rejection_reasons[response.get("error", {}).get("code", str(status))] += 1
    if status == 200 and probe is not None:
        probe.expect(event.code, response["version"], tiles_of(event.code), accepted_at)
