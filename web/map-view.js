/**
 * The map: store positions on a canvas in Web Mercator, with no external map server.
 *
 * The background shows every zoom-13 grid cell that the manifest lists, that is every 4 km
 * square with at least one store, so the populated parts of Korea appear without any map data
 * beyond the feed itself. Stores are dots in the 2020 colours: green (100 or more), yellow (30
 * to 99), red (2 to 29) and grey (0 or 1, or sales paused). A store that never reported stock
 * is a hollow ring, and a stale one is faded with a dashed outline.
 */

export const BAND_COLOURS = {
  plenty: "#1e9e4a",
  some: "#f5b800",
  few: "#e53935",
  empty: "#9e9e9e",
  break: "#5f6368",
  unknown: "#ffffff",
};
const UNKNOWN_RING = "#8a8f98";
const SEA = "#dfe9f0";
const LAND = "#f1e8d2";
const LAND_DENSE = "#e4d5b0";
const GRATICULE = "rgba(60, 80, 100, 0.14)";
// Draw order: grey and unknown first, so that stores with stock stay visible on top.
const BAND_ORDER = ["unknown", "break", "empty", "few", "some", "plenty"];
const KOREA_BOUNDS = { south: 33.0, west: 124.5, north: 38.7, east: 131.0 };
const MAX_SCALE = 2 ** 26;
const MIN_SCALE = 2 ** 9;
const HIT_RADIUS_PX = 12;

/** Returns a store's band: its remain_stat, or "unknown" when that is null. */
export function bandOf(store) {
  return store.remain_stat in BAND_COLOURS ? store.remain_stat : "unknown";
}

function project(lat, lng) {
  const sin = Math.sin((Math.max(-85, Math.min(85, lat)) * Math.PI) / 180);
  return {
    x: (lng + 180) / 360,
    y: 0.5 - Math.log((1 + sin) / (1 - sin)) / (4 * Math.PI),
  };
}

function unproject(x, y) {
  const lng = x * 360 - 180;
  const lat = (Math.atan(Math.sinh(Math.PI * (1 - 2 * y))) * 180) / Math.PI;
  return { lat, lng };
}

function niceStep(target) {
  const power = 10 ** Math.floor(Math.log10(target));
  for (const multiple of [1, 2, 5, 10]) {
    if (multiple * power >= target) {
      return multiple * power;
    }
  }
  return 10 * power;
}

export class MapView {
  constructor(canvas, { onSelect = () => {} } = {}) {
    this.canvas = canvas;
    this.context = canvas.getContext("2d");
    this.onSelect = onSelect;
    this.cells = [];
    this.stores = [];
    this.isStale = () => false;
    this.selectedCode = null;
    this.circle = null;
    this.center = project(36.3, 127.8);
    this.scale = MIN_SCALE * 8;
    this._drag = null;
    this._listen();
    this.resize();
    this.fitBounds(KOREA_BOUNDS);
  }

  /** Sets the background cells: [{x, y, zoom, count}] of grid tiles. */
  setCells(cells) {
    this.cells = cells;
    this.draw();
  }

  /** Sets the stores to draw. `isStale(store)` decides which of them are marked stale. */
  setStores(stores, isStale) {
    this.stores = stores.filter(
      (store) => typeof store.lat === "number" && typeof store.lng === "number",
    );
    this.isStale = isStale;
    this.draw();
  }

  /** Sets the search circle to outline, {lat, lng, radiusM}, or null for none. */
  setCircle(circle) {
    this.circle = circle;
    this.draw();
  }

  select(code) {
    this.selectedCode = code;
    const store = this.stores.find((candidate) => candidate.code === code);
    if (store) {
      const point = project(store.lat, store.lng);
      const screen = this._toScreen(point);
      if (screen.x < 0 || screen.y < 0 || screen.x > this.width || screen.y > this.height) {
        this.center = point;
      }
    }
    this.draw();
  }

  /** Zooms and pans so that every store is visible. With no stores, shows all of Korea. */
  fitStores() {
    if (this.stores.length === 0) {
      this.fitBounds(KOREA_BOUNDS);
      return;
    }
    const lats = this.stores.map((store) => store.lat);
    const lngs = this.stores.map((store) => store.lng);
    const pad = 0.004;
    this.fitBounds({
      south: Math.min(...lats) - pad,
      west: Math.min(...lngs) - pad,
      north: Math.max(...lats) + pad,
      east: Math.max(...lngs) + pad,
    });
  }

  fitBounds({ south, west, north, east }) {
    const topLeft = project(north, west);
    const bottomRight = project(south, east);
    const spanX = Math.max(bottomRight.x - topLeft.x, 1e-9);
    const spanY = Math.max(bottomRight.y - topLeft.y, 1e-9);
    this.center = { x: (topLeft.x + bottomRight.x) / 2, y: (topLeft.y + bottomRight.y) / 2 };
    const scale = 0.92 * Math.min(this.width / spanX, this.height / spanY);
    this.scale = Math.max(MIN_SCALE, Math.min(MAX_SCALE, scale));
    this.draw();
  }

