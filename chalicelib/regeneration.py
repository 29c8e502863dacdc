"""Tile regeneration: from changed store items to republished tiles.

Incremental path (the stream handler): each stream record carries the store's old and new
image, so the tiles it leaves and joins are known without a database read. Each dirty tile is
read from the bucket, patched with the newer rows and written back with a conditional PUT, once
per batch however many of its stores changed. A row only replaces a row with a lower or equal
`version`, so a redelivered or reordered record cannot move a store backwards, and a write that
lost a race to another writer is redone on the fresh copy.

Full rebuild (the ops CLI): every tile is built from a table scan and merged into the published
tile under the same rules. A rebuild running beside the stream handler therefore cannot undo
what the handler published after the scan began.
"""

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta, tzinfo
from typing import Any

from chalicelib.clock import Clock, format_timestamp
from chalicelib.compat import compat_documents, full_list_documents
from chalicelib.grid import GRID_ZOOM
from chalicelib.publishing import StoredDocument, TileBucket, TileConflictError
from chalicelib.tiles import (
    MANIFEST_SCHEMA,
    StoreSnapshot,
    build_tile,
    snapshot_from_item,
    store_row,
    tile_ids_for,
)

logger = logging.getLogger(__name__)

# A conditional PUT loses only to another writer of the same tile; a few rounds settle it.
MAX_WRITE_ATTEMPTS = 8
# Tiles of one batch are patched in parallel: each patch is mostly waiting on S3.
PATCH_WORKERS = 8

Patch = dict[str, "dict[str, Any] | _Removal"]


class MalformedRecordError(ValueError):
    """A stream record that does not describe a store item."""


@dataclass(frozen=True, slots=True)
class StoreChange:
    """One store's item before and after a write (None when absent)."""

    sequence_number: str
    old: StoreSnapshot | None
    new: StoreSnapshot | None


@dataclass(frozen=True, slots=True)
class _Removal:
    version: int


@dataclass
class BatchOutcome:
    """Result of one batch: the tiles written and the sequence numbers that failed."""

    published: list[str] = field(default_factory=list)
    failed_sequence_numbers: list[str] = field(default_factory=list)


def change_from_record(record: dict[str, Any]) -> StoreChange:
    """Parse one Lambda-shaped DynamoDB stream record."""
    try:
        body = record["dynamodb"]
        sequence_number = str(body["SequenceNumber"])
        old_image = body.get("OldImage")
        new_image = body.get("NewImage")
        old = snapshot_from_item(old_image) if old_image else None
        new = snapshot_from_item(new_image) if new_image else None
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise MalformedRecordError(f"unreadable stream record: {error}") from error
    if old is None and new is None:
        raise MalformedRecordError("stream record carries neither an old nor a new image")
    return StoreChange(sequence_number=sequence_number, old=old, new=new)


