"""Benchmark: the read model (issue 20), every figure a ratio or a pair measured side by side in one run.

    .venv/bin/python -m bench.readmodel            (part of `make bench`)

1. Mixed load (70% detail, 20% batch-get, 10% status change) and the same
   connections with the writes replaced by detail reads, alternated, while the
   refresher moves 500 prices every 2 s: p50, p99 and mixed / read-only
   throughput, at 500 and at 10,000 assets. Lost changes are checked after.
2. Detail reads of random assets / of one hot asset, 10,000 assets, nothing changing.
3. Whole-catalog loads of the workers during list/search traffic with refreshes
   (the model's own counter in /metrics): only the cold start may load.
4. Worker CPU to apply one refresh that moves 250 prices (5 feed entries of 50)
   at 10,000 assets, in process, and to build the price ordering it moved.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import requests

from inventory.devtools.dynamodb_local import DynamoDBLocal
from tests.fakes.coingecko import FakeCoinGecko, generate_catalog

from .http import (
    Server,
    base_env,
    fmt_ms,
    git_state,
    load_table,
    lua_script,
    median_result,
    wrk,
    yes,
)
from .load import TOKEN, check_no_lost_changes, mix_script, wrk_with_5xx
from .report import write_section

_REFRESH_PAGES = 2  # 500 prices moved per refresh, every 2 s


def _server(name: str, endpoint: str, table: str, cg_url: str | None, workdir: Path, **extra) -> Server:
    from inventory.services.tokens import hash_token

    env = {**base_env(), "DYNAMODB_ENDPOINT_URL": endpoint, "DYNAMODB_TABLE_NAME": table,
           "PRICE_MAX_AGE_SECONDS": "86400", "RATE_LIMIT_WRITES": "1000000000/minute",
           "API_TOKENS": json.dumps([{"name": "bench-operator", "scopes": ["assets:write"],
                                      "hash": hash_token(TOKEN)}]), **extra}
    if cg_url:
        env.update(PRICE_REFRESH_ENABLED="true", PRICE_REFRESH_INTERVAL_SECONDS="2",
                   PRICE_REFRESH_PAGES=str(_REFRESH_PAGES), COINGECKO_API_URL=cg_url,
                   COINGECKO_CALLS_PER_MINUTE="600")
    return Server(name, "wsgi:app", env, workdir).start()


def _ids(url: str) -> list[str]:
    from .http import all_ids

    return all_ids(url)


def _cpu_seconds(pids) -> float:
    """User + system CPU seconds these processes have used so far (/proc/<pid>/stat)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _server_pids(server: Server) -> list[int]:
    """The gunicorn master and its children: the workers and the refresher process."""
    return [server.process.pid, *server.worker_pids()]


def _loads(url: str) -> dict[str, float]:
    """inventory_catalog_loads_total by reason, summed over the workers."""
    text = requests.get(url + "/metrics", timeout=10).text
    loads: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("inventory_catalog_loads_total{"):
            reason = line.split('reason="')[1].split('"')[0]
            loads[reason] = loads.get(reason, 0) + float(line.rsplit(" ", 1)[1])
    return loads