  /** Returns the map centre and the distance in metres from it to the nearest edge. */
  viewCircle() {
    const centre = unproject(this.center.x, this.center.y);
    const metresPerPixel = this._metresPerPixel(centre.lat);
    return { ...centre, radiusM: (Math.min(this.width, this.height) / 2) * metresPerPixel };
  }

  zoomBy(factor, anchor = { x: this.width / 2, y: this.height / 2 }) {
    const before = this._toWorld(anchor);
    this.scale = Math.max(MIN_SCALE, Math.min(MAX_SCALE, this.scale * factor));
    const after = this._toWorld(anchor);
    this.center = {
      x: this.center.x + before.x - after.x,
      y: this.center.y + before.y - after.y,
    };
    this.draw();
  }

  resize() {
    const ratio = window.devicePixelRatio || 1;
    const box = this.canvas.getBoundingClientRect();
    this.width = Math.max(1, Math.round(box.width));
    this.height = Math.max(1, Math.round(box.height));
    this.canvas.width = Math.round(this.width * ratio);
    this.canvas.height = Math.round(this.height * ratio);
    this.context.setTransform(ratio, 0, 0, ratio, 0, 0);
    this.draw();
  }

  draw() {
    if (!this.width) {
      return;
    }
    const context = this.context;
    context.fillStyle = SEA;
    context.fillRect(0, 0, this.width, this.height);
    this._drawCells();
    this._drawGraticule();
    this._drawCircle();
    this._drawStores();
    this._drawScaleBar();
  }

  _toScreen(point) {
    return {
      x: (point.x - this.center.x) * this.scale + this.width / 2,
      y: (point.y - this.center.y) * this.scale + this.height / 2,
    };
  }

  _toWorld(screen) {
    return {
      x: (screen.x - this.width / 2) / this.scale + this.center.x,
      y: (screen.y - this.height / 2) / this.scale + this.center.y,
    };
  }

  _metresPerPixel(lat) {
    const earthCircumference = 40075016.686;
    return (earthCircumference * Math.cos((lat * Math.PI) / 180)) / this.scale;
  }

  _drawCells() {
    const context = this.context;
    for (const cell of this.cells) {
      const size = 1 / 2 ** cell.zoom;
      const corner = this._toScreen({ x: cell.x * size, y: cell.y * size });
      const side = size * this.scale;
      if (
        corner.x > this.width ||
        corner.y > this.height ||
        corner.x + side < 0 ||
        corner.y + side < 0
      ) {
        continue;
      }
      context.fillStyle = cell.count >= 50 ? LAND_DENSE : LAND;
      // Half a pixel of overlap hides the seams between neighbouring cells.
      context.fillRect(corner.x, corner.y, side + 0.5, side + 0.5);
    }
  }

  _drawGraticule() {
    const context = this.context;
    const topLeft = unproject(this._toWorld({ x: 0, y: 0 }).x, this._toWorld({ x: 0, y: 0 }).y);
    const bottomRight = unproject(
      this._toWorld({ x: this.width, y: this.height }).x,
      this._toWorld({ x: this.width, y: this.height }).y,
    );
    const step = niceStep((bottomRight.lng - topLeft.lng) / 6);
    const decimals = Math.max(0, -Math.floor(Math.log10(step)));
    context.strokeStyle = GRATICULE;
    context.fillStyle = "rgba(40, 55, 70, 0.55)";
    context.lineWidth = 1;
    context.font = "11px system-ui, sans-serif";
    for (let lng = Math.ceil(topLeft.lng / step) * step; lng <= bottomRight.lng; lng += step) {
      const x = this._toScreen(project(0, lng)).x;
      context.beginPath();
      context.moveTo(x, 0);
      context.lineTo(x, this.height);
      context.stroke();
      context.fillText(`${lng.toFixed(decimals)}°E`, x + 3, 12);
    }
    for (let lat = Math.ceil(bottomRight.lat / step) * step; lat <= topLeft.lat; lat += step) {
      const y = this._toScreen(project(lat, 0)).y;
      context.beginPath();
      context.moveTo(0, y);
      context.lineTo(this.width, y);
      context.stroke();
      context.fillText(`${lat.toFixed(decimals)}°N`, 3, y - 3);
    }
  }

  _drawCircle() {
    if (!this.circle) {
      return;
    }
    const context = this.context;
    const centre = this._toScreen(project(this.circle.lat, this.circle.lng));
    const radius = this.circle.radiusM / this._metresPerPixel(this.circle.lat);
    context.save();
    context.beginPath();
    context.arc(centre.x, centre.y, radius, 0, 2 * Math.PI);
    context.fillStyle = "rgba(26, 60, 140, 0.05)";
    context.fill();
    context.setLineDash([6, 4]);
    context.lineWidth = 1.5;
    context.strokeStyle = "rgba(26, 60, 140, 0.7)";
    context.stroke();
    context.restore();
  }

  _dotRadius() {
    if (this.scale < 2 ** 14) {
      return 3;
    }
    return this.stores.length > 1500 ? 4 : 6;
  }

