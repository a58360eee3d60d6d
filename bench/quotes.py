"""A 100-asset quote, its verification, and a 1,000-holding valuation through the app (Flask test client, DynamoDB Local).

    .venv/bin/python -m bench.quotes          (prints; no gunicorn, one process)

A quote is one strongly consistent BatchGetItem; verifying is an HMAC (no
store call); a valuation reads the catalog snapshot (no store call once the
snapshot is loaded).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
import uuid

from inventory import create_app
from inventory.config import Config
from inventory.devtools.dynamodb_local import DynamoDBLocal
from inventory.domain import utcnow
from inventory.store import Stores, make_client
from inventory.store.dynamo import count_calls
from inventory.store.migrate import migrate
from tests.conftest import build_asset


def _timed(client, dynamodb, runs: int, call) -> tuple[float, float, float]:
    seconds, calls = [], []
    for _ in range(runs):
        with count_calls(dynamodb) as counted:
            started = time.perf_counter()
            response = call()
            seconds.append(time.perf_counter() - started)
        assert response.status_code == 200, response.data
        calls.append(counted["calls"])
    ordered = sorted(seconds)
    return statistics.median(seconds) * 1000, ordered[int(len(ordered) * 0.95) - 1] * 1000, statistics.median(calls)


def measure(endpoint: str, catalog: int, runs: int) -> list[list[str]]:
    config = Config(DYNAMODB_ENDPOINT_URL=endpoint, DYNAMODB_TABLE_NAME=f"bench-quotes-{uuid.uuid4().hex[:8]}",
                    QUOTE_SIGNING_KEY="bench-key", LOG_LEVEL="WARNING", RATE_LIMIT_READS="1000000/minute")
    dynamodb = make_client(config)
    migrate(dynamodb, config.DYNAMODB_TABLE_NAME, utcnow())
    stores = Stores.build(dynamodb, config)
    stores.assets.create_many([build_asset(f"A{i}", i + 1, price="1234.5678") for i in range(catalog)])
    client = create_app(config, dynamodb_client=dynamodb).test_client()
    logging.getLogger("inventory.request").setLevel(logging.WARNING)

    items = [{"asset_id": f"A{i}", "quantity": "1.25"} for i in range(100)]
    holdings = [{"asset_id": f"A{i}", "quantity": "0.333"} for i in range(1000)]
    quote_id = client.post("/inventory/quotes", json={"items": items}).get_json()["quote_id"]
    client.post("/inventory/valuations", json={"holdings": holdings[:1]})  # loads the snapshot
    rows = []
    for label, call in (
        ("POST /inventory/quotes, 100 assets", lambda: client.post("/inventory/quotes", json={"items": items})),
        ("GET /inventory/quotes/{id}, 100 assets", lambda: client.get(f"/inventory/quotes/{quote_id}")),
        ("POST /inventory/valuations, 1,000 holdings",
         lambda: client.post("/inventory/valuations", json={"holdings": holdings})),
    ):
        p50, p95, calls = _timed(client, dynamodb, runs, call)
        rows.append([label, f"{p50:.1f} ms", f"{p95:.1f} ms", f"{calls:.0f}"])
    rows.append(["quote_id length, 100 assets", f"{len(quote_id)} chars", "", ""])
    dynamodb.delete_table(TableName=config.DYNAMODB_TABLE_NAME)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--catalog", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args(argv)
    with DynamoDBLocal() as ddb:
        rows = measure(ddb.endpoint, args.catalog, args.runs)
    print(f"| request (catalog of {args.catalog}) | p50 | p95 | DynamoDB calls |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
