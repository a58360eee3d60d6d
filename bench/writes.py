"""One operator status change: the counts moved inside its transaction vs. a recount after it (the old way).

    .venv/bin/python -m bench.writes          (prints; DynamoDB Local only, no gunicorn)

A status change must cost the same whatever the catalog size: three DynamoDB
calls (read, one transaction with the asset, its audit record and the counts,
read back). A recount reads the whole by_rank index, so its cost grows with
the catalog.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

from inventory.config import Config
from inventory.devtools.dynamodb_local import DynamoDBLocal
from inventory.domain import AssetStatus, utcnow
from inventory.service import CatalogService
from inventory.store import Stores, make_client
from inventory.store.dynamo import count_calls
from inventory.store.migrate import migrate
from tests.conftest import build_asset

MAX_AGE = 300


def measure(endpoint: str, size: int, changes: int) -> list[list[str]]:
    config = Config(DYNAMODB_ENDPOINT_URL=endpoint, DYNAMODB_TABLE_NAME=f"bench-writes-{uuid.uuid4().hex[:8]}")
    client = make_client(config)
    migrate(client, config.DYNAMODB_TABLE_NAME, utcnow())
    stores = Stores.build(client, config)
    stores.assets.create_many([build_asset(f"A{i}", i + 1, price="1", category="defi") for i in range(size)])
    stores.assets.recount(utcnow(), MAX_AGE)
    service = CatalogService(stores, config)
    rows = []
    for label, recount in (("counts ADDed in the transaction", False), ("recount after the change", True)):
        seconds, calls = [], []
        for i in range(changes):
            asset = stores.assets.get(f"A{i}")
            to = AssetStatus.SUSPENDED if asset.status is AssetStatus.ACTIVE else AssetStatus.ACTIVE
            with count_calls(client) as counted:
                started = time.perf_counter()
                service.change_status(asset.asset_id, to, "", asset.version, "bench", "bench")
                if recount:
                    stores.assets.recount(utcnow(), MAX_AGE)
                seconds.append(time.perf_counter() - started)
            calls.append(counted["calls"])
        rows.append([f"{size}", label, f"{statistics.median(seconds) * 1000:.1f} ms", f"{statistics.median(calls):.0f}"])
    client.delete_table(TableName=config.DYNAMODB_TABLE_NAME)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 5000])
    parser.add_argument("--changes", type=int, default=40)
    args = parser.parse_args(argv)
    with DynamoDBLocal() as ddb:
        rows = [row for size in args.sizes for row in measure(ddb.endpoint, size, args.changes)]
    print("| assets | status change | p50 | DynamoDB calls |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
