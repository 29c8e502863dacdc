/**
 * The map page: wires the tile client, today's buying rule, the map and the store list.
 *
 * The page is served from the bucket root and reads tiles from "v1/" next to it. It reads
 * three query parameters: `region` (for example 서울특별시/강남구), `lang` (ko or en) and `now`.
 * `now` is an ISO 8601 instant that replaces the clock, so that a past day can be shown and
 * tests never depend on the wall clock. With `now` set, the page does not refresh by itself.
 */

import { StockfeedClient, coveringTileIds, MAX_RADIUS_M } from "./stockfeed-client.js";
import { todaysPurchaseRule, parseUtcOffset } from "./purchase-rule.js";
import { MESSAGES, LANGUAGES, formatTime } from "./i18n.js";
import { MapView, BAND_COLOURS, bandOf } from "./map-view.js";

const SIDO_ORDER = [
  "서울특별시",
  "부산광역시",
  "대구광역시",
  "인천광역시",
  "광주광역시",
  "대전광역시",
  "울산광역시",
  "세종특별자치시",
  "경기도",
  "강원도",
  "충청북도",
  "충청남도",
  "전라북도",
  "전라남도",
  "경상북도",
  "경상남도",
  "제주특별자치도",
];
const BAND_RANK = { plenty: 0, some: 1, few: 2, empty: 3, break: 4, unknown: 5 };
const LEGEND_BANDS = ["plenty", "some", "few", "empty", "break", "unknown"];
// The list shows at most this many stores. The map always shows all of them.
const LIST_LIMIT = 400;
const REFRESH_MS = 30000;
const NEAR_ME_RADIUS_M = 1000;
const LANGUAGE_KEY = "stockfeed.language";
// Used until rules.json has loaded, and when it cannot be read.
const DEFAULT_UTC_OFFSET_MINUTES = 9 * 60;
const DEFAULT_STALE_AFTER_MINUTES = 60;

const params = new URLSearchParams(window.location.search);
const fixedNow = params.has("now") ? Date.parse(params.get("now")) : null;
const client = new StockfeedClient(new URL("v1/", window.location.href), {
  now: () => Date.now(),
});

const state = {
  language: initialLanguage(),
  rules: null,
  rulesFailed: false,
  regions: [],
  view: null,
  stores: [],
  generatedAt: null,
  status: "loading",
  notice: null,
};

const elements = {
  toggle: document.getElementById("language-toggle"),
  ruleDate: document.getElementById("rule-date"),
  ruleText: document.getElementById("rule-text"),
  ruleDigits: document.getElementById("rule-digits"),
  ruleNote: document.getElementById("rule-note"),
  searchForm: document.getElementById("search-form"),
  searchInput: document.getElementById("region-search"),
  regionOptions: document.getElementById("region-options"),
  nearMe: document.getElementById("near-me"),
  thisArea: document.getElementById("this-area"),
  legend: document.getElementById("legend"),
  summary: document.getElementById("summary"),
  dataAge: document.getElementById("data-age"),
  notice: document.getElementById("notice"),
  list: document.getElementById("store-list"),
  more: document.getElementById("more-stores"),
  canvas: document.getElementById("map"),
  zoomIn: document.getElementById("zoom-in"),
  zoomOut: document.getElementById("zoom-out"),
};

const map = new MapView(elements.canvas, { onSelect: (store) => selectStore(store.code, true) });

function now() {
  return fixedNow ?? Date.now();
}

function initialLanguage() {
  const requested = params.get("lang");
  if (LANGUAGES.includes(requested)) {
    return requested;
  }
  let remembered = null;
  try {
    remembered = window.localStorage.getItem(LANGUAGE_KEY);
  } catch {
    // Storage can be disabled, and then Korean is the default.
  }
  return LANGUAGES.includes(remembered) ? remembered : "ko";
}

function text() {
  return MESSAGES[state.language];
}

function utcOffsetMinutes() {
  return state.rules ? parseUtcOffset(state.rules.utc_offset) : DEFAULT_UTC_OFFSET_MINUTES;
}

