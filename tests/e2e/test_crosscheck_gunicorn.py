"""Cross-checked prices as they run: gunicorn (refresher beside the master), DynamoDB Local, and both fakes.

Intervals are seconds instead of a minute; `bench/outage.py` runs the same outage for
10 minutes (BENCHMARKS.md).
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import datetime, timezone
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

import pytest
import requests
import simplejson

from inventory.devtools.binance import FakeBinance
from inventory.devtools.dynamodb_local import free_port
from tests.e2e.conftest import _flask, _stop, start_gunicorn
from tests.e2e.test_prices_gunicorn import Service as PricesService
from tests.fakes.coingecko import FakeCoinGecko, generate_catalog

pytestmark = pytest.mark.e2e

REFRESH = 2
CHECK = 3
CHECK_MAX_AGE = 9


class Service(PricesService):
    def __init__(self, url: str, cg: FakeCoinGecko, bn: FakeBinance):
        super().__init__(url, cg)
        self.bn = bn

    def asset(self, asset_id: str) -> dict:
        return simplejson.loads(self.get(f"/inventory/assets/{asset_id}").content, use_decimal=True)["data"]

    def quote(self, *asset_ids) -> requests.Response:
        return requests.post(self.url + "/inventory/quotes", json={"items": [{"asset_id": a} for a in asset_ids]},
                             timeout=10)


@pytest.fixture(scope="module")
def service(dynamodb_local, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("crosscheck")
    cg = FakeCoinGecko(generate_catalog(40), tick_seconds=1).start()
    bn = FakeBinance(cg).start()
    env = {
        **os.environ,
        "DYNAMODB_ENDPOINT_URL": dynamodb_local,
        "DYNAMODB_TABLE_NAME": f"e2e-crosscheck-{uuid.uuid4().hex[:10]}",
        "COINGECKO_API_URL": cg.url,
        "BINANCE_API_URL": bn.url,
        "COINGECKO_CALLS_PER_MINUTE": "600",
        "BINANCE_CALLS_PER_MINUTE": "600",
        # A 429 fails the refresh at once (no retries), as it does once the retries are spent.
        "COINGECKO_RETRIES": "0",
        "BINANCE_RETRIES": "0",
        "COINGECKO_BREAKER_THRESHOLD": "100",
        "PRICE_REFRESH_INTERVAL_SECONDS": str(REFRESH),
        "CROSSCHECK_ENABLED": "1",
        "CROSSCHECK_INTERVAL_SECONDS": str(CHECK),
        "CROSSCHECK_MAX_AGE_SECONDS": str(CHECK_MAX_AGE),
        "CATEGORY_REFRESH_HOURS": "0",
        "HEALTH_TOP_ASSETS": "BTC,ETH",
        "HEALTH_SOURCE_PING_CACHE_SECONDS": "1",
        "CACHE_TTL_SECONDS": "0.5",
        "BIND": f"127.0.0.1:{free_port()}",
        "WEB_CONCURRENCY": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(workdir),
    }
    _flask(["migrate"], env)
    process, url = start_gunicorn(env, workdir / "gunicorn.log")
    try:
        svc = Service(url, cg, bn)
        svc.wait_for(lambda: svc.asset("BTC")["price_check"]["status"] == "ok" if svc.get(
            "/inventory/assets/BTC").status_code == 200 else False, 60, "a first cross-check")
        yield svc
    finally:
        _stop(process)
        bn.stop()
        cg.stop()


def exact_bps(primary: Decimal, secondary: Decimal) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 50
        return (abs(primary - secondary) * 10000 / primary).quantize(Decimal("0.0001"), ROUND_HALF_EVEN)


def test_btc_and_eth_ok_with_the_exact_divergence(service):
    for asset_id in ("BTC", "ETH"):
        body = service.asset(asset_id)
        check = body["price_check"]
        primary, secondary = check["sources"]
        assert check["status"] == "ok" and primary["price"] == body["current_price"]
        assert (primary["source"], secondary["source"], secondary["pair"]) == ("coingecko", "binance",
                                                                                f"{asset_id}USDT")
        assert check["divergence_bps"] == exact_bps(primary["price"], secondary["price"])


def test_skewed_eth_diverges_within_one_check_and_recovers(service):
    service.bn.skew("ethereum", 250)
    try:
        started = time.monotonic()
        service.wait_for(lambda: service.asset("ETH")["price_check"]["status"] == "diverged", 2 * CHECK + 2,
                         "ETH diverged")
        assert time.monotonic() - started <= 2 * CHECK + 2
        refused = service.quote("ETH")
        assert refused.status_code == 409 and refused.json()["errors"]["assets"] == {"ETH": "price_diverged"}
        assert refused.json()["errors"]["price_checks"]["ETH"]["band_bps"] == 100
        health = service.get("/health/detailed").json()
        assert any(p["code"] == "watched_assets_diverged" and p["assets"] == ["ETH"] for p in health["problems"])
    finally:
        service.bn.skew("ethereum", 0)
    service.wait_for(lambda: service.asset("ETH")["price_check"]["status"] == "ok", 2 * CHECK + 2, "ETH ok again")
    assert service.quote("ETH").status_code == 200


def test_coingecko_429_storm_the_exchange_keeps_btc_and_eth_fresh_then_coingecko_is_back(service):
    storm = 45  # seconds; bench/outage.py runs 10 minutes
    statuses, ages, sources, quotes = [], [], set(), []
    service.cg.set_fault("429", retry_after=1)
    try:
        ends = time.monotonic() + storm
        while time.monotonic() < ends:
            for asset_id in ("BTC", "ETH"):
                response = requests.get(f"{service.url}/inventory/assets/{asset_id}", timeout=10)
                statuses.append(response.status_code)
                body = simplejson.loads(response.content, use_decimal=True)["data"]
                ages.append((datetime.now(timezone.utc) - datetime.fromisoformat(body["last_updated"])).total_seconds())
                sources.add(body["price_source"])
            quote = service.quote("BTC", "ETH")
            statuses.append(quote.status_code)
            quotes.append(quote.status_code)
            time.sleep(0.25)
    finally:
        service.cg.set_fault(None)
    assert all(status < 500 for status in statuses)
    assert set(quotes) == {200}
    assert "binance" in sources
    assert max(ages) <= 2 * CHECK, max(ages)
    service.wait_for(lambda: service.asset("BTC")["price_source"] == "coingecko", 3 * REFRESH, "coingecko again")
    assert service.asset("ETH")["price_source"] == "coingecko"


def test_second_source_down_checks_go_stale_prices_go_on_and_health_names_it(service):
    service.bn.set_fault("503")
    try:
        service.wait_for(lambda: service.asset("BTC")["price_check"]["status"] == "secondary_stale",
                         CHECK_MAX_AGE + 3 * CHECK, "secondary_stale")
        body = service.asset("BTC")
        assert body["price_source"] == "coingecko" and body["is_active"]
        assert service.quote("BTC").status_code == 200
        health = service.get("/health/detailed").json()
        assert any(p["code"] == "secondary_source_failing" and "binance" in p["message"] for p in health["problems"])
        assert health["price_check"]["reachable"] is False
    finally:
        service.bn.set_fault(None)
    service.wait_for(lambda: service.asset("BTC")["price_check"]["status"] == "ok", 3 * CHECK, "ok again")


def test_one_call_per_interval_to_each_source_whatever_the_workers(service):
    service.cg.reset_log()
    service.bn.reset_log()
    started = time.monotonic()
    time.sleep(6 * CHECK)
    elapsed = time.monotonic() - started
    markets, tickers = service.cg.count("/coins/markets"), service.bn.count("/ticker/price")
    assert elapsed / REFRESH - 1 <= markets <= elapsed / REFRESH + 1
    assert elapsed / CHECK - 1 <= tickers <= elapsed / CHECK + 1
    # Per hour at these intervals; at the defaults (60 s each) it is 60 of each (README "Price sources").
    print(f"calls per hour: coingecko /coins/markets {markets * 3600 / elapsed:.0f}, "
          f"binance /ticker/price {tickers * 3600 / elapsed:.0f}")
