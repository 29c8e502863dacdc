"""A small client for the stockfeed tiles, for apps and scripts; it needs only the standard library.

`stores_near` replaces the 2020 API's storesByGeo query: it fetches only the zoom-13 grid tiles
that a circle touches, keeps the stores inside the circle and sorts them by distance.
`region` reads one sido or sigungu tile, like the 2020 storesByAddr query.

The client polls politely. It keeps every tile it has read with its ETag, does not ask again
while the response's Cache-Control max-age lasts, and after that sends If-None-Match so that an
unchanged tile costs a 304 with no body. A 403 or 404 means "no data yet" (the CDN responds 403
for an object that does not exist), so such a tile counts as empty.

`remain_stat` null means the store has not reported stock: `Store.is_available` is False for
it, never True. Copy this file into an app as it is; it does not import the rest of stockfeed.
"""

import json
import math
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

GRID_ZOOM = 13
# The 2020 storesByGeo accepted at most 5,000 m. Twice that still needs at most about 36 tiles.
MAX_RADIUS_M = 10_000.0
# Mean Earth radius (IUGG), in metres.
EARTH_RADIUS_M = 6_371_008.8
_MAX_LATITUDE = 85.05112878
AVAILABLE_STATES = frozenset({"plenty", "some", "few"})
NO_DATA_STATUSES = frozenset({403, 404})
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*(\d+)", re.IGNORECASE)


class StockfeedError(Exception):
    """A tile could not be read: network failure, server error or invalid JSON."""


@dataclass(frozen=True, slots=True)
class Store:
    """One store as a tile lists it, plus its distance from the query point in metres."""

    code: str
    name: str
    addr: str
    type: str
    lat: float | None
    lng: float | None
    stock_at: str | None
    remain_stat: str | None
    created_at: str | None
    version: int
    distance_m: float | None = None

    @property
    def stock_known(self) -> bool:
        """Whether the store has reported stock at all (remain_stat is not null)."""
        return self.remain_stat is not None

    @property
    def is_available(self) -> bool:
        """Whether the last report showed masks for sale: plenty, some or few."""
        return self.remain_stat in AVAILABLE_STATES


@dataclass
class ClientStats:
    """Counts of what the client did, for logs and tests."""

    requests: int = 0
    not_modified: int = 0
    fresh_hits: int = 0
    no_data: int = 0


@dataclass
class _CachedTile:
    etag: str | None
    document: dict[str, Any] | None
    fresh_until: float


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Return the great-circle (haversine) distance between two points, in metres."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lng2 - lng1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def grid_cell(lat: float, lng: float, zoom: int = GRID_ZOOM) -> tuple[int, int]:
    """Return the (x, y) of the Web Mercator tile that contains a point."""
    lat = max(-_MAX_LATITUDE, min(_MAX_LATITUDE, lat))
    scale = 1 << zoom
    x = int((lng + 180.0) / 360.0 * scale)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * scale)
    return min(max(x, 0), scale - 1), min(max(y, 0), scale - 1)


