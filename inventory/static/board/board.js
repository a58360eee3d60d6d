"use strict";
// The live board. Rows come from the REST list (name, rank, market cap, volume, categories,
// sparkline) and from the stream (price, 24h change, status, freshness, asset_seq), which
// updates them in place and creates a row for any asset the list did not have.
// Only textContent and DOM methods write to the page, never HTML, so no asset field can inject markup.

const body = document.getElementById("rows");
// asset_id -> {id, row, cells, data, live (the stream has spoken), listed (REST has), detailAsked}
const assets = new Map();
const board = { listed: false };

const LIST_SECONDS = 60;      // market caps, ranks, sparklines: refreshed from the list
const OVERVIEW_SECONDS = 30;  // the totals at the top
const HEALTH_SECONDS = 10;

const compactUsd = new Intl.NumberFormat("en-US", {
  style: "currency", currency: "USD", notation: "compact", maximumSignificantDigits: 3,
});
const percent = new Intl.NumberFormat("en-US", {
  minimumFractionDigits: 2, maximumFractionDigits: 2, signDisplay: "exceptZero",
});
const CATEGORY_NAMES = { defi: "DeFi", rwa: "RWA", ai: "AI", "layer-1": "Layer 1", "layer-2": "Layer 2" };

// REST bodies carry exact decimals as JSON numbers: keep the price's own digits (the
// parser's source text) rather than the nearest double. Everything else is for display.
function parseBody(text) {
  return JSON.parse(text, (key, value, context) =>
    key === "current_price" && typeof value === "number" ? (context?.source ?? String(value)) : value);
}

async function getJson(path) {
  const response = await fetch(path);
  const text = await response.text();
  return { status: response.status, ok: response.ok, body: text ? parseBody(text) : null };
}

// -- formatting ------------------------------------------------------------------

// An exact decimal string with thousands separators; its digits untouched.
function exactPrice(text) {
  if (text === null || text === undefined || text === "") return "—";
  const [whole, fraction] = String(text).split(".");
  const sign = whole.startsWith("-") ? "-" : "";
  const grouped = whole.slice(sign.length).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return sign + grouped + (fraction === undefined ? "" : "." + fraction);
}

function compact(value) {
  const number = value === null || value === undefined ? NaN : Number(value);
  return Number.isFinite(number) ? compactUsd.format(number) : "—";
}

function ago(seconds) {
  if (seconds < 90) return seconds + " s";
  if (seconds < 90 * 60) return Math.round(seconds / 60) + " min";
  if (seconds < 48 * 3600) return Math.round(seconds / 3600) + " h";
  return Math.round(seconds / 86400) + " d";
}

function categoryName(slug) {
  return CATEGORY_NAMES[slug] || slug.charAt(0).toUpperCase() + slug.slice(1).replace(/-/g, " ");
}

// -- rows ------------------------------------------------------------------------

const COLUMNS = ["num rank", "asset", "num price", "num change", "spark", "num market-cap", "num volume", "freshness"];

function entry(assetId) {
  let item = assets.get(assetId);
  if (item) return item;
  const row = document.createElement("tr");
  row.id = "asset-" + assetId;
  const cells = {};
  for (const cls of COLUMNS) {
    const cell = document.createElement("td");
    cell.className = cls;
    row.appendChild(cell);
    cells[cls.split(" ").pop()] = cell;
  }
  const name = document.createElement("span");
  name.className = "name";
  const symbol = document.createElement("span");
  symbol.className = "symbol";
  cells.asset.append(name, symbol);
  const pill = document.createElement("span");
  pill.className = "pill";
  const check = document.createElement("span");
  check.className = "check";
  cells.freshness.append(pill, check);
  item = {
    id: assetId, row, cells, name, symbol, pill, check, live: false, listed: false, detailAsked: false,
    data: { name: null, symbol: null, market_cap_rank: null, categories: [], sparkline: null },
  };
  assets.set(assetId, item);
  body.appendChild(row);
  scheduleLayout();
  return item;
}