function staleAfterMinutes() {
  return state.rules ? state.rules.stale_after_minutes : DEFAULT_STALE_AFTER_MINUTES;
}

function minutesSince(isoTime) {
  return (now() - Date.parse(isoTime)) / 60000;
}

/** Returns whether a store is stale: it reported stock once, but not within stale_after_minutes. */
function isStale(store) {
  if (store.remain_stat === null || store.remain_stat === undefined) {
    return false;
  }
  return !store.created_at || minutesSince(store.created_at) > staleAfterMinutes();
}

function setStatus(status, notice = null) {
  state.status = status;
  state.notice = notice;
  document.body.dataset.state = status;
  renderNotice();
}

function regionLabel(region) {
  return region.sigungu ? `${region.sido} ${region.sigungu}` : region.sido;
}

function regionsFromManifest(manifest) {
  const regions = [];
  for (const tileId of Object.keys(manifest.tiles || {})) {
    const parts = tileId.split("/");
    if (parts[0] !== "region") {
      continue;
    }
    const region = {
      tileId,
      sido: parts[1],
      sigungu: parts[2] ? parts[2].replaceAll("_", " ") : null,
    };
    region.label = regionLabel(region);
    regions.push(region);
  }
  const rank = (sido) => (SIDO_ORDER.includes(sido) ? SIDO_ORDER.indexOf(sido) : SIDO_ORDER.length);
  return regions.sort(
    (a, b) =>
      rank(a.sido) - rank(b.sido) ||
      a.sido.localeCompare(b.sido, "ko") ||
      (a.sigungu ?? "").localeCompare(b.sigungu ?? "", "ko"),
  );
}

function cellsFromManifest(manifest) {
  const cells = [];
  for (const [tileId, summary] of Object.entries(manifest.tiles || {})) {
    const parts = tileId.split("/");
    if (parts[0] === "grid" && summary.count > 0) {
      cells.push({
        zoom: Number(parts[1]),
        x: Number(parts[2]),
        y: Number(parts[3]),
        count: summary.count,
      });
    }
  }
  return cells;
}

/** Finds a region by its label: an exact match, else the shortest label with every word. */
function findRegion(query) {
  const words = query.replaceAll("_", " ").trim().split(/\s+/).filter(Boolean);
  if (words.length === 0) {
    return null;
  }
  const exact = state.regions.find((region) => region.label === words.join(" "));
  if (exact) {
    return exact;
  }
  const matches = state.regions.filter((region) =>
    words.every((word) => region.label.includes(word)),
  );
  matches.sort((a, b) => a.label.length - b.label.length);
  return matches[0] ?? null;
}

async function loadRules() {
  try {
    const response = await fetch("rules.json", { cache: "no-cache" });
    if (!response.ok) {
      throw new Error(`GET rules.json failed with HTTP ${response.status}`);
    }
    const rules = await response.json();
    todaysPurchaseRule(rules, now());
    state.rules = rules;
  } catch (error) {
    console.error("rules.json could not be used:", error);
    state.rulesFailed = true;
  }
}

