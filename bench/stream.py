"""Live stream benchmark: N SSE clients on the stream role, price moves committed to DynamoDB Local.

    .venv/bin/python -m bench.stream --clients 500 --rounds 5

Reports: every client got every update with consecutive asset_seq (no gap), the
commit-to-client delay (p50/p99, from the feed entry's commit time to the
client's read), and the stream worker's memory per open connection.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import requests

from inventory.config import Config
from inventory.devtools.dynamodb_local import DynamoDBLocal, free_port
from inventory.store import AssetStore, make_client
from inventory.store.migrate import migrate
from inventory.store.prices import PriceStore, PriceUpdate
from tests.conftest import build_asset
from tests.e2e.conftest import _stop, start_gunicorn

ASSETS = ["BTC", "ETH", "SOL", "XRP", "ADA"]


def _reader(url: str, received: list, ready: threading.Event, stop: threading.Event) -> None:
    with requests.get(url, stream=True, timeout=60) as response:
        for line in response.iter_lines(decode_unicode=True):
            if line.startswith("data:"):
                message = json.loads(line[5:])
                if message["type"] == "snapshot":
                    ready.set()
                else:
                    received.append((time.time(), message))
            if stop.is_set():
                return


def _rss_kb(pid: int) -> int:
    total = 0
    for child in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split():
        for line in Path(f"/proc/{child}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def run(clients: int, rounds: int) -> dict:
    with DynamoDBLocal() as local:
        table = f"bench-stream-{uuid.uuid4().hex[:8]}"
        config = Config(DYNAMODB_ENDPOINT_URL=local.endpoint, DYNAMODB_TABLE_NAME=table)
        client = make_client(config)
        migrate(client, table, datetime.now(timezone.utc))
        store = AssetStore(client, table)
        start = datetime.now(timezone.utc)
        for rank, asset_id in enumerate(ASSETS, 1):
            store.create(build_asset(asset_id, rank, price="100", now=start))
        env = {**os.environ, "DYNAMODB_ENDPOINT_URL": local.endpoint, "DYNAMODB_TABLE_NAME": table,
               "STREAM_ROLE": "1", "BIND": f"127.0.0.1:{free_port()}", "STREAM_MAX_CONNECTIONS": str(clients + 10),
               "STREAM_MAX_PER_CLIENT": str(clients + 10), "GUNICORN_CMD_ARGS": "--no-control-socket",
               "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="bench-stream-")}
        process, url = start_gunicorn(env, Path(tempfile.mkdtemp()) / "gunicorn.log")
        try:
            requests.get(f"{url}/inventory/assets/stream?assets=BTC", stream=True, timeout=30).close()  # warm the hub
            time.sleep(1)
            idle_kb = _rss_kb(process.pid)
            stop = threading.Event()
            inboxes = [[] for _ in range(clients)]
            readies = [threading.Event() for _ in range(clients)]
            for inbox, ready in zip(inboxes, readies):
                threading.Thread(target=_reader, args=(f"{url}/inventory/assets/stream", inbox, ready, stop),
                                 daemon=True).start()
            for ready in readies:
                ready.wait(60)
            connected = sum(r.is_set() for r in readies)
            open_kb = _rss_kb(process.pid)
            prices = PriceStore(client, table, 30, 1)
            commits = {}
            for n in range(1, rounds + 1):
                at = start + timedelta(seconds=n)
                updates = [PriceUpdate(a, {"current_price": Decimal(100 + n), "last_price_update": at}, at,
                                       {"price": Decimal(100 + n)}, stream_seq=n - 1) for a in ASSETS]
                assert len(prices.apply(updates).applied) == len(ASSETS)
                commits[n] = time.time()
                time.sleep(1)
            time.sleep(2)
            stop.set()
            expected = rounds * len(ASSETS)
            complete = no_gap = 0
            delays = []
            for inbox in inboxes:
                by_asset = {}
                for when, message in inbox:
                    by_asset.setdefault(message["asset_id"], []).append(message["asset_seq"])
                    delays.append(when - commits[message["asset_seq"]])
                complete += len(inbox) == expected
                no_gap += all(seqs == list(range(1, rounds + 1)) for seqs in by_asset.values())
            delays.sort()
            pick = lambda q: round(delays[min(len(delays) - 1, int(q * len(delays)))] * 1000) if delays else None  # noqa: E731
            return {"clients": clients, "connected": connected, "updates_per_client": expected,
                    "clients_with_every_update": complete, "clients_without_gap": no_gap,
                    "delay_ms_p50": pick(0.5), "delay_ms_p99": pick(0.99),
                    "rss_kb_per_connection": round((open_kb - idle_kb) / max(connected, 1), 1)}
        finally:
            _stop(process)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.clients, args.rounds)))


if __name__ == "__main__":
    sys.exit(main())
