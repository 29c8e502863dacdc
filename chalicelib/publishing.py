"""The tile bucket: S3 objects that the CDN serves, written with conditional PUTs.

Every write names the version it replaces: If-Match on the ETag read, or If-None-Match for a new
object. Two writers patching the same tile therefore cannot silently overwrite each other. The
loser gets `TileConflictError` and redoes its patch on the fresh copy.
"""

import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.tiles import encode_document

logger = logging.getLogger(__name__)

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
# Documents kept in memory between batches of a warm Lambda. The largest tiles (a whole
# province, up to about 1.3 MB of JSON for 5,000 stores) dominate the cost of a patch, and a
# conditional GET that returns 304 skips both their transfer and their parsing.
DOCUMENT_CACHE_SIZE = 1024


class TileConflictError(Exception):
    """Another writer changed the object since it was read."""

    def __init__(self, key: str) -> None:
        super().__init__(f"s3 object {key} changed since it was read")
        self.key = key


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """A JSON document as read from the bucket, with the ETag to write it back against."""

    document: dict[str, Any]
    etag: str


class TileBucket:
    """Reads and writes tile and manifest documents under one prefix of one bucket."""

    def __init__(self, client: Any, bucket: str, prefix: str, max_age_s: int) -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = prefix
        self._cache: OrderedDict[str, StoredDocument] = OrderedDict()
        self._cache_lock = threading.Lock()
        # Live tiles change within seconds. A short max-age bounds staleness at the CDN, and
        # stale-while-revalidate lets it respond at once and refresh in the background.
        self._cache_control = f"public, max-age={max_age_s}, stale-while-revalidate={max_age_s}"

    def object_key(self, tile_id: str) -> str:
        return f"{self._prefix}/{tile_id}.json"

    def object_key_of(self, suffix: str) -> str:
        """Return the key of a document given by its path under the prefix (extension included)."""
        return f"{self._prefix}/{suffix}"

    @property
    def manifest_key(self) -> str:
        return f"{self._prefix}/manifest.json"

    def read(self, key: str) -> StoredDocument | None:
        """Read a document and its ETag; None when the object does not exist.

        The returned document may be shared with the cache, so callers must not mutate it.
        """
        cached = self._cached(key)
        condition = {"IfNoneMatch": cached.etag} if cached else {}
        try:
            response = self._client.get_object(Bucket=self._bucket, Key=key, **condition)
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code in ("304", "NotModified") and cached is not None:
                return cached
            if code in ("NoSuchKey", "404"):
                self._forget(key)
                return None
            raise
        stored = StoredDocument(json.loads(response["Body"].read()), response["ETag"])
        self._remember(key, stored)
        return stored

    def _cached(self, key: str) -> StoredDocument | None:
        with self._cache_lock:
            stored = self._cache.get(key)
            if stored is not None:
                self._cache.move_to_end(key)
            return stored

    def _remember(self, key: str, stored: StoredDocument) -> None:
        with self._cache_lock:
            self._cache[key] = stored
            self._cache.move_to_end(key)
            while len(self._cache) > DOCUMENT_CACHE_SIZE:
                self._cache.popitem(last=False)

    def _forget(self, key: str) -> None:
        with self._cache_lock:
            self._cache.pop(key, None)

    def write(self, key: str, document: dict[str, Any], replaces_etag: str | None) -> None:
        """Write a document; `replaces_etag` None means the object must not exist yet."""
        condition = {"IfMatch": replaces_etag} if replaces_etag else {"IfNoneMatch": "*"}
        try:
            response = self._client.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=encode_document(document),
                ContentType=JSON_CONTENT_TYPE,
                CacheControl=self._cache_control,
                **condition,
            )
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code in ("PreconditionFailed", "ConditionalRequestConflict", "412"):
                self._forget(key)
                raise TileConflictError(key) from error
            raise
        self._remember(key, StoredDocument(document, response["ETag"]))
        logger.info("published %s", key)

    def write_unconditionally(self, key: str, document: dict[str, Any]) -> None:
        """Overwrite a document; only for the full rebuild, which owns every tile it writes."""
        self._forget(key)
        self._client.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=encode_document(document),
            ContentType=JSON_CONTENT_TYPE,
            CacheControl=self._cache_control,
        )
