"""backfill-history on DynamoDB Local: every finished day it covered gets daily candles and a day report."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import simplejson

from inventory import create_app
from inventory.domain.history import day_start
from inventory.store import CandleStore, make_client
from tests.conftest import build_asset
from tests.fakes.coingecko import FakeCoinGecko, generate_catalog

pytestmark = pytest.mark.integration


def body(response):
    return simplejson.loads(response.get_data(), use_decimal=True)


def test_a_30_day_backfill_rolls_up_every_finished_day_once(local_store, local_config):
    client, table = make_client(local_config), local_config.DYNAMODB_TABLE_NAME
    candles = CandleStore(client, table)
    with FakeCoinGecko(generate_catalog(20)) as cg:
        btc, eth = cg.coins[0], cg.coins[1]
        assert local_store.create(build_asset("BTC", 1, price="100").replace(coingecko_id=btc["id"]))
        assert local_store.create(build_asset("ETH", 2, price="10").replace(coingecko_id=eth["id"]))
        config = local_config.replace(COINGECKO_API_URL=cg.url, COINGECKO_CALLS_PER_MINUTE=0)

        def backfill(asset_id: str) -> str:
            # A fresh app each time: no response cached from before the backfill.
            result = create_app(config, dynamodb_client=client).test_cli_runner().invoke(
                args=["backfill-history", asset_id, "--days", "30"])
            assert result.exit_code == 0, result.output
            return result.output.strip()

        line = backfill("BTC")
        today = datetime.now(timezone.utc).date()
        first, last, day_20 = today - timedelta(days=29), today - timedelta(days=1), today - timedelta(days=20)
        stored = candles.asset_days("BTC", today - timedelta(days=40), today)
        written = int(line.split(":")[1].split()[0])
        assert written >= 720  # hourly for 30 days
        assert line == f"BTC: {written} points written; 29 daily candles and 29 day reports rolled up"
        # The 29 finished days wholly covered; not the day 30 days ago (cut into), not today (not finished).
        assert [c.start.date() for c in stored] == [first + timedelta(days=n) for n in range(29)]
        assert all(c.count == 24 for c in stored)

        web = create_app(config, dynamodb_client=client).test_client()
        ohlc = web.get("/inventory/assets/BTC/history?interval=1d&format=ohlc"
                       f"&from={int(day_start(first).timestamp())}&to={int(day_start(today).timestamp()) - 1}")
        assert ohlc.status_code == 200
        assert [r["start"][:10] for r in body(ohlc)["data"]] == [c.start.date().isoformat() for c in stored]
        report = web.get(f"/inventory/reports/daily?date={day_20.isoformat()}")
        assert report.status_code == 200, report.get_data()
        assert [r["asset_id"] for r in body(report)["data"]] == ["BTC"]

        # The same backfill again: the same points, the same candles.
        assert backfill("BTC") == line
        assert candles.asset_days("BTC", today - timedelta(days=40), today) == stored

        # Another asset's backfill adds to the stored reports; BTC's candles stay.
        assert backfill("ETH").endswith("; 29 daily candles and 29 day reports rolled up")
        by_asset, totals = candles.day(day_20)
        assert sorted(by_asset) == ["BTC", "ETH"] and totals.assets == 2
        assert totals.market_cap == by_asset["BTC"].market_cap + by_asset["ETH"].market_cap > Decimal(0)
        assert candles.asset_days("BTC", first, last) == stored
