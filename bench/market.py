"""Benchmark: filtered sorted search at 10,000 vs 100 assets, overview and movers, and worker RSS after traffic.

    .venv/bin/python -m bench.market [--seconds 5] [--rss-only]

Same set-up as bench/http.py (DynamoDB Local, tables loaded by one refresh from
the fake CoinGecko, gunicorn with gunicorn.conf.py, wrk alternating A and B),
plus in-process timings of what a snapshot load computes once.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path

import requests

from inventory.config import Config
from inventory.domain.market import Movers, Overview
from inventory.domain.search import SearchIndex
from inventory.jobs.scheduler import build_refresher
from tests.fakes.coingecko import FakeCoinGecko, generate_catalog

from .http import (
    MAX_AGE,
    ROUNDS,
    Server,
    all_ids,
    base_env,
    check_code_origin,
    errors_note,
    fmt_ms,
    git_state,
    load_table,
    lua_script,
    median_result,
    wrk,
    yes,
)
from .report import write_section

FILTERED = ("/inventory/assets/search?min_market_cap=1000&max_price_change_percentage_24h=50"
            "&sort=-volume_24h,name&limit=50")
FILTERED_LIST = "/inventory/assets?min_volume_24h=1&category=defi,layer-1,stablecoin&sort=-price_change_percentage_24h,rank"
OVERVIEW = "/inventory/market/overview"
MOVERS = "/inventory/market/movers?window=24h&limit=20&min_market_cap=0&min_volume_24h=0"


def in_process(rows: list[list[str]]) -> None:
    """What one snapshot load computes, and an uncached filtered page, at 10,000 and 100 assets."""
    from inventory.api.assets.schemas import SearchArgsSchema, search_query

    timings = {}
    for n in (100, 10_000):
        assets = _assets(n)
        started = time.perf_counter()
        index = SearchIndex(assets)
        build = time.perf_counter() - started
        started = time.perf_counter()
        Overview.of(index, MAX_AGE)
        Movers(index, MAX_AGE)
        derived = time.perf_counter() - started
        query = search_query(SearchArgsSchema().load(
            {"min_market_cap": "1000", "max_price_change_percentage_24h": "50", "sort": "-volume_24h,name"}))
        now = max(a.last_price_update for a in assets if a.last_price_update)
        started = time.perf_counter()
        index.search(query, 50, None, now, MAX_AGE)  # the first time: one pass over the catalog
        first = time.perf_counter() - started
        samples = []
        for _ in range(30):
            started = time.perf_counter()
            index.search(query, 50, None, now, MAX_AGE)  # again: the snapshot's memo of the query
            samples.append(time.perf_counter() - started)
        timings[n] = (build, derived, first, statistics.median(samples))
    for n, (build, derived, first, page) in timings.items():
        rows.append([f"in-process, {n} assets: index build / overview + movers / filtered page, first / repeated",
                     f"{build * 1000:.1f} ms / {derived * 1000:.1f} ms / {first * 1000:.2f} ms / {page * 1000:.3f} ms",
                     "report", "n/a"])


def _assets(n: int):
    """n assets with market fields spread like a catalog's (seeded: the same every run)."""
    import random
    from datetime import datetime, timezone
    from decimal import Decimal

    from inventory.domain import Asset

    rng = random.Random(n)
    now = datetime.now(timezone.utc)

    def money():
        return Decimal(rng.randint(1, 10**12)) / Decimal(10 ** rng.randint(0, 8))

    return [
        Asset(f"A{i}", f"a{i}", f"Coin {i}", category=rng.choice([None, "defi", "meme"]), market_cap_rank=i + 1,
              current_price=money(), market_cap=money(), volume_24h=money(),
              price_change_percentage_24h=Decimal(rng.randint(-9000, 9000)) / 100,
              price_change_percentage_7d=Decimal(rng.randint(-9000, 9000)) / 100, last_price_update=now)
        for i in range(n)
    ]


