"""A local stand-in for CloudFront: serves the tile bucket over HTTP on 127.0.0.1.

It passes through what S3 stores (Content-Type, Cache-Control, ETag), answers If-None-Match
with 304 as the CDN would, and adds the CORS header the distribution's response headers policy
adds in AWS. It caches nothing itself, so every response shows what S3 holds at that moment.
"""

import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from botocore.exceptions import ClientError

logger = logging.getLogger(__name__)


class TileServer(ThreadingHTTPServer):
    """An HTTP server bound to one bucket."""

    daemon_threads = True

    def __init__(self, port: int, s3: Any, bucket: str) -> None:
        super().__init__(("127.0.0.1", port), _TileRequestHandler)
        self.s3 = s3
        self.bucket = bucket

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start_in_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="tile-server", daemon=True)
        thread.start()
        return thread


class _TileRequestHandler(BaseHTTPRequestHandler):
    server: TileServer

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def _serve(self, send_body: bool) -> None:
        key = unquote(urlsplit(self.path).path).lstrip("/") or "index.html"
        try:
            obj = self.server.s3.get_object(Bucket=self.server.bucket, Key=key)
        except ClientError as error:
            code = error.response["Error"]["Code"]
            status = (
                HTTPStatus.NOT_FOUND if code in ("NoSuchKey", "404") else HTTPStatus.BAD_GATEWAY
            )
            self._send_status(status)
            return
        etag = obj["ETag"]
        if etag in _etags(self.headers.get("If-None-Match")):
            self.send_response(HTTPStatus.NOT_MODIFIED)
            self._common_headers(obj)
            self.end_headers()
            return
        body = obj["Body"].read()
        self.send_response(HTTPStatus.OK)
        self._common_headers(obj)
        self.send_header("Content-Type", obj.get("ContentType", "application/octet-stream"))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _common_headers(self, obj: dict[str, Any]) -> None:
        self.send_header("ETag", obj["ETag"])
        if obj.get("CacheControl"):
            self.send_header("Cache-Control", obj["CacheControl"])
        self.send_header("Access-Control-Allow-Origin", "*")

    def _send_status(self, status: HTTPStatus) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.send_header("Access-Control-Allow-Origin", "*")
        # Short error caching, as the distribution configures for 403 and 404.
        self.send_header("Cache-Control", "public, max-age=5")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("tile server: " + format, *args)


def _etags(header: str | None) -> set[str]:
    if not header:
        return set()
    return {tag.strip() for tag in header.split(",")}
