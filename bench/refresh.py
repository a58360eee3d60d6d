"""Benchmark: price refresh of N assets on DynamoDB Local, batched vs one UpdateItem per asset.

    make bench            (or: .venv/bin/python -m bench.refresh --assets 10000)

Both runs apply the same price changes to identical tables in one process, side
by side, so the machine's noise cancels out in the ratios.
"""

from __future__ import annotations

import argparse

from inventory.config import Config
from inventory.devtools.dynamodb_local import DynamoDBLocal
from inventory.domain import utcnow
from inventory.jobs.refresh import refresh_prices
from inventory.source.client import CoinGeckoClient
from inventory.store import AssetStore, make_client
from inventory.store.dynamo import ConditionFailed, translate_errors
from inventory.store.migrate import migrate
from inventory.store.prices import ApplyResult, PriceStore
from tests.fakes.coingecko import FakeCoinGecko, generate_catalog

from .report import write_section


def _stores(endpoint: str, name: str):
    config = Config(DYNAMODB_ENDPOINT_URL=endpoint, DYNAMODB_TABLE_NAME=name)
    client = make_client(config)
    migrate(client, name, utcnow())
    return AssetStore(client, name), PriceStore(client, name, 30)


def _refresh(cg, store, prices, pages):
    client = CoinGeckoClient(cg.url, calls_per_minute=0)
    return refresh_prices(client, store, prices, pages=pages)


class OneByOnePriceStore(PriceStore):
    """The baseline writer: the same actions, one request each (no transactions)."""

    def apply(self, updates, fence=None):
        result = ApplyResult()
        for update in updates:
            try:
                with translate_errors("UpdateItem"):
                    for action in self._actions(update):
                        if "Update" in action:
                            self.client.update_item(**action["Update"])
                        else:
                            self.client.put_item(**action["Put"])
                result.applied.append(update.asset_id)
            except ConditionFailed:
                result.rejected.append(update.asset_id)
        return result


def run(n: int) -> list[list[str]]:
    pages = -(-n // 250)
    with DynamoDBLocal() as ddb, FakeCoinGecko(generate_catalog(n)) as cg:
        cg.tick()
        ours_store, ours_prices = _stores(ddb.endpoint, "bench-ours")
        naive_store, naive_prices = _stores(ddb.endpoint, "bench-naive")
        naive_prices = OneByOnePriceStore(naive_store.client, naive_store.table_name, 30)
        created = _refresh(cg, ours_store, ours_prices, pages)
        _refresh(cg, naive_store, naive_prices, pages)
        cg.tick()  # every price moves
        # Side by side, alternating, on the same changes.
        changed = _refresh(cg, ours_store, ours_prices, pages)
        naive = _refresh(cg, naive_store, naive_prices, pages)
        unchanged = _refresh(cg, ours_store, ours_prices, pages)
    naive_seconds, naive_calls = naive.duration_seconds, naive.dynamodb_requests
    rows = [
        ["first refresh (creates)", f"{created.created}", f"{created.duration_seconds:.2f}", f"{created.dynamodb_requests}", "", ""],
        ["refresh, every price changed", f"{changed.updated}", f"{changed.duration_seconds:.2f}",
         f"{changed.dynamodb_requests}", f"{naive_seconds / changed.duration_seconds:.1f}x",
         f"{naive_calls / changed.dynamodb_requests:.0f}x"],
        ["refresh, nothing changed", f"{unchanged.unchanged}", f"{unchanged.duration_seconds:.2f}", f"{unchanged.dynamodb_requests}", "", ""],
        ["baseline: same refresh, one UpdateItem + PutItem per asset", f"{changed.updated}", f"{naive_seconds:.2f}", f"{naive_calls}", "1.0x", "1x"],
    ]
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assets", type=int, default=10_000)
    args = parser.parse_args(argv)
    rows = run(args.assets)
    header = ["run", "assets", "wall s", "DynamoDB requests", "speed-up vs baseline", "fewer requests vs baseline"]
    write_section(
        f"Price refresh of {args.assets} assets (DynamoDB Local, fake CoinGecko)",
        f".venv/bin/python -m bench.refresh --assets {args.assets}",
        header,
        rows,
        "Target (issue 3): at most N/20 + a few DynamoDB requests per refresh. "
        "The price fetch (40 pages from the local fake) is included in wall time.",
    )


if __name__ == "__main__":
    main()