async function showRegion(region, { fit = true } = {}) {
  const document_ = await client.tile(region.tileId);
  state.view = { kind: "region", region };
  state.stores = document_?.stores ?? [];
  state.generatedAt = document_?.generated_at ?? null;
  elements.searchInput.value = region.label;
  rememberInUrl("region", region.tileId.replace(/^region\//, ""));
  map.setCircle(null);
  renderData();
  if (fit) {
    map.fitStores();
  }
  setStatus("ready", state.stores.length === 0 ? "noStores" : null);
}

async function showNear(lat, lng, radiusM, { fit = true } = {}) {
  const stores = await client.storesNear(lat, lng, radiusM);
  const documents = await Promise.all(
    coveringTileIds(lat, lng, radiusM).map((id) => client.tile(id)),
  );
  const times = documents.filter(Boolean).map((document_) => document_.generated_at);
  state.view = { kind: "near", lat, lng, radiusM };
  state.stores = stores;
  state.generatedAt = times.length ? times.sort().at(-1) : null;
  elements.searchInput.value = "";
  rememberInUrl("region", null);
  map.setCircle({ lat, lng, radiusM });
  renderData();
  if (fit) {
    const dlat = radiusM / 111195;
    const dlng = dlat / Math.cos((lat * Math.PI) / 180);
    map.fitBounds({ south: lat - dlat, west: lng - dlng, north: lat + dlat, east: lng + dlng });
  }
  setStatus("ready", stores.length === 0 ? "noStores" : null);
}

async function refresh() {
  try {
    if (state.view?.kind === "region") {
      await showRegion(state.view.region, { fit: false });
    } else if (state.view?.kind === "near") {
      const { lat, lng, radiusM } = state.view;
      await showNear(lat, lng, radiusM, { fit: false });
    }
    renderRule();
  } catch (error) {
    console.error("refresh failed:", error);
  }
}

/** Keeps the view in the address bar so that the page can be shared. Null removes the parameter. */
function rememberInUrl(name, value) {
  const url = new URL(window.location.href);
  if (value === null) {
    url.searchParams.delete(name);
  } else {
    url.searchParams.set(name, value);
  }
  window.history.replaceState(null, "", url);
}

function selectStore(code, scrollIntoView) {
  map.select(code);
  for (const item of elements.list.querySelectorAll(".store")) {
    item.classList.toggle("selected", item.dataset.code === code);
    if (scrollIntoView && item.dataset.code === code) {
      item.scrollIntoView({ block: "nearest" });
    }
  }
}

function renderStaticText() {
  const messages = text();
  document.documentElement.lang = state.language;
  document.body.dataset.language = state.language;
  document.title = messages.title;
  for (const element of document.querySelectorAll("[data-i18n]")) {
    element.textContent = messages[element.dataset.i18n];
  }
  elements.searchInput.placeholder = messages.searchPlaceholder;
  elements.toggle.textContent = messages.toggle;
  elements.toggle.setAttribute("aria-label", messages.toggleLabel);
  elements.canvas.setAttribute("aria-label", messages.mapLabel);
}

function renderRule() {
  const messages = text();
  elements.ruleDigits.replaceChildren();
  elements.ruleNote.textContent = "";
  if (!state.rules) {
    elements.ruleDate.textContent = "";
    elements.ruleText.textContent = state.rulesFailed ? messages.rulesFailed : messages.loading;
    document.body.dataset.rule = state.rulesFailed ? "failed" : "loading";
    return;
  }
  const today = todaysPurchaseRule(state.rules, now());
  elements.ruleDate.textContent = messages.ruleDate(today.date);
  document.body.dataset.rule = today.kind === "digits" ? today.digits.join(",") : today.kind;
  if (today.kind === "digits") {
    elements.ruleText.textContent = messages.ruleDigits(today.digits);
    for (const digit of today.digits) {
      const badge = document.createElement("span");
      badge.className = "digit";
      badge.textContent = String(digit);
      elements.ruleDigits.append(badge);
    }
  } else if (today.kind === "anyone") {
    elements.ruleText.textContent = messages.ruleAnyone;
  } else {
    elements.ruleText.textContent = messages.ruleUnpublished;
  }
  elements.ruleNote.textContent = today.note?.[state.language] ?? "";
}

/** Shows each band with the number of stores in it, so the legend doubles as a summary. */
function renderLegend() {
  const messages = text();
  const counts = Object.fromEntries(LEGEND_BANDS.map((band) => [band, 0]));
  for (const store of state.stores) {
    counts[bandOf(store)] += 1;
  }
  const staleCount = state.stores.filter(isStale).length;
  const items = LEGEND_BANDS.map((band) =>
    legendItem(`dot band-${band}`, messages.bands[band], counts[band], band),
  );
  items.push(
    legendItem(
      "dot band-some stale",
      messages.staleLegend(staleAfterMinutes()),
      staleCount,
      "stale",
    ),
  );
  elements.legend.replaceChildren(...items);
}

function legendItem(dotClass, label, count, key) {
  const item = document.createElement("li");
  item.dataset.legend = key;
  const dot = document.createElement("span");
  dot.className = dotClass;
  const caption = document.createElement("span");
  caption.textContent = label;
  const number = document.createElement("span");
  number.className = "legend-count";
  number.textContent = state.view ? String(count) : "";
  item.append(dot, caption, number);
  return item;
}

function renderNotice() {
  const messages = text();
  const notice = state.notice;
  let message = "";
  if (typeof notice === "function") {
    message = notice(messages);
  } else if (notice) {
    message = messages[notice];
  }
  elements.notice.textContent = message;
  elements.notice.hidden = !notice;
}

function renderSummary() {
  const messages = text();
  const view = state.view;
  if (!view) {
    elements.summary.textContent = state.status === "loading" ? messages.loading : "";
    elements.dataAge.textContent = "";
    return;
  }
  elements.summary.textContent =
    view.kind === "region"
      ? messages.summary(view.region.label, state.stores.length)
      : messages.nearSummary(messages.distance(view.radiusM), state.stores.length);
  if (state.generatedAt) {
    const generated = Date.parse(state.generatedAt);
    elements.dataAge.textContent = messages.dataAge(
      formatTime(state.language, generated, utcOffsetMinutes()),
      messages.ago(minutesSince(state.generatedAt)),
    );
  } else {
    elements.dataAge.textContent = "";
  }
}

function sortedStores() {
  const stores = [...state.stores];
  if (state.view?.kind === "near") {
    return stores;
  }
  // Stock band first, then fresh reports before stale ones, then by name.
  return stores.sort(
    (a, b) =>
      BAND_RANK[bandOf(a)] - BAND_RANK[bandOf(b)] ||
      Number(isStale(a)) - Number(isStale(b)) ||
      a.name.localeCompare(b.name, "ko"),
  );
}

function timeWithAge(isoTime) {
  const messages = text();
  if (!isoTime) {
    return messages.never;
  }
  const formatted = formatTime(state.language, Date.parse(isoTime), utcOffsetMinutes());
  return `${formatted} (${messages.ago(minutesSince(isoTime))})`;
}

function storeItem(store) {
  const messages = text();
  const band = bandOf(store);
  const stale = isStale(store);
  const item = document.createElement("li");
  item.className = "store";
  item.dataset.code = store.code;
  item.dataset.band = band;
  item.dataset.stale = String(stale);
  item.tabIndex = 0;

  const dot = document.createElement("span");
  dot.className = `dot band-${band}${stale ? " stale" : ""}`;
  dot.title = messages.bands[band];

  const body = document.createElement("div");
  body.className = "store-body";
  const name = document.createElement("div");
  name.className = "store-name";
  name.textContent = store.name;
  const type = document.createElement("span");
  type.className = "store-type";
  type.textContent = messages.types[store.type] ?? store.type;
  name.append(" ", type);
  if (stale) {
    const badge = document.createElement("span");
    badge.className = "badge-stale";
    badge.textContent = messages.stale;
    name.append(" ", badge);
  }
  if (typeof store.distance_m === "number") {
    const distance = document.createElement("span");
    distance.className = "store-distance";
    distance.textContent = messages.distance(store.distance_m);
    name.append(" ", distance);
  }

  const address = document.createElement("div");
  address.className = "store-addr";
  address.textContent = store.addr;

  const meta = document.createElement("div");
  meta.className = "store-meta";
  const bandLabel = document.createElement("strong");
  bandLabel.textContent = messages.bands[band];
  const delivered = `${messages.stockAt} ${timeWithAge(store.stock_at)}`;
  const reported = `${messages.reportedAt} ${timeWithAge(store.created_at)}`;
  meta.append(bandLabel, ` · ${delivered} · ${reported}`);

  body.append(name, address, meta);
  item.append(dot, body);
  item.addEventListener("click", () => selectStore(store.code, false));
  item.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      selectStore(store.code, false);
    }
  });
  return item;
}

