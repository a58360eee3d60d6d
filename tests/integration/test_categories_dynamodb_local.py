"""The category membership job against DynamoDB Local and the CoinGecko emulator, and the endpoints over it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from inventory import create_app
from inventory.domain import utcnow
from inventory.domain.taxonomy import UNCATEGORIZED
from inventory.jobs.categories import refresh_categories
from inventory.jobs.refresh import refresh_prices
from inventory.jobs.seed import bundled_rows, sync_catalog
from inventory.source.client import CoinGeckoClient
from inventory.store import CategoryStore
from inventory.store.dynamo import count_calls
from inventory.store.prices import PriceStore
from tests.fakes.coingecko import FakeCoinGecko, generate_catalog

pytestmark = pytest.mark.integration


@pytest.fixture
def seeded(local_store, local_config):
    """The seed catalog, priced by one refresh from an emulator serving the same coins and 150 more."""
    rows = bundled_rows()
    sync_catalog(rows, local_store, utcnow())
    base = [{"id": r["id"], "symbol": r["symbol"], "name": r["name"], "market_cap_rank": r["market_cap_rank"]}
            for r in rows]
    with FakeCoinGecko(generate_catalog(len(rows) + 150, base=base)) as cg:
        client = CoinGeckoClient(cg.url, calls_per_minute=0, retries=1, backoff=0.01)
        prices = PriceStore(local_store.client, local_config.DYNAMODB_TABLE_NAME, history_days=30)
        assert refresh_prices(client, local_store, prices, pages=2).ok
        yield cg, client, {r["id"]: tuple(r["categories"]) for r in rows}


def run(client, local_store, local_config):
    categories = CategoryStore(local_store.client, local_config.DYNAMODB_TABLE_NAME)
    with count_calls(local_store.client) as calls:
        report = refresh_categories(client, categories, utcnow(), max_pages=4)
    return report, calls["calls"], categories


def test_the_job_gives_the_source_membership_and_a_rerun_writes_nothing(seeded, local_store, local_config):
    cg, client, labels = seeded
    first, _, _ = run(client, local_store, local_config)
    assert first.error is None and first.raced == 0 and first.missing == []
    assets = list(local_store.iter_all())
    # The emulator lists the seeded coins in the CoinGecko categories of their hand labels.
    for asset in assets:
        if asset.coingecko_id in labels:
            assert asset.categories == labels[asset.coingecko_id], asset.asset_id
        assert asset.category == asset.categories[0]
    assert any(a.categories == (UNCATEGORIZED,) for a in assets)
    # A rerun reads the catalog and records the run: no asset write.
    second, dynamodb_calls, _ = run(client, local_store, local_config)
    assert (second.changed, second.unchanged) == (0, len(assets))
    assert dynamodb_calls <= 3 + len(assets) // 100


def test_an_operator_choice_survives_the_job_and_the_endpoints_sum_the_rows(seeded, local_store, local_config):
    cg, client, _ = seeded
    _, _, categories = run(client, local_store, local_config)
    btc = local_store.get("BTC")
    categories.set_by_operator(btc, ("other", "layer-1"), "ops", "pinned", "req-1", utcnow())
    cg.set_categories("bitcoin", ["meme-token"])
    cg.set_categories("ethereum", ["layer-1", "privacy-coins"])
    report, _, _ = run(client, local_store, local_config)
    assert (report.changed, report.operator_set) == (1, 1)
    assert local_store.get("BTC").categories == ("other", "layer-1")
    assert local_store.get("ETH").categories == ("privacy", "layer-1")

    app = create_app(local_config)
    web = app.test_client()
    rows = web.get("/inventory/assets?active_only=false&limit=250").get_json()["data"]
    assert len(rows) < 250  # one page holds the catalog
    for summary in web.get("/inventory/categories").get_json()["data"]:
        members = [r for r in rows if summary["slug"] in r["categories"]]
        assert summary["asset_count"] == len(members)
        assert summary["market_cap"] == sum((r["market_cap"] or Decimal(0) for r in members), Decimal(0))
    top = web.get("/inventory/categories/layer-1?limit=3").get_json()["data"]["top_assets"]
    assert [a["asset_id"] for a in top][:2] == ["BTC", "ETH"]
