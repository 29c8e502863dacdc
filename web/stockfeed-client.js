/**
 * stockfeed client: one dependency-free ES module for browsers and Node.js 18 or later.
 *
 * `storesNear(lat, lng, radiusM)` replaces the 2020 API's storesByGeo query. It fetches only
 * the zoom-13 grid tiles that the circle touches, keeps the stores inside the circle and sorts
 * them by distance. `region(sido, sigungu)` reads one region tile, like storesByAddr did.
 *
 * The client polls politely. It keeps each tile with its ETag, does not ask again while the
 * Cache-Control max-age lasts, and then sends If-None-Match so an unchanged tile costs a 304
 * with no body. A 403 or 404 means "no data yet" (the CDN responds 403 for a missing object).
 * `remain_stat` null means the store never reported stock: `isAvailable` is false for it.
 */

export const GRID_ZOOM = 13;
// The 2020 storesByGeo accepted at most 5,000 m. Twice that still needs at most about 36 tiles.
export const MAX_RADIUS_M = 10000;
// Mean Earth radius (IUGG), in metres.
export const EARTH_RADIUS_M = 6371008.8;
const MAX_LATITUDE = 85.05112878;
const AVAILABLE_STATES = new Set(["plenty", "some", "few"]);
const NO_DATA_STATUSES = new Set([403, 404]);

export class StockfeedError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = "StockfeedError";
  }
}

/** Returns whether the last report showed masks for sale; false for unknown (null). */
export function isAvailable(store) {
  return AVAILABLE_STATES.has(store.remain_stat);
}

/** Returns whether the store has reported stock at all. */
export function stockKnown(store) {
  return store.remain_stat !== null && store.remain_stat !== undefined;
}

/** Returns the great-circle (haversine) distance between two points, in metres. */
export function distanceM(lat1, lng1, lat2, lng2) {
  const toRadians = (degrees) => (degrees * Math.PI) / 180;
  const phi1 = toRadians(lat1);
  const phi2 = toRadians(lat2);
  const dphi = phi2 - phi1;
  const dlambda = toRadians(lng2 - lng1);
  const a = Math.sin(dphi / 2) ** 2 + Math.cos(phi1) * Math.cos(phi2) * Math.sin(dlambda / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(a)));
}

/** Returns the {x, y} of the Web Mercator tile that contains a point. */
export function gridCell(lat, lng, zoom = GRID_ZOOM) {
  const clamped = Math.max(-MAX_LATITUDE, Math.min(MAX_LATITUDE, lat));
  const scale = 2 ** zoom;
  const x = Math.floor(((lng + 180) / 360) * scale);
  const latRadians = (clamped * Math.PI) / 180;
  const y = Math.floor(((1 - Math.asinh(Math.tan(latRadians)) / Math.PI) / 2) * scale);
  const clamp = (value) => Math.min(Math.max(value, 0), scale - 1);
  return { x: clamp(x), y: clamp(y) };
}

/** Returns the ids of the grid tiles that the bounding box of a circle touches. */
export function coveringTileIds(lat, lng, radiusM) {
  const dlat = ((radiusM / EARTH_RADIUS_M) * 180) / Math.PI;
  const dlng = dlat / Math.max(Math.cos((lat * Math.PI) / 180), 1e-6);
  const northWest = gridCell(lat + dlat, lng - dlng);
  const southEast = gridCell(lat - dlat, lng + dlng);
  const ids = [];
  for (let x = northWest.x; x <= southEast.x; x += 1) {
    for (let y = northWest.y; y <= southEast.y; y += 1) {
      ids.push(`grid/${GRID_ZOOM}/${x}/${y}`);
    }
  }
  return ids;
}

/** Returns the tile id of a sido, or of a sigungu within it (spaces become "_"). */
export function regionTileId(sido, sigungu = null) {
  if (!sido || !sido.trim()) {
    throw new RangeError("sido must not be empty, for example '서울특별시'");
  }
  return sigungu ? `region/${sido}/${sigungu.replaceAll(" ", "_")}` : `region/${sido}`;
}

function maxAgeMs(cacheControl) {
  const match = /(?:^|,)\s*max-age\s*=\s*(\d+)/i.exec(cacheControl || "");
  return match ? Number(match[1]) * 1000 : 0;
}

function checkQuery(lat, lng, radiusM) {
  if (!(lat >= -90 && lat <= 90)) {
    throw new RangeError(`invalid latitude ${lat}: expected -90 to 90`);
  }
  if (!(lng >= -180 && lng <= 180)) {
    throw new RangeError(`invalid longitude ${lng}: expected -180 to 180`);
  }
  if (!(radiusM > 0 && radiusM <= MAX_RADIUS_M)) {
    throw new RangeError(`invalid radius ${radiusM} m: expected more than 0 and at most 10000`);
  }
}

function isCrossOrigin(url) {
  const pageLocation = globalThis.location;
  return Boolean(
    pageLocation?.origin && pageLocation.origin !== "null" && url.origin !== pageLocation.origin,
  );
}