def mixed_vs_reads(endpoint: str, ddb_pid: int, size: int, workdir: Path, seconds: int, connections: int,
                   rounds: int, check_audit: bool, **extra) -> list[list[str]]:
    table = f"bench-rm-{size}"
    load_table(endpoint, table, size)
    with FakeCoinGecko(generate_catalog(size)) as cg, contextlib.ExitStack() as stack:
        stop = threading.Event()

        def tick():
            while not stop.wait(1.0):
                cg.tick()

        threading.Thread(target=tick, daemon=True).start()
        stack.callback(stop.set)
        server = _server(f"mixed-{size}", endpoint, table, cg.url, workdir, **extra)
        stack.callback(server.stop)
        server.wait_healthy()
        ids = _ids(server.url)
        mixed, reads = workdir / f"mixed-{size}.lua", workdir / f"reads-{size}.lua"
        mixed.write_text(mix_script(ids, 90))
        reads.write_text(mix_script(ids, 100))
        wrk(server.url, reads, 16, 3)  # every worker loaded and warm
        cg.reset_log()
        mixed_runs, read_runs, server_errors = [], [], 0
        cpu = {"reads": [0.0, 0.0, 0.0], "mixed": [0.0, 0.0, 0.0]}  # gunicorn, DynamoDB Local, wall
        for _ in range(rounds):
            for kind, script, runs in (("reads", reads, read_runs), ("mixed", mixed, mixed_runs)):
                before = (_cpu_seconds(_server_pids(server)), _cpu_seconds([ddb_pid]), time.monotonic())
                r, e = wrk_with_5xx(server.url, script, connections, seconds)
                after = (_cpu_seconds(_server_pids(server)), _cpu_seconds([ddb_pid]), time.monotonic())
                cpu[kind] = [t + (b - a) for t, a, b in zip(cpu[kind], before, after)]
                runs.append(r)
                server_errors += e
            print(f"  {size}: reads {read_runs[-1].rps:.0f} req/s p50 {read_runs[-1].p50_ms:.1f} ms; mixed "
                  f"{mixed_runs[-1].rps:.0f} req/s p50 {mixed_runs[-1].p50_ms:.1f} p99 {mixed_runs[-1].p99_ms:.1f} ms",
                  flush=True)
        refreshes = cg.count("/coins/markets") // _REFRESH_PAGES
        loads = _loads(server.url)
        m, r = median_result(mixed_runs), median_result(read_runs)
        rows = [
            [f"1. mixed load p50, {size} assets, c{connections}", fmt_ms(m.p50_ms), "<= 30 ms", yes(m.p50_ms <= 30)],
            [f"1. mixed load p99, {size} assets, c{connections}", fmt_ms(m.p99_ms), "<= 150 ms",
             yes(m.p99_ms <= 150)],
            [f"1. mixed / read-only throughput, {size} assets, c{connections}",
             f"{m.rps / r.rps:.2f} ({m.rps:.0f} vs {r.rps:.0f} req/s; read-only p50 {fmt_ms(r.p50_ms)}, "
             f"p99 {fmt_ms(r.p99_ms)})", ">= 0.6", yes(m.rps / r.rps >= 0.6)],
            [f"1. 5xx answers and refreshes during the runs, {size} assets", f"{server_errors} 5xx; {refreshes} refreshes",
             "0 5xx", yes(server_errors == 0)],
            [f"1. where the 2 cores went, {size} assets: CPU s per wall s (read-only / mixed)",
             " / ".join(f"gunicorn {c[0] / c[2]:.2f}, DynamoDB Local {c[1] / c[2]:.2f}, rest (wrk, ...) "
                        f"{max(0.0, os.cpu_count() - (c[0] + c[1]) / c[2]):.2f} at most"
                        for c in (cpu["reads"], cpu["mixed"])), "report", "n/a"],
            [f"3. whole-catalog loads during the runs, {size} assets",
             f"{loads.get('cold', 0):.0f} cold starts (2 workers), {loads.get('resync', 0):.0f} resyncs",
             "cold starts only", yes(loads.get("resync", 0) == 0)],
        ]
        if check_audit:
            stop.set()
            changes, mismatched, broken = check_no_lost_changes(server.url, ids)
            rows.append([f"1. lost status changes, {size} assets ({changes} audited)",
                         f"{mismatched} statuses differ from their last audit, {broken} broken chains", "0",
                         yes(mismatched == broken == 0 and changes > 0)])
    return rows


def hot_vs_random(endpoint: str, workdir: Path, seconds: int, connections: int, rounds: int,
                  cache_bytes: int | None = None) -> list[list[str]]:
    extra = {"CACHE_MAX_ASSET_BYTES": str(cache_bytes)} if cache_bytes else {}
    server = _server("hot-random", endpoint, "bench-rm-10000", None, workdir, **extra)
    try:
        server.wait_healthy()
        ids = _ids(server.url)
        hot = lua_script(workdir, "hot", [f"/inventory/assets/{ids[0]}"])
        # Random order, not rank order: consecutive requests hit different assets.
        shuffled = list(ids)
        __import__("random").Random(7).shuffle(shuffled)
        spread = lua_script(workdir, "random", [f"/inventory/assets/{i}" for i in shuffled])
        # Three passes over every id, so each worker has rendered (and kept, where it fits) each body.
        warm = lua_script(workdir, "warm", [f"/inventory/assets/{i}" for i in shuffled * 3])
        requests_done = 0
        while requests_done < 3 * len(ids):
            requests_done += wrk(server.url, warm, 16, 5).requests
        hot_runs, random_runs = [], []
        for _ in range(rounds):
            hot_runs.append(wrk(server.url, hot, connections, seconds))
            random_runs.append(wrk(server.url, spread, connections, seconds))
        h, r = median_result(hot_runs), median_result(random_runs)
        ratio = r.rps / h.rps
        rss = ", ".join(f"{v:.0f}" for v in sorted(server.worker_rss_mb().values()))
        from inventory.config import Config

        cache = f"detail cache {(cache_bytes or Config.CACHE_MAX_ASSET_BYTES) // 2**20} MB" + (
            "" if cache_bytes else " (default)")
        return [[f"2. detail of random assets / one hot asset, {len(ids)} assets, nothing changing, c{connections}, "
                 f"{cache}",
                 f"{ratio:.2f} ({r.rps:.0f} vs {h.rps:.0f} req/s; p99 {fmt_ms(r.p99_ms)} vs {fmt_ms(h.p99_ms)}); "
                 f"worker RSS after: {rss} MB", ">= 0.8", yes(ratio >= 0.8)]]
    finally:
        server.stop()


