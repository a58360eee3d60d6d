"""Price refreshes at size, and raced against operators, on DynamoDB Local."""

from __future__ import annotations

import random
import threading

import pytest

from inventory.domain import AssetStatus, utcnow
from inventory.jobs.refresh import refresh_prices
from inventory.source.client import CoinGeckoClient
from inventory.store.prices import PriceStore
from tests.fakes.coingecko import FakeCoinGecko, generate_catalog

pytestmark = pytest.mark.integration


@pytest.fixture
def prices(local_store, local_config):
    return PriceStore(local_store.client, local_config.DYNAMODB_TABLE_NAME, history_days=30)


def refresh(cg, store, prices, pages):
    client = CoinGeckoClient(cg.url, calls_per_minute=0, retries=1, backoff=0.01)
    return refresh_prices(client, store, prices, pages=pages)


def test_refresh_of_many_assets_costs_about_n_over_20_requests(local_store, prices):
    with FakeCoinGecko(generate_catalog(1000)) as cg:
        first = refresh(cg, local_store, prices, pages=4)
        n = first.created
        assert first.ok and n > 950
        assert first.dynamodb_requests <= n / 20 + 10
        cg.tick()
        second = refresh(cg, local_store, prices, pages=4)
    assert second.ok and second.updated == n
    assert second.dynamodb_requests <= n / 20 + 10
    expected = {row["id"]: row["current_price"] for row in cg.coins}
    assert all(a.current_price == expected[a.coingecko_id] for a in local_store.iter_all())


def test_status_changes_racing_refreshes_are_never_lost(local_store, prices):
    # GIVEN a priced catalog of 300 assets
    with FakeCoinGecko(generate_catalog(300)) as cg:
        assert refresh(cg, local_store, prices, pages=2).ok
        ids = [a.asset_id for a in local_store.iter_all()]
        decided: dict[str, AssetStatus] = {}
        stop = threading.Event()

        def operator():
            rng = random.Random(7)
            while not stop.is_set():
                asset_id = rng.choice(ids)
                status = rng.choice(list(AssetStatus))
                local_store.update_fields(asset_id, {"status": status}, utcnow())
                decided[asset_id] = status

        # WHEN an operator keeps changing statuses while five refreshes run
        worker = threading.Thread(target=operator)
        worker.start()
        try:
            for _ in range(5):
                cg.tick()
                assert refresh(cg, local_store, prices, pages=2).ok
        finally:
            stop.set()
            worker.join()

    # THEN every asset has the status the operator set last, and the latest prices
    stored = {a.asset_id: a for a in local_store.iter_all()}
    assert len(decided) > 20
    for asset_id, status in decided.items():
        assert stored[asset_id].status is status
    expected = {row["id"]: row["current_price"] for row in cg.coins}
    assert all(a.current_price == expected[a.coingecko_id] for a in stored.values())