def covering_tile_ids(lat: float, lng: float, radius_m: float) -> list[str]:
    """Return the ids of the grid tiles that the bounding box of a circle touches."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    dlng = dlat / max(math.cos(math.radians(lat)), 1e-6)
    west, north = grid_cell(lat + dlat, lng - dlng)
    east, south = grid_cell(lat - dlat, lng + dlng)
    return [
        f"grid/{GRID_ZOOM}/{x}/{y}" for x in range(west, east + 1) for y in range(north, south + 1)
    ]


def region_tile_id(sido: str, sigungu: str | None = None) -> str:
    """Return the tile id of a sido, or of a sigungu within it (spaces become "_")."""
    if not sido.strip():
        raise ValueError("sido must not be empty, for example '서울특별시'")
    if sigungu:
        return f"region/{sido}/{sigungu.replace(' ', '_')}"
    return f"region/{sido}"


def _store_from_row(row: dict[str, Any], distance: float | None) -> Store:
    return Store(
        code=str(row["code"]),
        name=row.get("name") or "",
        addr=row.get("addr") or "",
        type=row.get("type") or "",
        lat=row.get("lat"),
        lng=row.get("lng"),
        stock_at=row.get("stock_at"),
        remain_stat=row.get("remain_stat"),
        created_at=row.get("created_at"),
        version=int(row.get("version") or 0),
        distance_m=distance,
    )


def _max_age_s(cache_control: str | None) -> int:
    match = _MAX_AGE.search(cache_control or "")
    return int(match.group(1)) if match else 0


class StockfeedClient:
    """Reads tiles from one feed, for example `https://example.cdn/v1/`.

    `base_url` is the URL that contains `manifest.json`. `clock` returns seconds and is only
    used to honour max-age, so tests can pass a fake one.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        user_agent: str = "stockfeed-client-python/1",
    ) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.stats = ClientStats()
        self._timeout_s = timeout_s
        self._clock = clock
        self._user_agent = user_agent
        self._cache: dict[str, _CachedTile] = {}

    def tile_url(self, tile_id: str) -> str:
        """Return the absolute URL of a tile, with each path segment percent-encoded."""
        return urllib.parse.urljoin(self.base_url, urllib.parse.quote(tile_id) + ".json")

    def manifest(self) -> dict[str, Any] | None:
        """Return the manifest document, or None when the feed has published nothing yet."""
        return self._get(urllib.parse.urljoin(self.base_url, "manifest.json"))

    def tile(self, tile_id: str) -> dict[str, Any] | None:
        """Return a tile document, or None when the tile does not exist (no data yet)."""
        return self._get(self.tile_url(tile_id))

    def stores_near(self, lat: float, lng: float, radius_m: float) -> list[Store]:
        """Return the stores within `radius_m` metres of a point, nearest first.

        Raises ValueError for coordinates out of range or a radius outside (0, MAX_RADIUS_M].
        """
        _check_query(lat, lng, radius_m)
        stores: dict[str, Store] = {}
        for tile_id in covering_tile_ids(lat, lng, radius_m):
            document = self.tile(tile_id)
            for row in document.get("stores", []) if document else []:
                if row.get("lat") is None or row.get("lng") is None:
                    continue
                distance = distance_m(lat, lng, row["lat"], row["lng"])
                if distance <= radius_m:
                    stores[str(row["code"])] = _store_from_row(row, distance)
        return sorted(stores.values(), key=lambda store: (store.distance_m, store.code))

    def region(self, sido: str, sigungu: str | None = None) -> list[Store]:
        """Return the stores of a sido, or of one of its sigungu, sorted by code."""
        document = self.tile(region_tile_id(sido, sigungu))
        # Stores without coordinates are listed apart in region tiles, but they are still there.
        rows = (
            [*document.get("stores", []), *document.get("stores_without_location", [])]
            if document
            else []
        )
        return sorted((_store_from_row(row, None) for row in rows), key=lambda store: store.code)

    def _get(self, url: str) -> dict[str, Any] | None:
        cached = self._cache.get(url)
        if cached is not None and self._clock() < cached.fresh_until:
            self.stats.fresh_hits += 1
            return cached.document

        request = urllib.request.Request(url, headers={"User-Agent": self._user_agent})
        if cached is not None and cached.etag:
            request.add_header("If-None-Match", cached.etag)
        self.stats.requests += 1
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                body = response.read()
                headers = response.headers
        except urllib.error.HTTPError as error:
            with error:
                return self._handle_status(url, error.code, error.headers, cached)
        except (urllib.error.URLError, TimeoutError) as error:
            raise StockfeedError(f"request for {url} failed: {error}") from error

        document = _parse_json(url, body)
        self._remember(url, headers.get("ETag"), document, headers.get("Cache-Control"))
        return document

    def _handle_status(
        self, url: str, status: int, headers: Any, cached: _CachedTile | None
    ) -> dict[str, Any] | None:
        cache_control = headers.get("Cache-Control") if headers else None
        if status == 304 and cached is not None:
            self.stats.not_modified += 1
            cached.fresh_until = self._clock() + _max_age_s(cache_control)
            return cached.document
        if status in NO_DATA_STATUSES:
            self.stats.no_data += 1
            self._remember(url, None, None, cache_control)
            return None
        raise StockfeedError(f"GET {url} failed with HTTP {status}; retry later")

    def _remember(
        self, url: str, etag: str | None, document: dict[str, Any] | None, cache_control: str | None
    ) -> None:
        fresh_until = self._clock() + _max_age_s(cache_control)
        self._cache[url] = _CachedTile(etag=etag, document=document, fresh_until=fresh_until)


def _check_query(lat: float, lng: float, radius_m: float) -> None:
    if not -90.0 <= lat <= 90.0:
        raise ValueError(f"invalid latitude {lat}: expected -90 to 90")
    if not -180.0 <= lng <= 180.0:
        raise ValueError(f"invalid longitude {lng}: expected -180 to 180")
    if not 0.0 < radius_m <= MAX_RADIUS_M:
        raise ValueError(f"invalid radius {radius_m} m: expected more than 0 and at most 10000")


def _parse_json(url: str, body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise StockfeedError(f"response from {url} is not valid UTF-8 JSON: {error}") from error
    if not isinstance(document, dict):
        raise StockfeedError(f"response from {url} is not a JSON object")
    return document