def worker_memory_mb(server: Server) -> list[tuple[float, float, float]]:
    """Per worker (RSS, PSS, USS) in MB from /proc/<pid>/smaps_rollup, by RSS.

    RSS counts the pages a worker still shares with the master (the preloaded
    app, copy-on-write); PSS splits each shared page among its sharers; USS is
    what the worker alone holds (what killing it frees).
    """
    found = []
    for pid in server.worker_pids():
        fields = {}
        with contextlib.suppress(FileNotFoundError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
                name, _, rest = line.partition(":")
                fields[name] = int(rest.split()[0]) / 1024
        if fields:
            found.append((fields["Rss"], fields["Pss"], fields["Private_Clean"] + fields["Private_Dirty"]))
    return sorted(found)


def _load_child(page_items: int) -> None:
    """In a fresh interpreter (the parent's environment names the table): one snapshot
    load and three reloads at `page_items` per Query page; prints RSS growth and live data."""
    import gc
    import json

    import inventory.store.assets as store_assets
    from inventory.api.extension import services
    from inventory.app import create_app
    from inventory.domain.search import load_index

    # 0: no item limit, so DynamoDB's own applies (1 MB per page).
    store_assets._CATALOG_PAGE = page_items or 1_000_000
    with create_app().app_context():
        service = services().catalog
        service.stores.feed.head()  # the client, its model and connection: not part of a load
        gc.collect()
        before = _rss_kb()
        cpu = []
        index = None
        for seq in range(4):
            # A full load, as a cold start or a resync does (the previous version lends its rows).
            started = time.process_time()
            index = load_index(service.stores.assets.iter_all(), seq, index)
            cpu.append(time.process_time() - started)
            gc.collect()
        print(json.dumps({"assets": len(index), "rss_growth_mb": (_rss_kb() - before) / 1024,
                          "allocated_blocks_mb": _allocated_mb(), "reload_cpu_s": statistics.median(cpu[1:])}))


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _allocated_mb() -> float:
    """Bytes in live pymalloc blocks (sys._debugmallocstats' own count), in MB."""
    import re
    import sys

    with tempfile.TemporaryFile() as out:
        saved = os.dup(2)
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read().decode()
    found = re.search(r"bytes in allocated blocks\s*=\s*([\d,]+)", text)
    return int(found.group(1).replace(",", "")) / 2**20 if found else float("nan")


def load_pages(rows: list[list[str]], endpoint: str, table: str) -> None:
    """RSS growth of a worker-like process after one 10,000-asset snapshot load and three
    reloads, by Query page size: the same live data, very different RSS (arenas pinned);
    and the CPU of a reload (median of the three), which each page adds to."""
    import json
    import subprocess
    import sys

    env = {**base_env(), "DYNAMODB_ENDPOINT_URL": endpoint, "DYNAMODB_TABLE_NAME": table,
           "PRICE_REFRESH_ENABLED": "false", "PRICE_MAX_AGE_SECONDS": str(MAX_AGE)}
    for page_items, label in ((0, "1 MB (DynamoDB's default)"), (500, "500 items"), (200, "200 items (as deployed)"),
                              (100, "100 items")):
        out = subprocess.run([sys.executable, "-m", "bench.market", "--load-child", str(page_items)], env=env,
                             capture_output=True, text=True, timeout=600, check=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
        rows.append([f"memory: snapshot load + 3 reloads in one process, {result['assets']} assets, pages of {label}",
                     f"RSS +{result['rss_growth_mb']:.0f} MB (live pymalloc blocks {result['allocated_blocks_mb']:.0f} MB); "
                     f"CPU per reload {result['reload_cpu_s']:.2f} s",
                     "report", "n/a"])
        print("  " + " | ".join(rows[-1][:2]), flush=True)


class PriceMoves:
    """Call to move every price of the fake CoinGecko and refresh the table from it."""

    def __init__(self, endpoint: str, table: str):
        self._fake = FakeCoinGecko(generate_catalog(10_000))  # the coins load_table loaded
        self._config = Config(DYNAMODB_ENDPOINT_URL=endpoint, DYNAMODB_TABLE_NAME=table, COINGECKO_CALLS_PER_MINUTE=0,
                              PRICE_REFRESH_PAGES=40, PRICE_MAX_AGE_SECONDS=MAX_AGE)
        self.count = 0

    def __enter__(self) -> "PriceMoves":
        self._fake.start()
        self._refresh = build_refresher(self._config.replace(COINGECKO_API_URL=self._fake.url))
        return self

    def __exit__(self, *exc) -> None:
        self._fake.stop()

    def __call__(self) -> None:
        self._fake.tick()
        report = self._refresh()
        if not report.ok:
            raise RuntimeError(f"refresh failed: {report.as_dict()}")
        self.count += 1


def fixed_traffic(url: str, paths: list[str]) -> int:
    """GET every path once from 8 threads; the number of 2xx answers."""
    from concurrent.futures import ThreadPoolExecutor

    def get(path: str) -> int:
        with contextlib.suppress(requests.RequestException):
            return int(requests.get(url + path, timeout=120).ok)
        return 0

    with ThreadPoolExecutor(8) as pool:
        return sum(pool.map(get, paths))


def run(seconds: int, rss_only: bool) -> tuple[list[list[str]], str]:
    load_before = os.getloadavg()[0]
    rows: list[list[str]] = []
    notes: list[str] = []
    check_code_origin()
    from inventory.devtools.dynamodb_local import DynamoDBLocal

    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-market-")))
        ddb = stack.enter_context(DynamoDBLocal())
        large_n = load_table(ddb.endpoint, "bench-10000", 10_000)
        small_n = 0 if rss_only else load_table(ddb.endpoint, "bench-100", 100)
        print(f"tables loaded: {small_n} and {large_n} assets", flush=True)

        def server(name: str, table: str, **extra) -> Server:
            env = {**base_env(), "DYNAMODB_ENDPOINT_URL": ddb.endpoint, "PRICE_MAX_AGE_SECONDS": str(MAX_AGE),
                   "WEB_CONCURRENCY": "2", "DYNAMODB_TABLE_NAME": table, **extra}
            s = Server(name, "wsgi:app", env, workdir)
            stack.callback(s.stop)
            return s.start()

        def measure(label: str, url: str, script: Path, connections: int = 16):
            result = wrk(url, script, connections, seconds)
            print(f"  {label:<40} {result.rps:8.0f} req/s  p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms"
                  f"{errors_note(result)}", flush=True)
            return result

        def prime(s: Server, path: str) -> None:
            # The first snapshot read waits for the 10,000-asset load (seconds on a busy
            # machine): wait for it here, not inside a measured run. One request reaches
            # one worker only: concurrent ones reach every worker, so each loads here.
            requests.get(s.url + path, timeout=300).raise_for_status()
            fixed_traffic(s.url, [path] * 16)

        scripts = workdir / "lua"
        scripts.mkdir()
        plain = lua_script(scripts, "plain")
        large = server("large", "bench-10000")
        large.wait_healthy()
        rss_at_start = large.worker_rss_mb()
        load_pages(rows, ddb.endpoint, "bench-10000")
        if not rss_only:
            small = server("small", "bench-100")
            small.wait_healthy()
            for label, path in (("filtered sorted search page", FILTERED), ("filtered sorted list page", FILTERED_LIST)):
                prime(large, path)
                prime(small, path)
                wrk(large.url + path, plain, 16, 2)
                wrk(small.url + path, plain, 16, 2)
                big, little = [], []
                for _ in range(ROUNDS):
                    big.append(measure(f"{label} ({large_n})", large.url + path, plain))
                    little.append(measure(f"{label} ({small_n})", small.url + path, plain))
                big, little = median_result(big), median_result(little)
                ratio = big.rps / little.rps
                rows.append([f"flatness: {label}, {large_n} / {small_n} assets, c16",
                             f"{ratio:.2f} ({big.rps:.0f} vs {little.rps:.0f} req/s; p99 {fmt_ms(big.p99_ms)} vs "
                             f"{fmt_ms(little.p99_ms)}){errors_note(big, little)}", ">= 0.9", yes(ratio >= 0.9)])
            small.stop()
            for label, path in (("market overview", OVERVIEW), ("market movers 24h, limit 20", MOVERS)):
                prime(large, path)
                wrk(large.url + path, plain, 16, 2)
                r = measure(f"{label} ({large_n})", large.url + path, plain)
                rows.append([f"{label}, {large_n} assets, c16",
                             f"{r.rps:.0f} req/s, p50 {fmt_ms(r.p50_ms)}, p99 {fmt_ms(r.p99_ms)}{errors_note(r)}",
                             "report", "n/a"])
            in_process(rows)

        # Memory: the same fixed traffic (every list page, searches, market reads, 200
        # histories, one detail read of every id) to two servers on the same table, one
        # with glibc's default malloc arenas and one with MALLOC_ARENA_MAX=2 (read by glibc
        # from the environment at start, so every worker has it).
        arenas = server("arenas-2", "bench-10000", MALLOC_ARENA_MAX="2")
        arenas.wait_healthy()
        servers = {"glibc default arenas (as deployed)": large, "MALLOC_ARENA_MAX=2": arenas}
        at_start = {name: s.worker_rss_mb() for name, s in servers.items()}
        at_start["glibc default arenas (as deployed)"] = rss_at_start
        for s in servers.values():
            prime(s, FILTERED)
        ids = all_ids(large.url)
        paths = [
            *["/inventory/assets?limit=50", "/inventory/assets/search?q=co", FILTERED, FILTERED_LIST, OVERVIEW,
              MOVERS, "/inventory/assets/search?q=a&sort=-market_cap,name&limit=100"] * 20,
            *[f"/inventory/assets/{i}/history?interval=1h" for i in ids[:200]],
            *[f"/inventory/assets/{i}" for i in ids],
        ]
        # As in production, prices move while the traffic runs: a refresh with every price
        # changed between quarters of it, so each worker reloads snapshots of new rows.
        refresh = stack.enter_context(PriceMoves(ddb.endpoint, "bench-10000"))
        quarter = -(-len(paths) // 4)
        for s in servers.values():
            all_ids(s.url)  # every list page
        for start in range(0, len(paths), quarter):
            for s in servers.values():
                fixed_traffic(s.url, paths[start:start + quarter])
            if start + quarter < len(paths):
                refresh()
        for name, s in servers.items():
            memory = worker_memory_mb(s)
            rows.append([f"memory: RSS per worker, {large_n} assets, after list/search/market/history/detail "
                         f"traffic and {refresh.count} price refreshes, {name}",
                         ", ".join(f"{rss:.0f} MB" for rss, _, _ in memory)
                         + f" (at start {', '.join(f'{v:.0f}' for v in sorted(at_start[name].values()))} MB)",
                         "< 120 MB", yes(max(rss for rss, _, _ in memory) < 120)])
            rows.append([f"memory: PSS / USS per worker (same moment), {name}",
                         ", ".join(f"{pss:.0f} / {uss:.0f} MB" for _, pss, uss in memory), "report", "n/a"])
        notes.append(f"Memory traffic, the same to both servers: every list page (limit 250), then {len(paths)} "
                     f"requests from 8 threads ({len(paths) - len(ids) - 200} searches/list/market reads, 200 "
                     f"histories, one detail read of each of the {len(ids)} ids) in four quarters, with a price "
                     f"refresh moving every price between quarters ({refresh.count} refreshes); restarts by "
                     f"max_requests: {large.restarts()}.")
        arenas.stop()
        large.stop()
    notes.insert(0, f"Tables loaded by one refresh from the fake CoinGecko; gunicorn with gunicorn.conf.py "
                    f"(gthread, 4 threads, WEB_CONCURRENCY=2), PRICE_REFRESH_ENABLED=false, default caches; "
                    f"wrk -t2 -d{seconds}s, A and B alternate {ROUNDS} times, medians shown; 1-minute load average "
                    f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after (other helpers share the 2 cores). "
                    f"Code: {git_state()}.")
    return rows, " ".join(notes)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5, help="length of each wrk run")
    parser.add_argument("--rss-only", action="store_true", help="only the memory figures (no report written)")
    parser.add_argument("--load-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.load_child is not None:
        _load_child(args.load_child)
        return
    started = time.monotonic()
    rows, notes = run(args.seconds, args.rss_only)
    notes += f" Whole run: {time.monotonic() - started:.0f} s."
    if args.rss_only:
        print("\n".join(" | ".join(r) for r in rows) + "\n" + notes)
        return
    command = ".venv/bin/python -m bench.market" + (f" --seconds {args.seconds}" if args.seconds != 5 else "")
    write_section("Market data: filtered search flatness, overview, movers, worker RSS", command,
                  ["measurement", "measured", "target", "met"], rows, notes)


if __name__ == "__main__":
    main()
