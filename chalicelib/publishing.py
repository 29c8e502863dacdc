"""The tile bucket: S3 objects that the CDN serves, written with conditional PUTs.

Every write names the version it replaces (If-Match on the ETag read, or If-None-Match for a
new object), so two writers patching the same tile cannot silently overwrite each other: the
loser gets `TileConflictError` and redoes its patch on the fresh copy.
"""

import json
import logging
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.tiles import encode_document

logger = logging.getLogger(__name__)

JSON_CONTENT_TYPE = "application/json; charset=utf-8"


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
        # Live tiles change within seconds; a short max-age bounds staleness at the CDN while
        # stale-while-revalidate lets it answer at once and refresh in the background.
        self._cache_control = f"public, max-age={max_age_s}, stale-while-revalidate={max_age_s}"

    def object_key(self, tile_id: str) -> str:
        return f"{self._prefix}/{tile_id}.json"

    @property
    def manifest_key(self) -> str:
        return f"{self._prefix}/manifest.json"

    def read(self, key: str) -> StoredDocument | None:
        """A document and its ETag, or None when the object does not exist."""
        try:
            response = self._client.get_object(Bucket=self._bucket, Key=key)
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise
        document = json.loads(response["Body"].read())
        return StoredDocument(document=document, etag=response["ETag"])

    def write(self, key: str, document: dict[str, Any], replaces_etag: str | None) -> None:
        """Write a document; `replaces_etag` None means the object must not exist yet."""
        condition = {"IfMatch": replaces_etag} if replaces_etag else {"IfNoneMatch": "*"}
        try:
            self._client.put_object(
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
                raise TileConflictError(key) from error
            raise
        logger.info("published %s", key)

    def write_unconditionally(self, key: str, document: dict[str, Any]) -> None:
        """Overwrite a document; only for the full rebuild, which owns every tile it writes."""
        self._client.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=encode_document(document),
            ContentType=JSON_CONTENT_TYPE,
            CacheControl=self._cache_control,
        )