  _drawStores() {
    const context = this.context;
    const radius = this._dotRadius();
    const byBand = new Map(BAND_ORDER.map((band) => [band, []]));
    for (const store of this.stores) {
      byBand.get(bandOf(store)).push(store);
    }
    let selected = null;
    for (const band of BAND_ORDER) {
      for (const store of byBand.get(band)) {
        const point = this._toScreen(project(store.lat, store.lng));
        if (
          point.x < -radius ||
          point.y < -radius ||
          point.x > this.width + radius ||
          point.y > this.height + radius
        ) {
          continue;
        }
        this._drawDot(point, band, radius, this.isStale(store));
        if (store.code === this.selectedCode) {
          selected = { store, point };
        }
      }
    }
    if (selected) {
      this._drawSelection(selected.store, selected.point, radius);
    }
  }

  _drawDot(point, band, radius, stale) {
    const context = this.context;
    context.save();
    context.beginPath();
    context.arc(point.x, point.y, radius, 0, 2 * Math.PI);
    context.globalAlpha = stale ? 0.45 : 1;
    context.fillStyle = BAND_COLOURS[band];
    context.fill();
    context.globalAlpha = 1;
    if (band === "unknown") {
      context.lineWidth = 2;
      context.strokeStyle = UNKNOWN_RING;
    } else {
      context.lineWidth = 1.2;
      context.strokeStyle = stale ? "#333" : "rgba(255, 255, 255, 0.9)";
    }
    if (stale) {
      context.setLineDash([2, 2]);
    }
    context.stroke();
    context.restore();
  }

  _drawSelection(store, point, radius) {
    const context = this.context;
    context.save();
    context.beginPath();
    context.arc(point.x, point.y, radius + 5, 0, 2 * Math.PI);
    context.lineWidth = 2.5;
    context.strokeStyle = "#1a3c8c";
    context.stroke();
    context.font = "bold 13px system-ui, sans-serif";
    const width = context.measureText(store.name).width;
    context.fillStyle = "rgba(255, 255, 255, 0.92)";
    context.fillRect(point.x + radius + 8, point.y - 10, width + 10, 20);
    context.fillStyle = "#111";
    context.fillText(store.name, point.x + radius + 13, point.y + 5);
    context.restore();
  }

  _drawScaleBar() {
    const context = this.context;
    const centre = unproject(this.center.x, this.center.y);
    const metres = niceStep(this._metresPerPixel(centre.lat) * 100);
    const length = metres / this._metresPerPixel(centre.lat);
    const x = 12;
    const y = this.height - 14;
    context.save();
    context.fillStyle = "rgba(255, 255, 255, 0.8)";
    context.fillRect(x - 6, y - 18, length + 60, 26);
    context.strokeStyle = "#333";
    context.lineWidth = 2;
    context.beginPath();
    context.moveTo(x, y - 6);
    context.lineTo(x, y);
    context.lineTo(x + length, y);
    context.lineTo(x + length, y - 6);
    context.stroke();
    context.fillStyle = "#333";
    context.font = "11px system-ui, sans-serif";
    context.fillText(metres >= 1000 ? `${metres / 1000} km` : `${metres} m`, x + length + 6, y);
    context.restore();
  }

  _storeAt(screen) {
    let best = null;
    let bestDistance = HIT_RADIUS_PX;
    for (const store of this.stores) {
      const point = this._toScreen(project(store.lat, store.lng));
      const distance = Math.hypot(point.x - screen.x, point.y - screen.y);
      if (distance <= bestDistance) {
        best = store;
        bestDistance = distance;
      }
    }
    return best;
  }

  _listen() {
    const canvas = this.canvas;
    const position = (event) => {
      const box = canvas.getBoundingClientRect();
      return { x: event.clientX - box.left, y: event.clientY - box.top };
    };
    canvas.addEventListener("pointerdown", (event) => {
      canvas.setPointerCapture(event.pointerId);
      this._drag = { start: position(event), center: { ...this.center }, moved: false };
    });
    canvas.addEventListener("pointermove", (event) => {
      if (!this._drag) {
        return;
      }
      const now = position(event);
      const dx = now.x - this._drag.start.x;
      const dy = now.y - this._drag.start.y;
      if (Math.hypot(dx, dy) > 3) {
        this._drag.moved = true;
      }
      this.center = {
        x: this._drag.center.x - dx / this.scale,
        y: this._drag.center.y - dy / this.scale,
      };
      this.draw();
    });
    canvas.addEventListener("pointerup", (event) => {
      const drag = this._drag;
      this._drag = null;
      if (drag && !drag.moved) {
        const store = this._storeAt(position(event));
        if (store) {
          this.onSelect(store);
        }
      }
    });
    canvas.addEventListener(
      "wheel",
      (event) => {
        event.preventDefault();
        this.zoomBy(event.deltaY < 0 ? 1.25 : 0.8, position(event));
      },
      { passive: false },
    );
    canvas.addEventListener("dblclick", (event) => this.zoomBy(2, position(event)));
  }
}