/**
 * Reads tiles from one feed. `baseUrl` is the URL that contains manifest.json, for example
 * "https://example.cdn/v1/" or, in a page served beside the tiles, new URL("v1/", location).
 * Options: `fetch` (default globalThis.fetch), `now` (milliseconds, for max-age; tests pass a
 * fake clock) and `timeoutMs` per request.
 */
export class StockfeedClient {
  constructor(baseUrl, { fetch: fetchImpl, now, timeoutMs = 10000 } = {}) {
    const base = new URL(baseUrl, globalThis.location?.href);
    if (!base.pathname.endsWith("/")) {
      base.pathname += "/";
    }
    this.baseUrl = base;
    this.stats = { requests: 0, notModified: 0, freshHits: 0, noData: 0 };
    this._fetch = fetchImpl || globalThis.fetch.bind(globalThis);
    this._now = now || (() => Date.now());
    this._timeoutMs = timeoutMs;
    this._cache = new Map();
  }

  /** Returns the absolute URL of a tile, each path segment percent-encoded. */
  tileUrl(tileId) {
    const path = tileId.split("/").map(encodeURIComponent).join("/");
    return new URL(`${path}.json`, this.baseUrl);
  }

  /** Returns the manifest, or null when the feed has published nothing yet. */
  manifest() {
    return this._get(new URL("manifest.json", this.baseUrl));
  }

  /** Returns a tile document, or null when the tile does not exist (no data yet). */
  tile(tileId) {
    return this._get(this.tileUrl(tileId));
  }

  /** Returns the stores within radiusM metres of a point, nearest first, with `distance_m`. */
  async storesNear(lat, lng, radiusM) {
    checkQuery(lat, lng, radiusM);
    const documents = await Promise.all(
      coveringTileIds(lat, lng, radiusM).map((tileId) => this.tile(tileId)),
    );
    const stores = new Map();
    for (const document of documents) {
      for (const row of document?.stores ?? []) {
        if (typeof row.lat !== "number" || typeof row.lng !== "number") {
          continue;
        }
        const distance = distanceM(lat, lng, row.lat, row.lng);
        if (distance <= radiusM) {
          stores.set(row.code, { ...row, distance_m: distance });
        }
      }
    }
    return [...stores.values()].sort(
      (a, b) => a.distance_m - b.distance_m || a.code.localeCompare(b.code),
    );
  }

  /** Returns the same as storesNear, under the name the Python client uses. */
  stores_near(lat, lng, radiusM) {
    return this.storesNear(lat, lng, radiusM);
  }

  /** Returns the stores of a sido, or of one of its sigungu, sorted by code. */
  async region(sido, sigungu = null) {
    const document = await this.tile(regionTileId(sido, sigungu));
    // Stores without coordinates are listed apart in region tiles, but they are still there.
    const rows = [...(document?.stores ?? []), ...(document?.stores_without_location ?? [])];
    const stores = rows.map((row) => ({ ...row, distance_m: null }));
    return stores.sort((a, b) => a.code.localeCompare(b.code));
  }

  async _get(url) {
    const key = url.href;
    const cached = this._cache.get(key);
    if (cached && this._now() < cached.freshUntil) {
      this.stats.freshHits += 1;
      return cached.document;
    }

    // Across origins, a custom If-None-Match header would need a CORS preflight, so the
    // browser's own cache revalidates instead ("no-cache" still sends If-None-Match).
    const crossOrigin = isCrossOrigin(url);
    const headers = {};
    if (!crossOrigin && cached?.etag) {
      headers["If-None-Match"] = cached.etag;
    }
    this.stats.requests += 1;
    let response;
    try {
      response = await this._fetch(url, {
        headers,
        cache: crossOrigin ? "no-cache" : "no-store",
        signal: AbortSignal.timeout(this._timeoutMs),
      });
    } catch (error) {
      throw new StockfeedError(`request for ${key} failed: ${error.message}`, { cause: error });
    }
    return this._handleResponse(key, response, cached);
  }

  async _handleResponse(key, response, cached) {
    const freshUntil = this._now() + maxAgeMs(response.headers.get("Cache-Control"));
    if (response.status === 304 && cached) {
      this.stats.notModified += 1;
      cached.freshUntil = freshUntil;
      return cached.document;
    }
    if (NO_DATA_STATUSES.has(response.status)) {
      this.stats.noData += 1;
      this._cache.set(key, { etag: null, document: null, freshUntil });
      return null;
    }
    if (!response.ok) {
      throw new StockfeedError(`GET ${key} failed with HTTP ${response.status}; retry later`);
    }
    let document;
    try {
      document = await response.json();
    } catch (error) {
      throw new StockfeedError(`response from ${key} is not valid JSON`, { cause: error });
    }
    this._cache.set(key, { etag: response.headers.get("ETag"), document, freshUntil });
    return document;
  }
}
