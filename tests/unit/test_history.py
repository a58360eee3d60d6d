"""Price history: the endpoint's downsampling and validation, and backfill from market_chart."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import simplejson
from prometheus_client import CollectorRegistry

from inventory import create_app
from inventory.domain import PricePoint
from inventory.jobs.scheduler import build_refresher
from inventory.store.prices import PriceStore
from inventory.telemetry.metrics import RefreshMetrics
from tests.conftest import build_asset
from tests.fakes.coingecko import FakeCoinGecko, generate_catalog

T0 = datetime(2026, 11, 20, 0, 0, tzinfo=timezone.utc)


def body(response):
    return simplejson.loads(response.get_data(), use_decimal=True)


@pytest.fixture
def history(add_assets, moto_client, config):
    add_assets(build_asset("BTC", 1, price="100"))
    prices = PriceStore(moto_client, config.DYNAMODB_TABLE_NAME, 30, write_concurrency=1)
    # One point a minute for three hours: price = minutes since T0.
    points = [PricePoint(T0 + timedelta(minutes=m), Decimal(m) + Decimal("0.5")) for m in range(180)]
    assert prices.record_points("BTC", points, T0) == 180
    return points


def test_history_keeps_the_last_point_of_each_interval(client, history):
    payload = body(client.get("/inventory/assets/btc/history?interval=1h&from=2026-11-20T00:00:00Z&to=2026-11-20T03:00:00Z"))
    assert payload["asset_id"] == "BTC"
    assert [p["price"] for p in payload["data"]] == [Decimal("59.5"), Decimal("119.5"), Decimal("179.5")]


def test_history_5m_and_epoch_times(client, history):
    start = int(T0.timestamp())
    payload = body(client.get(f"/inventory/assets/BTC/history?interval=5m&from={start}&to={start + 1800}"))
    prices = [p["price"] for p in payload["data"]]
    assert prices == [Decimal(m) + Decimal("0.5") for m in (4, 9, 14, 19, 24, 29)] + [Decimal("30.5")]
    times = [p["at"] for p in payload["data"]]
    assert times == sorted(times)


@pytest.mark.parametrize(
    "query",
    ["from=2026-11-20T03:00:00Z&to=2026-11-20T00:00:00Z", "from=yesterday", "interval=7m",
     "interval=5m&from=2020-01-01&to=2026-01-01", "to=" + "9" * 50],
)
def test_history_bad_ranges_are_422(client, history, query):
    response = client.get(f"/inventory/assets/BTC/history?{query}")
    assert response.status_code == 422
    assert body(response)["code"] == 422


def test_backfill_history_from_market_chart(moto_client, config, add_assets):
    add_assets(build_asset("BTC", 1, price="100"))
    with FakeCoinGecko(generate_catalog(20)) as cg:
        btc_row = cg.coins[0]
        add_assets(build_asset("FAKE", 2, price="1").replace(coingecko_id=btc_row["id"]))
        app = create_app(config.replace(COINGECKO_API_URL=cg.url, COINGECKO_CALLS_PER_MINUTE=0),
                         dynamodb_client=moto_client)
        result = app.test_cli_runner().invoke(args=["backfill-history", "fake", "--days", "2"])
        assert result.exit_code == 0, result.output
        written = int(result.output.split(":")[1].split()[0])
        chart = cg.requests[-1]
    assert chart["path"].endswith(f"/coins/{btc_row['id']}/market_chart")
    assert written >= 24
    # Two days back from now: yesterday is the one finished day wholly covered.
    assert result.output.strip() == f"FAKE: {written} points written; 1 daily candles and 1 day reports rolled up"
    payload = body(app.test_client().get("/inventory/assets/FAKE/history?interval=1h&from=" + str(int(datetime.now(timezone.utc).timestamp()) - 3 * 86400)))
    assert len(payload["data"]) >= 24
    yesterday = (datetime.now(timezone.utc) - timedelta(days=1)).date().isoformat()
    report = body(app.test_client().get(f"/inventory/reports/daily?date={yesterday}"))
    assert [(r["asset_id"], r["count"]) for r in report["data"]] == [("FAKE", 24)]


def test_scheduled_refresh_job_records_metrics(moto_client, config, add_assets):
    registry = CollectorRegistry()
    with FakeCoinGecko(generate_catalog(20)) as cg:
        cfg = config.replace(COINGECKO_API_URL=cg.url, COINGECKO_CALLS_PER_MINUTE=0)
        report = build_refresher(cfg, RefreshMetrics(registry))()
        cg.set_fault("500")
        failed = build_refresher(cfg.replace(COINGECKO_RETRIES=0), RefreshMetrics(CollectorRegistry()))()
    assert report.ok and report.created > 0 and not failed.ok
    value = registry.get_sample_value
    assert value("inventory_price_refresh_total", {"outcome": "success"}) == 1
    assert value("inventory_price_refresh_assets_total", {"result": "created"}) == report.created
    assert value("inventory_coingecko_requests_total", {"endpoint": "/coins/markets", "status": "200"}) == 1
    assert value("inventory_price_refresh_last_success_timestamp_seconds") > 0
    assert value("inventory_coingecko_breaker_open") == 0
