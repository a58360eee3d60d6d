"use strict";
// The live board: rows come from the stream's snapshot and change with every message.
// Only textContent is written, never HTML, so no asset field can inject markup.
const rows = new Map();
const body = document.getElementById("rows");

function rowFor(assetId) {
  let row = rows.get(assetId);
  if (!row) {
    row = document.createElement("tr");
    row.id = "asset-" + assetId;
    for (const cls of ["id", "num price", "num change", "status", "freshness"]) {
      const cell = document.createElement("td");
      cell.className = cls;
      row.appendChild(cell);
    }
    row.cells[0].textContent = assetId;
    rows.set(assetId, row);
    body.appendChild(row);
  }
  return row;
}

function freshness(row) {
  const asOf = row.dataset.asOf ? Date.parse(row.dataset.asOf) : NaN;
  const age = Number.isNaN(asOf) ? null : Math.max(0, Math.round((Date.now() - asOf) / 1000));
  const tradable = row.dataset.tradable === "true";
  row.classList.toggle("fresh", tradable);
  row.classList.toggle("stale", !tradable && row.dataset.stale === "true");
  row.classList.toggle("halted", !tradable && row.dataset.stale !== "true");
  const label = tradable ? "fresh" : (row.dataset.stale === "true" ? "stale" : "not tradable");
  row.cells[4].textContent = age === null ? label : label + " (" + age + " s)";
}

function show(message) {
  const row = rowFor(message.asset_id);
  row.cells[1].textContent = message.price ?? "—";
  row.cells[2].textContent = message.price_change_percentage_24h ?? "";
  row.cells[3].textContent = message.status;
  row.dataset.asOf = message.as_of || "";
  row.dataset.tradable = String(message.tradable);
  row.dataset.stale = String(message.type === "stale");
  row.dataset.assetSeq = String(message.asset_seq);
  if (message.type !== "snapshot") {
    row.classList.add("updated");
    setTimeout(() => row.classList.remove("updated"), 1500);
  }
  freshness(row);
}

const connection = document.getElementById("connection");
// Seconds before a refused stream is tried again (the server's Retry-After is not visible to EventSource).
const REOPEN_SECONDS = 5;
// The stream's visible heartbeat: the position this board is current as of, and when it came.
// `heardAt`: the connection's last sign of life (its opening, or a heartbeat).
const live = { source: null, seq: null, beatAt: null, heardAt: null, interval: null };

function showLive() {
  if (live.beatAt === null) return;
  const ago = Math.max(0, Math.round((Date.now() - live.beatAt) / 1000));
  connection.textContent = "live, current as of seq " + live.seq + ", " + ago + " s ago";
}

function connect() {
  // Resuming from the last position replays what was missed (a fresh snapshot if it is too old).
  const query = live.seq === null ? "" : "?since=" + live.seq;
  const source = new EventSource("/inventory/assets/stream" + query);
  live.source = source;
  live.beatAt = live.heardAt = null;
  for (const kind of ["snapshot", "price", "status", "stale"]) {
    source.addEventListener(kind, (event) => show(JSON.parse(event.data)));
  }
  source.addEventListener("heartbeat", (event) => {
    const beat = JSON.parse(event.data);
    Object.assign(live, { seq: beat.seq, beatAt: Date.now(), heardAt: Date.now(), interval: beat.interval });
    showLive();
  });
  source.addEventListener("close", () => { connection.textContent = "server restarting, reconnecting…"; });
  source.onopen = () => { connection.textContent = "live"; live.heardAt = Date.now(); };
  source.onerror = () => {
    live.beatAt = live.heardAt = null;
    if (source.readyState !== EventSource.CLOSED) {
      connection.textContent = "reconnecting…";  // EventSource retries by itself, with Last-Event-ID
      return;
    }
    // A refusal (503 when full, a gateway's 502) ends an EventSource for good: say so and open
    // a new one later, so the board never goes silent unnoticed.
    connection.textContent = "unavailable, retrying in " + REOPEN_SECONDS + " s";
    setTimeout(connect, REOPEN_SECONDS * 1000);
  };
}
connect();

// Two heartbeats missed: the connection is stalled (a proxy holding it, a frozen server) even
// though the socket looks open. Drop it and resume from the last position.
setInterval(() => {
  if (live.heardAt === null) return;
  showLive();
  if (Date.now() - live.heardAt > (2 * (live.interval || 15) + 1) * 1000) {
    live.source.close();
    connection.textContent = "stalled, reconnecting…";
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
health();
setInterval(health, 10000);
setInterval(() => rows.forEach(freshness), 1000);