function renderList() {
  const stores = sortedStores();
  elements.list.replaceChildren(...stores.slice(0, LIST_LIMIT).map(storeItem));
  const hidden = stores.length - LIST_LIMIT;
  elements.more.textContent = hidden > 0 ? text().moreStores(hidden) : "";
  elements.more.hidden = hidden <= 0;
  if (map.selectedCode) {
    selectStore(map.selectedCode, false);
  }
}

function renderData() {
  renderSummary();
  renderLegend();
  renderList();
  map.setStores(state.stores, isStale);
}

function renderAll() {
  renderStaticText();
  renderRule();
  renderLegend();
  renderNotice();
  renderSummary();
  renderList();
  map.draw();
}

function setLanguage(language) {
  state.language = language;
  try {
    window.localStorage.setItem(LANGUAGE_KEY, language);
  } catch {
    // The choice then lasts only for this page view.
  }
  rememberInUrl("lang", language);
  renderAll();
}

function listen() {
  elements.toggle.addEventListener("click", () =>
    setLanguage(state.language === "ko" ? "en" : "ko"),
  );
  elements.searchForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = elements.searchInput.value;
    const region = findRegion(query);
    if (!region) {
      setStatus("ready", (messages) => messages.regionNotFound(query));
      return;
    }
    showRegion(region).catch(reportFailure);
  });
  elements.nearMe.addEventListener("click", () => {
    if (!navigator.geolocation) {
      setStatus("ready", "geolocationFailed");
      return;
    }
    navigator.geolocation.getCurrentPosition(
      (position) =>
        showNear(position.coords.latitude, position.coords.longitude, NEAR_ME_RADIUS_M).catch(
          reportFailure,
        ),
      () => setStatus("ready", "geolocationFailed"),
      { timeout: 10000 },
    );
  });
  elements.thisArea.addEventListener("click", () => {
    const circle = map.viewCircle();
    if (circle.radiusM > MAX_RADIUS_M) {
      setStatus("ready", "areaTooLarge");
      return;
    }
    showNear(circle.lat, circle.lng, circle.radiusM, { fit: false }).catch(reportFailure);
  });
  elements.zoomIn.addEventListener("click", () => map.zoomBy(2));
  elements.zoomOut.addEventListener("click", () => map.zoomBy(0.5));
  window.addEventListener("resize", () => map.resize());
}

