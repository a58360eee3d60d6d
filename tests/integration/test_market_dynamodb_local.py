"""Market data over DynamoDB Local and the CoinGecko emulator: overview, movers, filtered walks, CSV export."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
import simplejson

from inventory import create_app
from inventory.jobs.refresh import refresh_prices
from inventory.store.prices import PriceStore
from tests.integration.test_categories_dynamodb_local import seeded  # noqa: F401  (the priced seed catalog)

pytestmark = pytest.mark.integration


@pytest.fixture
def web(seeded, local_config):  # noqa: F811
    app = create_app(local_config)
    app.config["TESTING"] = True
    return app


def body(response):
    assert response.status_code == 200, response.get_data(as_text=True)
    return simplejson.loads(response.get_data(), use_decimal=True)


def walk(client, query: str, limit: int, between=lambda: None) -> list[dict]:
    rows, cursor = [], None
    while True:
        payload = body(client.get(f"{query}&limit={limit}" + (f"&cursor={cursor}" if cursor else "")))
        rows += payload["data"]
        cursor = payload["next_cursor"]
        if cursor is None:
            return rows
        between()


def test_overview_totals_equal_the_listed_rows_exactly(web):
    client = web.test_client()
    overview = body(client.get("/inventory/market/overview"))["data"]
    rows = walk(client, "/inventory/assets?active_only=false", 100)
    assert overview["asset_count"] == len(rows) > 200
    caps = [r["market_cap"] for r in rows if r["market_cap"] is not None]
    assert overview["total_market_cap"] == sum(caps, Decimal(0))
    assert overview["tradable_count"] == sum(r["is_active"] for r in rows)
    assert overview["advancers"] + overview["decliners"] + overview["unchanged"] <= len(rows)


def test_movers_are_tradable_above_the_dust_floor_and_ordered(web):
    client = web.test_client()
    movers = body(client.get("/inventory/market/movers?window=24h&limit=5"))["data"]
    gainers, losers = movers["gainers"], movers["losers"]
    assert gainers and losers
    changes = [a["change"] for a in gainers]
    assert changes == sorted(changes, reverse=True)
    assert all(a["change"] > 0 for a in gainers) and all(a["change"] < 0 for a in losers)
    for asset in gainers + losers:
        assert asset["market_cap"] >= movers["min_market_cap"] and asset["volume_24h"] >= movers["min_volume_24h"]
        detail = body(client.get(f"/inventory/assets/{asset['asset_id']}"))["data"]
        assert detail["is_active"] and detail["price_change_percentage_24h"] == asset["change"]


def test_a_filtered_sorted_walk_neither_repeats_nor_skips_while_prices_move(web, seeded, local_store, local_config):  # noqa: F811
    cg, source, _ = seeded
    client = web.test_client()
    query = "/inventory/assets/search?sort=-price,name&min_market_cap=1000000&tradable=true"
    expected = {r["asset_id"] for r in walk(client, query, 250)}
    prices = PriceStore(local_store.client, local_config.DYNAMODB_TABLE_NAME, history_days=30)
    seen_prices = []

    def move():
        # Every price moves and is stored between two pages, and the app sees it.
        cg.tick()
        assert refresh_prices(source, local_store, prices, pages=2).ok
        seen_prices.append(body(client.get("/inventory/assets/BTC"))["data"]["price_usd"])

    rows = walk(client, query, 25, move)
    ids = [r["asset_id"] for r in rows]
    assert len(ids) == len(set(ids)), "a page repeated an asset"
    assert set(ids) == expected, "a page skipped an asset"
    assert len(set(seen_prices)) > 1, "prices did not move during the walk"


def test_export_streams_every_filtered_row_with_exact_values(web):
    client = web.test_client()
    listed = walk(client, "/inventory/assets/search?category=layer-1&sort=rank", 100)
    response = client.get("/inventory/assets/export?format=csv&category=layer-1&sort=rank")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    table = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["asset_id"] for r in table] == [r["asset_id"] for r in listed]
    by_id = {r["asset_id"]: r for r in listed}
    for row in table:
        price = by_id[row["asset_id"]]["price_usd"]
        assert (row["current_price"] or None) == (None if price is None else str(price))
    assert any(row["current_price"] for row in table)