function renderCatalog(item) {
  const d = item.data;
  item.cells.rank.textContent = d.market_cap_rank ?? "—";
  item.name.textContent = d.name || item.id;
  item.symbol.textContent = (d.symbol || item.id).toUpperCase();
  item.cells["market-cap"].textContent = compact(d.market_cap);
  item.cells.volume.textContent = compact(d.volume_24h);
  const svg = sparkline(d.sparkline);
  if (svg) item.cells.spark.replaceChildren(svg);
  else item.cells.spark.replaceChildren();
}

function renderPrice(item) {
  const d = item.data;
  item.cells.price.textContent = exactPrice(d.current_price);
  const change = d.price_change_percentage_24h === null || d.price_change_percentage_24h === undefined
    ? NaN : Number(d.price_change_percentage_24h);
  const cell = item.cells.change;
  cell.textContent = Number.isFinite(change) ? percent.format(change) + "%" : "—";
  cell.title = Number.isFinite(change) ? String(d.price_change_percentage_24h) + " %" : "";
  cell.classList.toggle("up", change > 0);
  cell.classList.toggle("down", change < 0);
  cell.classList.toggle("flat", change === 0);
  if (d.asset_seq !== undefined && d.asset_seq !== null) item.row.dataset.assetSeq = String(d.asset_seq);
  freshness(item);
}

// One state per row: fresh (tradable), stale (priced, price too old: amber), suspended (red),
// inactive, or no price yet. The age of the price is shown beside it, ticking.
function freshness(item) {
  const d = item.data;
  let state;
  if (d.status === "SUSPENDED") state = "suspended";
  else if (d.status === "INACTIVE") state = "inactive";
  else if (d.current_price === null || d.current_price === undefined) state = "unpriced";
  else if (d.stale) state = "stale";
  else state = "fresh";
  for (const name of ["fresh", "stale", "suspended", "inactive", "unpriced"]) {
    item.row.classList.toggle(name, name === state);
  }
  const asOf = d.as_of ? Date.parse(d.as_of) : NaN;
  const age = Number.isNaN(asOf) ? null : Math.max(0, Math.round((Date.now() - asOf) / 1000));
  // The price's age where it matters (fresh or stale); an operator's status or no price says it all.
  const label = state === "unpriced" ? "no price yet" : state;
  const text = age !== null && (state === "fresh" || state === "stale") ? label + " · " + ago(age) + " ago" : label;
  if (item.pill.textContent !== text) item.pill.textContent = text;
  item.pill.title = d.as_of ? "price as of " + d.as_of : "";
  priceCheck(item);
}

// The price's cross-check beside its freshness: how far the second source is (in basis points),
// "diverged" in red past the asset's band, or which source stands in for CoinGecko.
function priceCheck(item) {
  const check = item.data.price_check;
  const source = item.data.source;
  let text = "", title = "";
  if (source && source !== "coingecko" && source !== "operator") {
    text = "via " + source;
    title = "CoinGecko is not answering: this price is " + source + "'s";
  } else if (check && (check.status === "ok" || check.status === "diverged")) {
    const second = (check.sources || [])[1] || {};
    const bps = Number(check.divergence_bps).toFixed(1);
    text = (check.status === "ok" ? "✓ " : "diverged ") + bps + " bp";
    title = (second.source || "second source") + " " + (second.price ?? "") + " (" + (second.pair || "") +
      "), band " + check.band_bps + " bp";
  } else if (check && check.status === "secondary_stale") {
    text = "unchecked";
    title = "the second source has not answered lately";
  }
  item.row.classList.toggle("diverged", !!check && check.status === "diverged");
  if (item.check.textContent !== text) item.check.textContent = text;
  item.check.title = title;
}

// The 7-day sparkline: an SVG polyline of hourly closes, oldest first; nothing without two points.
const SVG = "http://www.w3.org/2000/svg";
const SPARK = { width: 112, height: 30, pad: 2 };