function reportFailure(error) {
  console.error(error);
  setStatus("error", "loadFailed");
}

/** Fills the region picker and the map background from the manifest. */
function useManifest(manifest) {
  state.regions = regionsFromManifest(manifest);
  const options = state.regions.map((region) =>
    Object.assign(document.createElement("option"), { value: region.label }),
  );
  elements.regionOptions.replaceChildren(...options);
  map.setCells(cellsFromManifest(manifest));
}

/** Shows the region named in the URL, else the first sigungu; returns false when there is none. */
async function showInitialRegion() {
  const requested = params.get("region");
  const found =
    requested && state.regions.find((candidate) => candidate.tileId === `region/${requested}`);
  const region = found || state.regions.find((candidate) => candidate.sigungu) || state.regions[0];
  if (!region) {
    return false;
  }

  await showRegion(region);
  if (requested && !found) {
    setStatus("ready", (messages) => messages.regionNotFound(requested));
  }
  return true;
}

async function start() {
  document.body.dataset.state = "loading";
  renderAll();
  listen();
  await loadRules();
  renderAll();

  const manifest = await client.manifest();
  if (!manifest) {
    setStatus("no-data", "noData");
    return;
  }
  useManifest(manifest);
  if (!(await showInitialRegion())) {
    setStatus("no-data", "noData");
    return;
  }

  if (fixedNow === null) {
    window.setInterval(refresh, REFRESH_MS);
  }
}

window.stockfeedPage = { state, client, map, colours: BAND_COLOURS };
start().catch(reportFailure);