def list_search_loads(endpoint: str, workdir: Path, minutes: float) -> list[list[str]]:
    """Whole-catalog loads while list and search traffic runs and prices refresh (10,000 assets)."""
    with FakeCoinGecko(generate_catalog(10_000)) as cg:
        server = _server("loads", endpoint, "bench-rm-10000", cg.url, workdir)
        try:
            server.wait_healthy()
            paths = ["/inventory/assets?limit=50", "/inventory/assets/search?q=co",
                     "/inventory/assets?sort=-price_change_percentage_24h&limit=20", "/inventory/market/overview",
                     "/inventory/categories"]
            script = lua_script(workdir, "list-search", paths)
            started, ran = time.monotonic(), 0
            while time.monotonic() - started < minutes * 60:
                cg.tick()
                wrk(server.url, script, 16, 10)
                ran += 1
            loads = _loads(server.url)
            refreshes = cg.count("/coins/markets") // _REFRESH_PAGES
        finally:
            server.stop()
    return [[f"3. whole-catalog loads in {minutes:g} min of list/search traffic with {refreshes} refreshes, "
             "10,000 assets, after the cold start",
             f"{loads.get('resync', 0):.0f} (cold starts: {loads.get('cold', 0):.0f}, one per worker)",
             "0 (only on resync)", yes(loads.get("resync", 0) == 0)]]