class TileRegenerator:
    """Publishes the tiles that changed stores belong to, and full rebuilds."""

    def __init__(
        self,
        bucket: TileBucket,
        *,
        stage: str,
        zone: tzinfo,
        clock: Clock,
        stale_after_s: int,
        zoom: int = GRID_ZOOM,
    ) -> None:
        self._bucket = bucket
        self._stage = stage
        self._zone = zone
        self._clock = clock
        self._stale_after = timedelta(seconds=stale_after_s)
        self._zoom = zoom

    def scan_marker(self) -> str:
        """Return the current time as published, to pass to `rebuild` as the scan's start."""
        return format_timestamp(self._clock(), self._zone)

    def _stale_before(self) -> str:
        return format_timestamp(self._clock() - self._stale_after, self._zone)

    def _publishable(self, store: StoreSnapshot | None) -> StoreSnapshot | None:
        # Demo stores exist for non-prod stages only; prod never lists them.
        if store is not None and self._stage == "prod" and store.source == "demo":
            return None
        return store

    def tiles_of(self, store: StoreSnapshot | None) -> list[str]:
        """Return the tiles this stage lists a store in (none for a demo store in prod)."""
        store = self._publishable(store)
        return tile_ids_for(store, self._zoom) if store else []

    def apply(self, changes: Sequence[StoreChange]) -> BatchOutcome:
        """Patch every tile touched by the changes, once each, then the manifest."""
        patches, sources = self._collect_patches(changes)
        outcome = BatchOutcome()
        summaries: dict[str, dict[str, Any]] = {}
        with ThreadPoolExecutor(max_workers=PATCH_WORKERS) as pool:
            futures = {
                tile_id: pool.submit(self._patch_tile, tile_id, patch)
                for tile_id, patch in patches.items()
            }
        for tile_id, future in futures.items():
            try:
                summary = future.result()
            except Exception:
                # The tile stays dirty: its records are reported failed and redelivered.
                logger.exception("publishing tile %s failed", tile_id)
                outcome.failed_sequence_numbers.extend(sources[tile_id])
                continue
            if summary is not None:
                summaries[tile_id] = summary
                outcome.published.append(tile_id)
        if summaries:
            self._update_manifest(summaries)
        outcome.failed_sequence_numbers = sorted(set(outcome.failed_sequence_numbers))
        return outcome

    def _collect_patches(
        self, changes: Sequence[StoreChange]
    ) -> tuple[dict[str, Patch], dict[str, list[str]]]:
        patches: dict[str, Patch] = defaultdict(dict)
        sources: dict[str, list[str]] = defaultdict(list)
        stale_before = self._stale_before()
        for change in changes:
            new = self._publishable(change.new)
            joined = self.tiles_of(new)
            left = [tile_id for tile_id in self.tiles_of(change.old) if tile_id not in joined]
            for tile_id in joined:
                assert new is not None
                patches[tile_id][new.code] = store_row(new, stale_before)
                sources[tile_id].append(change.sequence_number)
            for tile_id in left:
                assert change.old is not None
                version = new.version if new else change.old.version
                patches[tile_id][change.old.code] = _Removal(version)
                sources[tile_id].append(change.sequence_number)
        return patches, sources

    def _patch_tile(self, tile_id: str, patch: Patch) -> dict[str, Any] | None:
        key = self._bucket.object_key(tile_id)
        for _attempt in range(MAX_WRITE_ATTEMPTS):
            stored = self._bucket.read(key)
            rows = _rows_of(stored)
            if not _merge(rows, patch):
                return None  # nothing newer than what is published: leave the bytes alone
            document = build_tile(tile_id, rows, stage=self._stage)
            try:
                self._bucket.write(key, document, stored.etag if stored else None)
            except TileConflictError:
                logger.info("tile %s changed while patching; retrying", tile_id)
                continue
            self._write_compat(tile_id, document)
            return _summary(document)
        raise TileConflictError(key)

    def _write_compat(self, tile_id: str, document: dict[str, Any]) -> None:
        # NOTE: the 2020-shaped copies are written without a condition, after their tile. Two
        # racing writers can leave a copy one change behind its tile until the next change.
        for suffix, compat_document in compat_documents(tile_id, document):
            self._bucket.write_unconditionally(self._bucket.object_key_of(suffix), compat_document)

    def publish_full_lists(self) -> int:
        """Write the 2020-shaped full store and sales lists from the province tiles."""
        manifest = self._bucket.read(self._bucket.manifest_key)
        tile_ids = [
            t for t in (manifest.document["tiles"] if manifest else {}) if t.count("/") == 1
        ]
        documents = []
        for tile_id in tile_ids:
            stored = self._bucket.read(self._bucket.object_key(tile_id))
            if stored is not None:
                documents.append(stored.document)
        written = 0
        for suffix, document in full_list_documents(documents):
            self._bucket.write_unconditionally(self._bucket.object_key_of(suffix), document)
            written += 1
        return written

    def _update_manifest(self, summaries: dict[str, dict[str, Any]]) -> None:
        key = self._bucket.manifest_key
        for _attempt in range(MAX_WRITE_ATTEMPTS):
            stored = self._bucket.read(key)
            tiles = dict(stored.document.get("tiles", {})) if stored else {}
            tiles |= summaries
            try:
                self._bucket.write(key, self._manifest(tiles), stored.etag if stored else None)
            except TileConflictError:
                continue
            return
        raise TileConflictError(key)

    def _manifest(self, tiles: dict[str, dict[str, Any]]) -> dict[str, Any]:
        generated = [entry["generated_at"] for entry in tiles.values() if entry["generated_at"]]
        return {
            "schema": MANIFEST_SCHEMA,
            "stage": self._stage,
            "test_data": self._stage != "prod",
            "generated_at": max(generated) if generated else None,
            "tile_count": len(tiles),
            "tiles": {tile_id: tiles[tile_id] for tile_id in sorted(tiles)},
        }

    def stale_window(self, lookback_s: int) -> tuple[str, str]:
        """Return the received_at range of stores that went stale within the last `lookback_s`."""
        stale_before = self._clock() - self._stale_after
        start = stale_before - timedelta(seconds=lookback_s)
        return format_timestamp(start, self._zone), format_timestamp(stale_before, self._zone)

    def refresh_stale(self, stores: Iterable[StoreSnapshot]) -> BatchOutcome:
        """Re-render stores whose last report just aged past the stale limit.

        Their rows keep their version but change content (remain_stat becomes null), and the
        merge accepts that. Rows already shown as unknown are left alone and cost no write.
        """
        changes = [StoreChange("stale", None, store) for store in stores]
        return self.apply(changes)

    def group(self, stores: Iterable[StoreSnapshot]) -> dict[str, dict[str, dict[str, Any]]]:
        """Rows of every tile, keyed by tile id and store code."""
        grouped: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        stale_before = self._stale_before()
        for store in stores:
            tile_ids = self.tiles_of(store)
            if not tile_ids:
                continue
            row = store_row(store, stale_before)
            for tile_id in tile_ids:
                grouped[tile_id][store.code] = row
        return grouped

    def rebuild(
        self,
        grouped: dict[str, dict[str, dict[str, Any]]],
        *,
        scan_started_at: str | None = None,
        workers: int = 8,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Merge every tile of a scan into the bucket; returns the number of tiles written.

        `scan_started_at` (a published timestamp) marks rows that the stream handler published
        after the scan began: the rebuild keeps those instead of removing them.
        NOTE: a store moved or deleted by an import while the scan runs can reappear in its old
        tile until its next report, so rebuilds and imports should not overlap.
        """
        marker = scan_started_at or self.scan_marker()
        stored_manifest = self._bucket.read(self._bucket.manifest_key)
        previous = stored_manifest.document.get("tiles", {}) if stored_manifest else {}
        # Tiles that lost all their stores are rebuilt too, to an empty list.
        tile_ids = sorted(set(grouped) | set(previous))

        def publish(tile_id: str) -> tuple[str, dict[str, Any] | None]:
            rows = grouped.get(tile_id, {})
            summary = self._rebuild_tile(tile_id, rows, marker)
            if progress:
                progress(1)
            return tile_id, summary

        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(publish, tile_ids))
        summaries = {tile_id: summary for tile_id, summary in results if summary is not None}
        if summaries or stored_manifest is None:
            self._update_manifest(summaries)
        return len(summaries)

    def _rebuild_tile(
        self, tile_id: str, rows: dict[str, dict[str, Any]], scan_started_at: str
    ) -> dict[str, Any] | None:
        key = self._bucket.object_key(tile_id)
        for _attempt in range(MAX_WRITE_ATTEMPTS):
            stored = self._bucket.read(key)
            current = _rows_of(stored)
            merged = _merge_scan(current, rows, scan_started_at)
            if stored is not None and merged == current:
                return None
            document = build_tile(tile_id, merged, stage=self._stage)
            try:
                self._bucket.write(key, document, stored.etag if stored else None)
            except TileConflictError:
                continue
            self._write_compat(tile_id, document)
            return _summary(document)
        raise TileConflictError(key)


def _rows_of(stored: StoredDocument | None) -> dict[str, dict[str, Any]]:
    if stored is None:
        return {}
    document = stored.document
    rows = [*document.get("stores", []), *document.get("stores_without_location", [])]
    return {row["code"]: row for row in rows}


def _merge(rows: dict[str, dict[str, Any]], patch: Patch) -> bool:
    """Apply a patch in place, newer versions only; returns whether anything changed."""
    changed = False
    for code, update in patch.items():
        current = rows.get(code)
        if isinstance(update, _Removal):
            if current is not None and current["version"] <= update.version:
                del rows[code]
                changed = True
            continue
        if current is not None and current["version"] > update["version"]:
            continue
        if current != update:
            rows[code] = update
            changed = True
    return changed


def _merge_scan(
    current: dict[str, dict[str, Any]], scanned: dict[str, dict[str, Any]], scan_started_at: str
) -> dict[str, dict[str, Any]]:
    """Merge a scan into a tile: the scan's rows, except where the tile has newer ones."""
    merged = dict(scanned)
    for code, row in current.items():
        newer = code in scanned and row["version"] > scanned[code]["version"]
        arrived_after_scan = code not in scanned and (row["created_at"] or "") >= scan_started_at
        if newer or arrived_after_scan:
            merged[code] = row
    return merged


def _summary(document: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": document["version"],
        "generated_at": document["generated_at"],
        "count": document["count"],
    }


def snapshots_from_items(items: Iterable[dict[str, Any]]) -> Iterable[StoreSnapshot]:
    """Snapshots of scanned items (typed JSON)."""
    return (snapshot_from_item(item) for item in items)
