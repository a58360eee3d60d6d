"""sparkline_7d: hourly closes of our own price points, kept on the asset, served on detail and on request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import simplejson

from inventory.domain import PricePoint
from inventory.jobs.sparklines import POINTS, refresh_sparklines
from inventory.store import PriceStore
from tests.conftest import build_asset

NOW = datetime(2026, 3, 10, 12, 20, tzinfo=UTC)


def record(prices: PriceStore, asset_id: str, start: datetime, hours: int, per_hour: int = 3) -> None:
    """`per_hour` points each hour from `start`; the price is 100 + the hour's index + the point's share."""
    points = [PricePoint(start + timedelta(hours=h, minutes=20 * n), Decimal(100 + h) + Decimal(n) / 10)
              for h in range(hours) for n in range(per_hour)]
    prices.record_points(asset_id, points, start)


def test_the_sparkline_is_each_finished_hours_close_and_a_run_adds_only_new_hours(store, moto_client, config,
                                                                                  add_assets):
    add_assets(build_asset("BTC", 1, price="100"), build_asset("ETH", 2, price="10"))
    prices = PriceStore(moto_client, config.DYNAMODB_TABLE_NAME, 30, 1)
    first_hour = NOW.replace(minute=0) - timedelta(hours=5)
    record(prices, "BTC", first_hour, 6)  # 5 finished hours, and the hour now running

    assert refresh_sparklines(store, prices, NOW) == 1  # ETH has no points: left alone
    btc = store.get("BTC")
    # Each finished hour's last point (n = 2); the running hour is not in it yet.
    assert btc.sparkline_7d == tuple(Decimal(100 + h) + Decimal("0.2") for h in range(5))
    assert btc.sparkline_until == NOW.replace(minute=0)
    assert store.get("ETH").sparkline_7d == ()

    # The same hour again: nothing new, nothing written
    assert refresh_sparklines(store, prices, NOW + timedelta(minutes=30)) == 0
    # An hour later: the hour that was running is appended, once
    assert refresh_sparklines(store, prices, NOW + timedelta(hours=1)) == 1
    assert store.get("BTC").sparkline_7d == tuple(Decimal(100 + h) + Decimal("0.2") for h in range(6))


def test_the_sparkline_keeps_seven_days_of_hours(store, moto_client, config, add_assets):
    add_assets(build_asset("BTC", 1, price="100"))
    prices = PriceStore(moto_client, config.DYNAMODB_TABLE_NAME, 30, 1)
    record(prices, "BTC", NOW.replace(minute=0) - timedelta(days=9), 9 * 24, per_hour=1)  # a backfill: hourly

    refresh_sparklines(store, prices, NOW)

    line = store.get("BTC").sparkline_7d
    assert len(line) == POINTS == 168
    assert line[-1] == Decimal(100 + 9 * 24 - 1) and line[0] == Decimal(100 + 9 * 24 - 168)


def test_detail_carries_the_sparkline_and_pages_only_when_asked(client, store, moto_client, config, add_assets):
    add_assets(build_asset("BTC", 1, price="100"), build_asset("ETH", 2, price="10"))
    prices = PriceStore(moto_client, config.DYNAMODB_TABLE_NAME, 30, 1)
    record(prices, "BTC", NOW.replace(minute=0) - timedelta(hours=3), 3)
    refresh_sparklines(store, prices, NOW)

    def data(path):
        response = client.get(path)
        assert response.status_code == 200, response.get_data(as_text=True)
        return simplejson.loads(response.get_data(as_text=True), use_decimal=True)["data"]

    assert data("/inventory/assets/BTC")["sparkline_7d"] == {"price": [Decimal("100.2"), Decimal("101.2"),
                                                                       Decimal("102.2")]}
    assert data("/inventory/assets/ETH")["sparkline_7d"] == {"price": []}
    for path in ("/inventory/assets?tradable=false", "/inventory/assets/search?limit=50"):
        assert all("sparkline_7d" not in item for item in data(path))
        asked = {item["asset_id"]: item["sparkline_7d"]["price"] for item in data(path + "&sparkline=true")}
        assert asked == {"BTC": [Decimal("100.2"), Decimal("101.2"), Decimal("102.2")], "ETH": []}