def store_write_rate(endpoint: str, ddb_pid: int, table: str, seconds: float = 10, threads: int = 4) -> list[list[str]]:
    """One-item status changes through the service in this process alone (no HTTP, no reads):
    how many DynamoDB Local commits a second, and its CPU per change: the bound under the mixed load."""
    from inventory.config import Config
    from inventory.domain import AssetStatus
    from inventory.services.catalog import CatalogService
    from inventory.services.writes import CatalogWrites
    from inventory.store import Stores, make_client

    config = Config(DYNAMODB_ENDPOINT_URL=endpoint, DYNAMODB_TABLE_NAME=table, STREAM_POLL_SECONDS=60)
    stores = Stores.build(make_client(config), config)
    service = CatalogWrites(CatalogService(stores, config))
    ids = [a.asset_id for a in stores.assets.iter_all()][:400]
    done, stop = [0] * threads, time.monotonic() + seconds

    def operator(n: int) -> None:
        mine = ids[n::threads]
        while time.monotonic() < stop:
            # What the mixed load's writes are: a one-item bulk-status (a BatchGetItem and a transaction).
            status = (AssetStatus.SUSPENDED, AssetStatus.ACTIVE)[done[n] // len(mine) % 2]
            service.bulk_status([{"asset_id": mine[done[n] % len(mine)], "status": status}], False, "bench",
                                "bench", "bench")
            done[n] += 1

    cpu, started = _cpu_seconds([ddb_pid]), time.monotonic()
    workers = [threading.Thread(target=operator, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall, used = time.monotonic() - started, _cpu_seconds([ddb_pid]) - cpu
    service.model.stop()
    changes = sum(done)
    return [[f"1. the bound: status changes through the service alone, {threads} threads, DynamoDB Local",
             f"{changes / wall:.0f} changes/s; DynamoDB Local {used / changes * 1000:.1f} ms of CPU per change "
             f"({used / wall:.2f} cores)", "report", "n/a"]]


def apply_cpu(size: int = 10_000, moved: int = 250, repeats: int = 7) -> list[list[str]]:
    """CPU of one worker to apply a refresh that moves `moved` prices: the model's sync, then the
    first sorted query (which builds the price ordering the batch moved)."""
    from datetime import timedelta
    from decimal import Decimal

    from inventory.domain import utcnow
    from inventory.domain.search import SearchQuery
    from inventory.readmodel.model import ReadModel
    from inventory.source.rows import match_rows
    from inventory.store.feed import FeedEntry
    from inventory.store.prices import PriceUpdate

    now = utcnow()
    rows = generate_catalog(size)
    assets = match_rows(rows, [], now, require_price=True).new
    applies, orderings = [], []
    for attempt in range(repeats):
        entries: list = []

        class Feed:
            def head(self):
                return entries[-1].seq if entries else 0

            def read(self, after, limit):
                return [e for e in entries if e.seq > after][:limit]

        model = ReadModel(load=lambda: assets, feed=Feed(), reread=lambda ids: {}, poll_seconds=0,
                          retention_seconds=3600).start()
        view = model.view()
        view.search(SearchQuery(sort=(("price", True),)), 50, None, now, 300)  # orderings built, as in a busy worker
        at = now + timedelta(seconds=60 * (attempt + 1))
        events = []
        for n, asset in enumerate(assets[:moved]):
            price = asset.current_price * Decimal("1.01")
            changes = {"current_price": price, "price_change_24h": Decimal("1.5"), "volume_24h": asset.volume_24h,
                       "market_cap": asset.market_cap, "price_change_percentage_24h": Decimal("0.7"),
                       "last_price_update": at}
            events.append(PriceUpdate(asset.asset_id, changes, at, {"price": price}, stream_seq=0).feed_event())
        entries.extend(FeedEntry(seq, at, events[i:i + 50]) for seq, i in enumerate(range(0, moved, 50), start=1))
        started = time.process_time()
        model.sync()
        applies.append(time.process_time() - started)
        started = time.process_time()
        model.view().search(SearchQuery(sort=(("price", True),)), 50, None, at, 300)
        orderings.append(time.process_time() - started)
        assert model.get(assets[0].asset_id).current_price == assets[0].current_price * Decimal("1.01")
    apply_ms, order_ms = statistics.median(applies) * 1000, statistics.median(orderings) * 1000
    return [[f"4. worker CPU to apply one refresh moving {moved} prices, {size} assets (median of {repeats})",
             f"{apply_ms:.1f} ms to apply; then {order_ms:.1f} ms once for the first price-sorted page "
             f"(its ordering rebuilt)", "< 50 ms", yes(apply_ms < 50)]]


def run(seconds: int, connections: int, rounds: int, minutes: float) -> tuple[list[list[str]], str]:
    load_before = os.getloadavg()[0]
    rows: list[list[str]] = []
    started = time.monotonic()
    rows += apply_cpu()
    print(rows[-1], flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-rm-") as tmp, DynamoDBLocal() as ddb:
        workdir = Path(tmp)
        for size, audit in ((500, True), (10_000, False)):
            rows += mixed_vs_reads(ddb.endpoint, ddb.process.pid, size, workdir, seconds, connections, rounds, audit)
        rows += store_write_rate(ddb.endpoint, ddb.process.pid, "bench-rm-500")
        rows += hot_vs_random(ddb.endpoint, workdir, seconds, connections, rounds)
        rows += hot_vs_random(ddb.endpoint, workdir, seconds, connections, rounds, cache_bytes=32 * 2**20)
        rows += list_search_loads(ddb.endpoint, workdir, minutes)
    notes = (
        f"gunicorn with gunicorn.conf.py defaults (gthread, 4 threads, WEB_CONCURRENCY=2), DynamoDB Local in "
        f"memory, the fake CoinGecko moving every price each second; the refresher (in the gunicorn master) every "
        f"2 s moves the top 500 assets' prices. wrk -t2 -d{seconds}s, c{connections}; read-only and mixed "
        f"alternate {rounds} times, medians shown. wrk, gunicorn and DynamoDB Local share the {os.cpu_count()} "
        f"cores (1-minute load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after). "
        f"Code: {git_state()}. Whole run: {time.monotonic() - started:.0f} s."
    )
    return rows, notes


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=15, help="length of each wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--minutes", type=float, default=2.0, help="list/search traffic for the loads count")
    args = parser.parse_args(argv)
    rows, notes = run(args.seconds, args.connections, args.rounds, args.minutes)
    write_section(
        "Read model: mixed load, hot and random reads, catalog loads, apply cost",
        f".venv/bin/python -m bench.readmodel --seconds {args.seconds} --connections {args.connections} "
        f"--rounds {args.rounds} --minutes {args.minutes:g}",
        ["measurement", "measured", "target", "met"],
        rows,
        notes,
    )


if __name__ == "__main__":
    main()
