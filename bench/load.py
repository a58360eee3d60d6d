"""Load run: reads, batch-gets and status changes together while prices refresh; nothing may be lost.

    .venv/bin/python -m bench.load            (part of `make bench`)

wrk drives 64 connections for 30 s against the real gunicorn (refresher on,
every 2 s, against the local fake CoinGecko whose prices move every second).
Afterwards every asset's status must equal the last change in its audit log,
and each audit chain must link (one change's `from` is the previous one's `to`):
a lost update would break one or the other. And once prices stop moving, every
worker's read model must serve each asset's stored status.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import requests

from inventory.config import Config
from inventory.devtools.dynamodb_local import DynamoDBLocal
from inventory.services.tokens import hash_token
from inventory.store import AssetStore, make_client
from tests.fakes.coingecko import FakeCoinGecko, generate_catalog

from .http import _DONE, Server, WrkResult, all_ids, base_env, load_table
from .report import write_section

TOKEN = "inv_bench-operator-token"
_PAGES = 2  # /coins/markets pages per refresh

# 70% detail reads, 20% batch-gets of five ids, 10% single-item status changes
# (SUSPENDED or ACTIVE at random); 5xx answers are counted separately. The third
# argument is the last draw (of 100) that is not a write: 90 for this mix, 100 for
# the same reads without writes (those draws become detail reads).
_MIX = r"""
local ids = {%s}
local token = "%s"
local reads_up_to = %d
local threads = {}
setup = function(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
init = function(args)
  math.randomseed(1000 + (tid or 0))
  server_errors = 0
end
request = function()
  local r = math.random(100)
  if r <= 70 or (r > 90 and r <= reads_up_to) then
    return wrk.format("GET", "/inventory/assets/" .. ids[math.random(#ids)])
  elseif r <= 90 then
    local pick = {}
    for k = 1, 5 do pick[k] = '"' .. ids[math.random(#ids)] .. '"' end
    return wrk.format("POST", "/inventory/assets/batch-get",
      {["Content-Type"] = "application/json"}, '{"ids": [' .. table.concat(pick, ",") .. ']}')
  else
    local status = (math.random(2) == 1) and "SUSPENDED" or "ACTIVE"
    local body = '{"items": [{"asset_id": "' .. ids[math.random(#ids)] .. '", "status": "' .. status .. '"}], "reason": "load"}'
    return wrk.format("POST", "/inventory/assets/bulk-status",
      {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}, body)
  end
end
response = function(status, headers, body)
  if status >= 500 then server_errors = server_errors + 1 end
end
"""
_COUNT_5XX = r"""
local base_done = done
done = function(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + (t:get("server_errors") or 0) end
  io.write(string.format("SERVER_ERRORS %d\n", total))
  base_done(summary, latency, requests)
end
"""


def mix_script(ids: list[str], reads_up_to: int) -> str:
    """The wrk script of the mix (reads_up_to 90) or of its reads alone (100)."""
    return _MIX % (",".join(json.dumps(i) for i in ids), TOKEN, reads_up_to) + _DONE + _COUNT_5XX


def check_no_lost_changes(url: str, ids: list[str]) -> tuple[int, int, int]:
    """(changes audited, assets whose status differs from their last audit, broken chains)."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    changes = mismatched = broken = 0
    for start in range(0, len(ids), 100):
        found = requests.post(url + "/inventory/assets/batch-get", json={"ids": ids[start:start + 100]},
                              timeout=30).json()["data"]
        for asset in found:
            audit, cursor = [], None
            while True:
                params = {"limit": 250, **({"cursor": cursor} if cursor else {})}
                page = requests.get(f"{url}/inventory/assets/{asset['asset_id']}/audit", params=params,
                                    headers=headers, timeout=30).json()
                audit += page["data"]
                if not (cursor := page["next_cursor"]):
                    break
            changes += len(audit)
            if audit and audit[0]["to_status"] != asset["status"]:
                mismatched += 1
            broken += sum(1 for newer, older in zip(audit, audit[1:]) if newer["from_status"] != older["to_status"])
    return changes, mismatched, broken


def served_equals_stored(url: str, endpoint: str, table: str) -> bool:
    """Whether every worker's read model serves each asset's stored status (batch-get, fresh connections)."""
    store = AssetStore(make_client(Config(DYNAMODB_ENDPOINT_URL=endpoint, DYNAMODB_TABLE_NAME=table)), table)
    stored = {a.asset_id: a.status.value for a in store.iter_all()}
    ids = sorted(stored)
    for _ in range(4):  # each on new connections: every worker answers some
        served = {}
        for start in range(0, len(ids), 100):
            found = requests.post(url + "/inventory/assets/batch-get", json={"ids": ids[start:start + 100]},
                                  headers={"Connection": "close"}, timeout=30).json()["data"]
            served.update((a["asset_id"], a["status"]) for a in found)
        if served != stored:
            return False
    return True


def wait_for_refreshes(cg: FakeCoinGecko, more: int, pages: int, timeout: float = 60) -> None:
    """Until `more` more refreshes of `pages` pages have started (so `more - 1` ran whole)."""
    target, deadline = cg.count("/coins/markets") + more * pages, time.monotonic() + timeout
    while cg.count("/coins/markets") < target and time.monotonic() < deadline:
        time.sleep(0.2)


def run(seconds: int, connections: int) -> list[list[str]]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    with DynamoDBLocal() as ddb, FakeCoinGecko(generate_catalog(500)) as cg:
        load_table(ddb.endpoint, "bench-load", 500)
        stop = threading.Event()

        def tick():
            while not stop.wait(1.0):
                cg.tick()

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        entries = [{"name": "bench-operator", "scopes": ["assets:write"], "hash": hash_token(TOKEN)}]
        env = {
            **base_env(),
            "DYNAMODB_ENDPOINT_URL": ddb.endpoint,
            "DYNAMODB_TABLE_NAME": "bench-load",
            "PRICE_REFRESH_ENABLED": "true",
            "PRICE_REFRESH_INTERVAL_SECONDS": "2",
            "PRICE_REFRESH_PAGES": str(_PAGES),
            "COINGECKO_API_URL": cg.url,
            "COINGECKO_CALLS_PER_MINUTE": "600",
            "API_TOKENS": json.dumps(entries),
            "RATE_LIMIT_WRITES": "1000000000/minute",
        }
        server = Server("load", "wsgi:app", env, workdir).start()
        try:
            server.wait_healthy()
            ids = all_ids(server.url)
            script = workdir / "mix.lua"
            script.write_text(mix_script(ids, 90))
            cg.reset_log()
            result, server_errors = wrk_with_5xx(server.url, script, connections, seconds)
            refreshes = cg.count("/coins/markets")
            changes, mismatched, broken = check_no_lost_changes(server.url, ids)
            # A refresh rewrites the counts from the catalog it read, so a status change
            # landing during one is settled by the next: stop prices, let one run whole.
            stop.set()
            wait_for_refreshes(cg, 2, _PAGES)
            served_ok = served_equals_stored(server.url, ddb.endpoint, "bench-load")
        finally:
            stop.set()
            server.stop()
    return [
        ["requests (70% detail, 20% batch-get, 10% status change)", f"{result.requests}", ""],
        ["throughput", f"{result.rps:.0f} req/s", ""],
        ["latency p50 / p99", f"{result.p50_ms:.1f} / {result.p99_ms:.1f} ms", ""],
        ["latency p50", f"{result.p50_ms:.1f} ms", "<= 30 ms: " + ("met" if result.p50_ms <= 30 else "NOT met")],
        ["price refreshes during the run (counted at the fake CoinGecko)", f"{refreshes}", "> 0"],
        ["5xx responses", f"{server_errors}", "0: " + ("met" if server_errors == 0 else "NOT met")],
        ["status changes audited", f"{changes}", "> 0"],
        ["assets whose status differs from their last audited change", f"{mismatched}",
         "0: " + ("met" if mismatched == 0 else "NOT met")],
        ["broken audit chains", f"{broken}", "0: " + ("met" if broken == 0 else "NOT met")],
        ["every worker serves each asset's stored status after the run", "yes" if served_ok else "no",
         "yes: " + ("met" if served_ok else "NOT met")],
    ]


def wrk_with_5xx(url: str, script: Path, connections: int, seconds: int) -> tuple[WrkResult, int]:
    """Run wrk once; return its figures and the number of 5xx answers the script counted."""
    done = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, timeout=seconds + 120,
    )
    lines = done.stdout.splitlines()
    server_errors = int(next(l for l in lines if l.startswith("SERVER_ERRORS ")).split()[1])
    data = json.loads(next(l for l in lines if l.startswith("BENCH_JSON "))[len("BENCH_JSON "):])
    result = WrkResult(
        rps=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50"] / 1000,
        p90_ms=data["p90"] / 1000,
        p99_ms=data["p99"] / 1000,
        requests=data["requests"],
        errors={},
    )
    return result, server_errors


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args(argv)
    rows = run(args.seconds, args.connections)
    write_section(
        f"Mixed load: reads, batch-gets and status changes while prices refresh ({args.connections} connections, {args.seconds} s)",
        f".venv/bin/python -m bench.load --seconds {args.seconds} --connections {args.connections}",
        ["measure", "value", "target"],
        rows,
        "500 assets; refresher every 2 s in the gunicorn master; gunicorn.conf.py defaults (WEB_CONCURRENCY=2). Lost changes are checked "
        "after the run against each asset's audit log.",
    )


if __name__ == "__main__":
    main()
