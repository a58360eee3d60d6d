"""A CoinGecko 429 storm with the second source up: do BTC and ETH stay fresh, and quotes go on?

    .venv/bin/python -m bench.outage --storm 600 --check 10 --refresh 10      (10 minutes)

Runs gunicorn (refresher beside the master) on DynamoDB Local against the CoinGecko and
Binance fakes (prices walking every second). After a calm minute CoinGecko answers every
call with 429 for `--storm` seconds, then recovers. Every second BTC and ETH are read and
quoted. Reports the 5xx count, the oldest price served during the storm against the
bound (2 x CROSSCHECK_INTERVAL_SECONDS), the quotes issued, when CoinGecko was primary
again, and each source's calls per hour against its published limit.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import requests

from inventory.devtools.binance import FakeBinance
from inventory.devtools.coingecko import FakeCoinGecko, generate_catalog
from inventory.devtools.dynamodb_local import DynamoDBLocal, free_port
from inventory.source.exchange import BINANCE_WEIGHT_PER_MINUTE, TICKER_PRICE_WEIGHT

from .report import write_section

REPO = Path(__file__).resolve().parent.parent


def wait_for(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (requests.RequestException, KeyError, ValueError):
            pass  # not serving yet, or BTC not refreshed in yet
        time.sleep(0.5)
    raise SystemExit("bench.outage: the service did not get ready")


def sample(url: str) -> dict:
    row = {"statuses": [], "ages": {}, "sources": {}}
    for asset_id in ("BTC", "ETH"):
        response = requests.get(f"{url}/inventory/assets/{asset_id}", timeout=10)
        row["statuses"].append(response.status_code)
        if response.status_code == 200:
            body = response.json()["data"]
            at = datetime.fromisoformat(body["last_updated"])
            row["ages"][asset_id] = (datetime.now(timezone.utc) - at).total_seconds()
            row["sources"][asset_id] = body["price_source"]
    quote = requests.post(f"{url}/inventory/quotes", json={"items": [{"asset_id": "BTC"}, {"asset_id": "ETH"}]},
                          timeout=10)
    row["statuses"].append(quote.status_code)
    row["quoted"] = quote.status_code == 200
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.outage")
    parser.add_argument("--storm", type=float, default=600, help="seconds of 429 from CoinGecko")
    parser.add_argument("--calm", type=float, default=60, help="seconds before and after the storm")
    parser.add_argument("--refresh", type=int, default=10, help="PRICE_REFRESH_INTERVAL_SECONDS")
    parser.add_argument("--check", type=int, default=10, help="CROSSCHECK_INTERVAL_SECONDS")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="bench-outage-"))
    store = DynamoDBLocal(port=free_port()).start()
    cg = FakeCoinGecko(generate_catalog(100), tick_seconds=1).start()
    bn = FakeBinance(cg).start()
    env = {
        **os.environ,
        "DYNAMODB_ENDPOINT_URL": store.endpoint,
        "DYNAMODB_TABLE_NAME": f"bench-outage-{uuid.uuid4().hex[:8]}",
        "COINGECKO_API_URL": cg.url,
        "BINANCE_API_URL": bn.url,
        "CROSSCHECK_ENABLED": "1",
        "PRICE_REFRESH_INTERVAL_SECONDS": str(args.refresh),
        "CROSSCHECK_INTERVAL_SECONDS": str(args.check),
        "CATEGORY_REFRESH_HOURS": "0",
        "HEALTH_TOP_ASSETS": "BTC,ETH",
        "BIND": f"127.0.0.1:{free_port()}",
        "WEB_CONCURRENCY": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics"),
    }
    (workdir / "metrics").mkdir()
    url = "http://" + env["BIND"]
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "migrate"], env=env, cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL)
    with open(workdir / "gunicorn.log", "wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
                                  cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: requests.get(f"{url}/inventory/assets/BTC", timeout=5).json()["data"]["price_check"][
            "status"] == "ok", 120)
        cg.reset_log()
        bn.reset_log()
        began = time.monotonic()
        phases = {"before": [], "storm": [], "after": []}
        back_after = None
        for phase, seconds in (("before", args.calm), ("storm", args.storm), ("after", args.calm)):
            if phase == "storm":
                cg.set_fault("429", retry_after=30)
                storm_began = time.monotonic()
            if phase == "after":
                cg.set_fault(None)
                recovered = time.monotonic()
            ends = time.monotonic() + seconds
            while time.monotonic() < ends:
                row = sample(url)
                phases[phase].append(row)
                if phase == "after" and back_after is None and set(row["sources"].values()) == {"coingecko"}:
                    back_after = time.monotonic() - recovered
                time.sleep(1)
        elapsed = time.monotonic() - began
        storm_seconds = time.monotonic() - storm_began - args.calm
        markets, tickers = cg.count("/coins/markets"), bn.count("/ticker/price")
    finally:
        server.terminate()
        server.wait(30)
        bn.stop()
        cg.stop()
        store.stop()

    storm = phases["storm"]
    every = [s for rows in phases.values() for row in rows for s in row["statuses"]]
    ages = [age for row in storm for age in row["ages"].values()]
    stood_in = sum(1 for row in storm if set(row["sources"].values()) == {"binance"})
    bound = 2 * args.check
    per_hour = 3600 / elapsed
    rows = [
        ["samples (BTC + ETH read, one quote of both)", f"{sum(len(r) for r in phases.values())}"],
        ["responses 5xx", f"{sum(1 for s in every if s >= 500)} of {len(every)}"],
        ["storm: oldest BTC/ETH price served", f"{max(ages):.1f} s (bound 2 x {args.check} = {bound} s)"],
        ["storm: samples with both priced by binance", f"{stood_in} of {len(storm)}"],
        ["storm: quotes issued", f"{sum(1 for r in storm if r['quoted'])} of {len(storm)}"],
        ["after: coingecko primary again within", f"{back_after:.1f} s" if back_after is not None else "never"],
        ["coingecko /coins/markets calls per hour", f"{markets * per_hour:.0f} (429s included)"],
        ["binance /ticker/price calls per hour", f"{tickers * per_hour:.0f} = weight {tickers * per_hour * TICKER_PRICE_WEIGHT:.0f}"
         f" of {BINANCE_WEIGHT_PER_MINUTE * 60} an hour ({tickers * per_hour * TICKER_PRICE_WEIGHT / (BINANCE_WEIGHT_PER_MINUTE * 60):.2%})"],
    ]
    write_section(
        "CoinGecko 429 storm with the second source up (bench.outage)",
        f".venv/bin/python -m bench.outage --storm {args.storm:.0f} --check {args.check} --refresh {args.refresh}",
        ["measure", "value"], rows,
        notes=(f"gunicorn, 2 workers, DynamoDB Local, 100 coins walking every second; {args.calm:.0f} s calm, "
               f"{storm_seconds:.0f} s of 429 (Retry-After: 30), {args.calm:.0f} s after. Quotes refuse a stale "
               "or diverged price, so every issued quote was a fresh, checked or marked price."),
    )


if __name__ == "__main__":
    main()
