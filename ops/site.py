"""Publish the map page (web/) to the root of the tile bucket, beside the tiles under v1/.

The page reads tiles relative to its own URL, so it must be served from the same bucket and
distribution as the tiles. Every file gets an explicit Content-Type, because S3 would otherwise
serve JavaScript modules as binary/octet-stream and browsers refuse to run those.
"""

import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

WEB_ROOT = Path(__file__).resolve().parents[1] / "web"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}
# The file names carry no content hash, so a short max-age lets a new page version and an
# edited rules.json reach viewers within a minute.
SITE_CACHE_CONTROL = "public, max-age=60, stale-while-revalidate=60"


def site_files(root: Path = WEB_ROOT) -> list[Path]:
    """List the files to publish, sorted; hidden files and npm metadata are left out."""
    skipped = {"package.json", "package-lock.json"}
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
        and "node_modules" not in path.relative_to(root).parts
        and path.name not in skipped
    )


def content_type_of(path: Path) -> str:
    """Return the Content-Type for a site file; raise ValueError for an unknown extension."""
    content_type = CONTENT_TYPES.get(path.suffix.lower())
    if content_type is None:
        known = ", ".join(sorted(CONTENT_TYPES))
        raise ValueError(f"no Content-Type known for {path.name}: add its extension ({known})")
    return content_type


def publish_site(s3_client: Any, bucket: str, root: Path = WEB_ROOT) -> list[str]:
    """Upload every site file to the bucket root and return the object keys written.

    Content types are checked for all files before the first upload, so an unknown file
    leaves the published site unchanged.
    """
    files = [(path, content_type_of(path)) for path in site_files(root)]
    keys = []
    for path, content_type in files:
        key = path.relative_to(root).as_posix()
        s3_client.put_object(
            Bucket=bucket,
            Key=key,
            Body=path.read_bytes(),
            ContentType=content_type,
            CacheControl=SITE_CACHE_CONTROL,
        )
        keys.append(key)
    logger.info("published %d site files to s3://%s/", len(keys), bucket)
    return keys


SCHEMA_ROOT = Path(__file__).resolve().parents[1] / "docs" / "schema"


def publish_schemas(
    s3_client: Any, bucket: str, prefix: str, root: Path = SCHEMA_ROOT
) -> list[str]:
    """Upload the tile and manifest JSON Schemas beside the tiles, under `<prefix>/schema/`."""
    keys = []
    for path in sorted(root.glob("*.schema.json")):
        key = f"{prefix}/schema/{path.name}"
        s3_client.put_object(
            Bucket=bucket,
            Key=key,
            Body=path.read_bytes(),
            ContentType=CONTENT_TYPES[".json"],
            CacheControl=SITE_CACHE_CONTROL,
        )
        keys.append(key)
    logger.info("published %d schemas to s3://%s/%s/schema/", len(keys), bucket, prefix)
    return keys
