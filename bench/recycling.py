"""Worker memory over ~100k requests per worker: is there a leak that max_requests must cap?

    .venv/bin/python -m bench.recycling [--requests 100000] [--assets 2000]

One gunicorn worker (gthread, 4 threads, MAX_REQUESTS=0: never recycled) on
DynamoDB Local, the table loaded by one refresh from the local fake CoinGecko
(which also answers the health ping). wrk drives a mix that touches every
cache and code path a day brings: detail reads over every id (misses, then
hits, then misses again each CACHE_TTL), list pages with cursors, searches,
unknown ids (404), bad parameters (422) and /health/detailed. Worker RSS is
read after each slice of wrk; after a warm-up pass a leak shows as a steady
slope, a bounded cache as a plateau.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

import requests

from inventory.devtools.dynamodb_local import DynamoDBLocal
from tests.fakes.coingecko import FakeCoinGecko, generate_catalog

from .http import (
    MAX_AGE,
    Server,
    all_ids,
    base_env,
    check_code_origin,
    load_table,
    lua_script,
    wrk,
)
from .report import write_section

SLICE_SECONDS = 10


def mix(ids: list[str]) -> list[str]:
    """Request paths in rotation: every id once, with lists, searches, 404s, 422s and health between."""
    extras = [
        "/inventory/assets?limit=50",
        "/inventory/assets?limit=20&active_only=false",
        "/inventory/assets/search?q=co",
        "/inventory/assets/search?q=bt&sort=price&order=desc",
        "/inventory/assets/NOPE1",
        "/inventory/assets?limt=5",
        "/health/detailed",
        "/inventory/assets/BTC/history",
    ]
    paths = []
    for index, asset_id in enumerate(ids):
        paths.append(f"/inventory/assets/{asset_id}")
        if index % 4 == 0:
            paths.append(extras[(index // 4) % len(extras)])
    return paths


def run(total: int, assets: int) -> tuple[list[list[str]], str]:
    check_code_origin()
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-recycling-")))
        ddb = stack.enter_context(DynamoDBLocal())
        loaded = load_table(ddb.endpoint, "bench-recycling", assets)
        source = stack.enter_context(FakeCoinGecko(generate_catalog(10)))
        env = {**base_env(), "DYNAMODB_ENDPOINT_URL": ddb.endpoint, "DYNAMODB_TABLE_NAME": "bench-recycling",
               "PRICE_MAX_AGE_SECONDS": str(MAX_AGE), "WEB_CONCURRENCY": "1", "MAX_REQUESTS": "0",
               "COINGECKO_API_URL": source.url}
        server = Server("recycling", "wsgi:app", env, workdir)
        stack.callback(server.stop)
        server.start().wait_healthy()
        requests.get(server.url + "/health/detailed", timeout=30)
        ids = all_ids(server.url)
        script = lua_script(workdir, "mix", mix(ids))
        [pid] = server.worker_pids()
        samples = [(0, server.worker_rss_mb()[pid])]
        served, errors, started = 0, 0, time.monotonic()
        while served < total:
            result = wrk(server.url, script, connections=8, seconds=SLICE_SECONDS)
            served += result.requests
            errors += sum(v for k, v in result.errors.items() if k != "status")
            rss = server.worker_rss_mb()
            if pid not in rss:
                raise RuntimeError("the worker was replaced during the run")
            samples.append((served, rss[pid]))
            print(f"  {served:>7} requests  RSS {rss[pid]:6.1f} MB  ({result.rps:.0f} req/s)", flush=True)
        elapsed = time.monotonic() - started
        restarts = server.restarts()

    # The first quarter warms the caches (snapshot, responses, every id once); judge growth after it.
    warm = next(s for s in samples if s[0] >= total // 4)
    after = [s for s in samples if s[0] >= warm[0]]
    slope = (after[-1][1] - warm[1]) / max(1, after[-1][0] - warm[0]) * 10_000
    steps = [b[1] - a[1] for a, b in zip(after, after[1:])]
    # One row per 10k requests: the first sample at or past each mark, and the last.
    shown = [samples[0]] + [next(s for s in samples if s[0] >= mark) for mark in range(10_000, samples[-1][0] + 1, 10_000)]
    shown = list(dict.fromkeys(shown + [samples[-1]]))
    rows = [[f"{n:,}", f"{rss:.1f}"] for n, rss in shown]
    notes = (
        f"{loaded} assets; one gthread worker (4 threads), MAX_REQUESTS=0, wrk -c8 in {SLICE_SECONDS} s slices; "
        f"{samples[-1][0]:,} requests in {elapsed:.0f} s ({samples[-1][0] / elapsed:.0f} req/s), "
        f"{errors} socket errors, {restarts} worker restarts. "
        f"RSS after warm-up ({warm[0]:,} requests): {warm[1]:.1f} MB; at the end {after[-1][1]:.1f} MB; "
        f"growth after warm-up {slope:+.2f} MB per 10k requests "
        f"(median step between slices {statistics.median(steps) if steps else 0:+.2f} MB)."
    )
    return rows, notes


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=100_000, help="requests for the one worker")
    parser.add_argument("--assets", type=int, default=2000)
    args = parser.parse_args(argv)
    rows, notes = run(args.requests, args.assets)
    write_section(
        "Worker memory over 100k requests (max_requests)",
        f".venv/bin/python -m bench.recycling --requests {args.requests} --assets {args.assets}",
        ["requests served", "worker RSS (MB)"],
        rows,
        notes,
    )


if __name__ == "__main__":
    main()
