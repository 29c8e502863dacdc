"""Tile regeneration: from changed store items to republished tiles.

Incremental path (the stream handler): each stream record carries the store's old and new
image, so the tiles it leaves and joins are known without a database read. Each dirty tile is
read from the bucket, patched with the newer rows and written back with a conditional PUT, once
per batch however many of its stores changed. A row only replaces a row with a lower or equal
`version`, so a redelivered or reordered record cannot move a store backwards.

Full rebuild (the ops CLI): every tile is built from a table scan.
"""

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from chalicelib.clock import Clock, format_timestamp
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
        zoom: int = GRID_ZOOM,
    ) -> None:
        self._bucket = bucket
        self._stage = stage
        self._zone = zone
        self._clock = clock
        self._zoom = zoom

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
    ) -> tuple[dict[str, dict[str, dict[str, Any] | _Removal]], dict[str, list[str]]]:
        patches: dict[str, dict[str, dict[str, Any] | _Removal]] = defaultdict(dict)
        sources: dict[str, list[str]] = defaultdict(list)
        for change in changes:
            joined = tile_ids_for(change.new, self._zoom) if change.new else []
            left = tile_ids_for(change.old, self._zoom) if change.old else []
            for tile_id in joined:
                assert change.new is not None
                patches[tile_id][change.new.code] = store_row(change.new)
                sources[tile_id].append(change.sequence_number)
            for tile_id in left:
                if tile_id in joined:
                    continue
                assert change.old is not None
                patches[tile_id][change.old.code] = _Removal(change.old.version)
                sources[tile_id].append(change.sequence_number)
        return patches, sources

    def _patch_tile(
        self, tile_id: str, patch: dict[str, dict[str, Any] | _Removal]
    ) -> dict[str, Any] | None:
        key = self._bucket.object_key(tile_id)
        for _attempt in range(MAX_WRITE_ATTEMPTS):
            stored = self._bucket.read(key)
            rows = _rows_of(stored)
            if not _merge(rows, patch):
                return None  # nothing newer than what is published: leave the bytes alone
            version = (stored.document.get("version", 0) if stored else 0) + 1
            document = build_tile(
                tile_id,
                rows,
                stage=self._stage,
                version=version,
                generated_at=self._clock(),
                zone=self._zone,
            )
            try:
                self._bucket.write(key, document, stored.etag if stored else None)
            except TileConflictError:
                logger.info("tile %s changed while patching; retrying", tile_id)
                continue
            return _summary(document)
        raise TileConflictError(key)

    def _update_manifest(self, summaries: dict[str, dict[str, Any]]) -> None:
        key = self._bucket.manifest_key
        for _attempt in range(MAX_WRITE_ATTEMPTS):
            stored = self._bucket.read(key)
            tiles = dict(stored.document.get("tiles", {})) if stored else {}
            for tile_id, summary in summaries.items():
                # Keep the newest entry: a concurrent batch may have published a later version.
                if tiles.get(tile_id, {}).get("version", 0) < summary["version"]:
                    tiles[tile_id] = summary
            try:
                self._bucket.write(key, self._manifest(tiles), stored.etag if stored else None)
            except TileConflictError:
                continue
            return
        raise TileConflictError(key)

    def _manifest(self, tiles: dict[str, dict[str, Any]]) -> dict[str, Any]:
        return {
            "schema": MANIFEST_SCHEMA,
            "stage": self._stage,
            "generated_at": format_timestamp(self._clock(), self._zone),
            "tile_count": len(tiles),
            "tiles": {tile_id: tiles[tile_id] for tile_id in sorted(tiles)},
        }

    def group(self, stores: Iterable[StoreSnapshot]) -> dict[str, dict[str, dict[str, Any]]]:
        """Rows of every tile, keyed by tile id and store code."""
        grouped: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        for store in stores:
            row = store_row(store)
            for tile_id in tile_ids_for(store, self._zoom):
                grouped[tile_id][store.code] = row
        return grouped

    def rebuild(
        self,
        grouped: dict[str, dict[str, dict[str, Any]]],
        *,
        workers: int = 8,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Write every grouped tile and the manifest; returns the number of tiles written."""
        stored_manifest = self._bucket.read(self._bucket.manifest_key)
        previous = stored_manifest.document.get("tiles", {}) if stored_manifest else {}

        def publish(tile_id: str) -> dict[str, Any]:
            version = previous.get(tile_id, {}).get("version", 0) + 1
            document = build_tile(
                tile_id,
                grouped[tile_id],
                stage=self._stage,
                version=version,
                generated_at=self._clock(),
                zone=self._zone,
            )
            # NOTE: a rebuild overwrites without a condition, so it must not run while the stream
            # handler is publishing. The local stack runs it before the stream pump starts.
            self._bucket.write_unconditionally(self._bucket.object_key(tile_id), document)
            if progress:
                progress(1)
            return _summary(document)

        with ThreadPoolExecutor(max_workers=workers) as pool:
            summaries = dict(zip(grouped, pool.map(publish, list(grouped)), strict=True))
        tiles = {**previous, **summaries}
        self._bucket.write_unconditionally(self._bucket.manifest_key, self._manifest(tiles))
        return len(summaries)


def _rows_of(stored: StoredDocument | None) -> dict[str, dict[str, Any]]:
    if stored is None:
        return {}
    return {row["code"]: row for row in stored.document.get("stores", [])}


def _merge(rows: dict[str, dict[str, Any]], patch: dict[str, dict[str, Any] | _Removal]) -> bool:
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


def _summary(document: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": document["version"],
        "generated_at": document["generated_at"],
        "count": document["count"],
    }


def snapshots_from_items(items: Iterable[dict[str, Any]]) -> Iterable[StoreSnapshot]:
    """Snapshots of scanned items (typed JSON)."""
    return (snapshot_from_item(item) for item in items)