function sparkline(prices) {
  const values = Array.isArray(prices) ? prices.map(Number).filter(Number.isFinite) : [];
  if (values.length < 2) return null;
  const { width, height, pad } = SPARK;
  let low = Infinity, high = -Infinity;
  for (const value of values) { low = Math.min(low, value); high = Math.max(high, value); }
  const step = (width - 2 * pad) / (values.length - 1);
  const y = (value) => high === low ? height / 2 : pad + (high - value) * (height - 2 * pad) / (high - low);
  const points = values.map((value, i) => (pad + i * step).toFixed(1) + "," + y(value).toFixed(1)).join(" ");
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 " + width + " " + height);
  svg.setAttribute("width", String(width));
  svg.setAttribute("height", String(height));
  const direction = values[values.length - 1] > values[0] ? "up" : values[values.length - 1] < values[0] ? "down" : "flat";
  svg.setAttribute("class", "sparkline " + direction);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "7-day price, " + direction);
  const line = document.createElementNS(SVG, "polyline");
  line.setAttribute("points", points);
  svg.appendChild(line);
  return svg;
}

// Market-cap rank order, unranked last (then by asset id); a moved row keeps its node.
function order(a, b) {
  const ra = a.data.market_cap_rank ?? Infinity, rb = b.data.market_cap_rank ?? Infinity;
  if (ra !== rb) return ra < rb ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

let layoutPending = false;
function scheduleLayout() {
  if (layoutPending) return;
  layoutPending = true;
  setTimeout(() => { layoutPending = false; layout(); }, 0);
}

function layout() {
  const sorted = [...assets.values()].sort(order);
  sorted.forEach((item, i) => {
    if (body.children[i] !== item.row) body.insertBefore(item.row, body.children[i] || null);
  });
  filter();
}

// -- search and category filter --------------------------------------------------

const search = document.getElementById("search");
const category = document.getElementById("category");

function matches(item) {
  const needle = search.value.trim().toLowerCase();
  const d = item.data;
  if (needle && ![item.id, d.symbol || "", d.name || ""].some((text) => text.toLowerCase().includes(needle))) {
    return false;
  }
  return !category.value || (d.categories || []).includes(category.value);
}

function filter() {
  let shown = 0;
  for (const item of assets.values()) {
    const visible = matches(item);
    item.row.hidden = !visible;
    shown += visible;
  }
  const total = assets.size;
  document.getElementById("shown").textContent =
    shown === total ? total + " assets" : shown + " of " + total + " assets";
  document.getElementById("empty").hidden = shown > 0 || total === 0;
}

search.addEventListener("input", filter);
category.addEventListener("change", filter);

// -- REST: the list, a stream-only asset's detail, categories, overview ----------

function applyListed(asset) {
  const item = entry(asset.asset_id);
  const d = item.data;
  const rankBefore = d.market_cap_rank;
  Object.assign(d, {
    name: asset.name, symbol: asset.symbol, market_cap_rank: asset.market_cap_rank ?? null,
    market_cap: asset.market_cap, volume_24h: asset.volume_24h, categories: asset.categories || [],
  });
  // Hourly closes over 7 days, oldest first (the list's `sparkline=true`, the detail's always):
  // empty, null or missing draw nothing.
  d.sparkline = asset.sparkline_7d?.price ?? null;
  if (!item.live) {
    // Until the stream has spoken for this asset, the list's price is the best there is.
    Object.assign(d, {
      current_price: asset.current_price, price_change_percentage_24h: asset.price_change_percentage_24h,
      status: asset.status, as_of: asset.last_price_update, stale: asset.price_stale === true,
      tradable: asset.is_active === true, price_check: asset.price_check, source: asset.price_source,
    });
    renderPrice(item);
  }
  item.listed = true;
  renderCatalog(item);
  if (rankBefore !== d.market_cap_rank) scheduleLayout();
}

async function loadList() {
  let cursor = null;
  for (let pages = 0; pages < 40; pages++) {
    const query = new URLSearchParams({ limit: "250", tradable: "false", sparkline: "true" });
    if (cursor) query.set("cursor", cursor);
    const page = await getJson("/inventory/assets?" + query);
    if (!page.ok) throw new Error("list: " + page.status);
    for (const asset of page.body.data) applyListed(asset);
    cursor = page.body.next_cursor;
    if (!cursor) break;
  }
  board.listed = true;
  filter();
  // Rows the stream made before (or beside) the list: their names and figures from the detail.
  for (const item of assets.values()) if (!item.listed) loadDetail(item);
}

async function loadDetail(item) {
  if (item.detailAsked) return;
  item.detailAsked = true;
  try {
    const detail = await getJson("/inventory/assets/" + encodeURIComponent(item.id));
    if (detail.ok) {
      applyListed(detail.body.data);
      filter();
    }
  } catch (error) {
    item.detailAsked = false;  // asked again at the next list refresh
  }
}

async function refreshList() {
  try {
    await loadList();
  } catch (error) {
    document.getElementById("shown").textContent = "list unavailable, retrying";
  }
}

async function loadCategories() {
  try {
    const answer = await getJson("/inventory/categories");
    if (!answer.ok) return;
    const chosen = category.value;
    const options = [new Option("All categories", "")];
    for (const c of answer.body.data) {
      if (c.asset_count > 0 || c.slug === chosen) {
        options.push(new Option(categoryName(c.slug) + " (" + c.asset_count + ")", c.slug));
      }
    }
    category.replaceChildren(...options);
    category.value = chosen;
  } catch (error) {
    // the filter keeps the options it had
  }
}

function setText(id, text) {
  document.getElementById(id).textContent = text;
}

async function overview() {
  const section = document.getElementById("overview");
  try {
    const answer = await getJson("/inventory/market/overview");
    if (!answer.ok) throw new Error("overview: " + answer.status);
    const o = answer.body.data;
    setText("total-market-cap", compact(o.total_market_cap));
    setText("total-volume", compact(o.total_volume_24h));
    const dominance = o.btc_dominance === null || o.btc_dominance === undefined ? NaN : Number(o.btc_dominance);
    setText("btc-dominance", Number.isFinite(dominance) ? dominance.toFixed(1) + "%" : "—");
    setText("tradable-count", String(o.tradable_count));
    setText("stale-count", String(o.stale_count));
    setText("suspended-count", String(o.suspended_count));
    section.classList.toggle("has-stale", o.stale_count > 0);
    section.classList.toggle("has-suspended", o.suspended_count > 0);
    section.classList.remove("unavailable");
    const asOf = o.as_of ? new Date(o.as_of) : null;
    setText("overview-as-of", asOf ? "totals as of " + asOf.toLocaleTimeString() : "");
  } catch (error) {
    section.classList.add("unavailable");  // the last figures stay, dimmed
    setText("overview-as-of", "totals unavailable, retrying");
  }
}

// -- the stream --------------------------------------------------------------------

function show(message) {
  const item = entry(message.asset_id);
  const d = item.data;
  const before = Number(d.current_price);
  if ("price" in message) d.current_price = message.price;
  if ("price_change_percentage_24h" in message) d.price_change_percentage_24h = message.price_change_percentage_24h;
  if ("status" in message) d.status = message.status;
  if ("as_of" in message) d.as_of = message.as_of;
  if ("tradable" in message) d.tradable = message.tradable;
  if ("price_check" in message) d.price_check = message.price_check;
  if ("source" in message) d.source = message.source;
  d.asset_seq = message.asset_seq;
  // Tradable is ACTIVE, priced and fresh: an ACTIVE priced asset that is not tradable is stale.
  d.stale = message.type === "stale" ||
    (d.status === "ACTIVE" && d.current_price !== null && d.current_price !== undefined && d.tradable === false);
  item.live = true;
  renderPrice(item);
  if (message.type !== "snapshot" && message.type !== "check") {  // a check moves no price
    const after = Number(d.current_price);
    item.row.classList.add("updated");
    item.row.classList.toggle("tick-up", after > before);
    item.row.classList.toggle("tick-down", after < before);
    clearTimeout(item.fade);
    item.fade = setTimeout(() => item.row.classList.remove("updated", "tick-up", "tick-down"), 1500);
  }
  if (board.listed && !item.listed) loadDetail(item);
}

const connection = document.getElementById("connection");
// Seconds before a refused stream is tried again (the server's Retry-After is not visible to EventSource).
const REOPEN_SECONDS = 5;
// The stream's visible heartbeat: the position this board is current as of, and when it came.
// `heardAt`: the connection's last sign of life (its opening, or a heartbeat).
const live = { source: null, seq: null, beatAt: null, heardAt: null, interval: null };

function state(text, cls) {
  connection.textContent = text;
  connection.className = cls;
}

function showLive() {
  if (live.beatAt === null) return;
  const ago = Math.max(0, Math.round((Date.now() - live.beatAt) / 1000));
  state("live, current as of seq " + live.seq + ", " + ago + " s ago", "live");
}

function connect() {
  // Resuming from the last position replays what was missed (a fresh snapshot if it is too old).
  const query = live.seq === null ? "" : "?since=" + live.seq;
  const source = new EventSource("/inventory/assets/stream" + query);
  live.source = source;
  live.beatAt = live.heardAt = null;
  for (const kind of ["snapshot", "price", "status", "stale", "check"]) {
    source.addEventListener(kind, (event) => show(JSON.parse(event.data)));
  }
  source.addEventListener("heartbeat", (event) => {
    const beat = JSON.parse(event.data);
    Object.assign(live, { seq: beat.seq, beatAt: Date.now(), heardAt: Date.now(), interval: beat.interval });
    showLive();
  });
  source.addEventListener("close", () => state("server restarting, reconnecting…", "waiting"));
  source.onopen = () => { state("live", "live"); live.heardAt = Date.now(); };
  source.onerror = () => {
    live.beatAt = live.heardAt = null;
    if (source.readyState !== EventSource.CLOSED) {
      state("reconnecting…", "waiting");  // EventSource retries by itself, with Last-Event-ID
      return;
    }
    // A refusal (503 when full, a gateway's 502) ends an EventSource for good: say so and open
    // a new one later, so the board never goes silent unnoticed.
    state("unavailable, retrying in " + REOPEN_SECONDS + " s", "down");
    setTimeout(connect, REOPEN_SECONDS * 1000);
  };
}

// Two heartbeats missed: the connection is stalled (a proxy holding it, a frozen server) even
// though the socket looks open. Drop it and resume from the last position.
setInterval(() => {
  if (live.heardAt === null) return;
  showLive();
  if (Date.now() - live.heardAt > (2 * (live.interval || 15) + 1) * 1000) {
    live.source.close();
    state("stalled, reconnecting…", "down");
    connect();
  }
}, 1000);

// /health/detailed, not the bare liveness /health: a degraded service (prices not refreshed, source down)
// says so here with the problem codes. A 503 (unhealthy) carries the same JSON report.
async function health() {
  const node = document.getElementById("health");
  try {
    const response = await fetch("/health/detailed", { cache: "no-store" });
    const report = await response.json();
    const codes = (report.problems || []).map((problem) => problem.code);
    node.textContent = report.status + (codes.length ? " (" + codes.join(", ") + ")" : "");
    node.className = report.status;
  } catch (error) {
    node.textContent = "unreachable";
    node.className = "unhealthy";
  }
}

connect();
refreshList();
loadCategories();
overview();
health();
setInterval(() => { refreshList(); loadCategories(); }, LIST_SECONDS * 1000);
setInterval(overview, OVERVIEW_SECONDS * 1000);
setInterval(health, HEALTH_SECONDS * 1000);
setInterval(() => assets.forEach(freshness), 1000);
