"""The price path end to end: real gunicorn (3 workers, refresher in the master) against the fake CoinGecko."""

from __future__ import annotations

import os
import time
import uuid
from decimal import Decimal

import pytest
import requests
import simplejson

from inventory.devtools.dynamodb_local import free_port
from tests.e2e.conftest import _flask, _stop, start_gunicorn
from tests.fakes.coingecko import FakeCoinGecko, generate_catalog

pytestmark = pytest.mark.e2e

INTERVAL = 2
MAX_AGE = 8
COOLDOWN = 3


class Service:
    def __init__(self, url: str, cg: FakeCoinGecko):
        self.url, self.cg = url, cg

    def get(self, path: str) -> requests.Response:
        response = requests.get(self.url + path, timeout=10)
        assert response.status_code < 500, (path, response.status_code, response.text)
        return response

    def json(self, path: str):
        return simplejson.loads(self.get(path).content, use_decimal=True)

    def assets(self) -> dict[str, dict]:
        found, cursor = {}, None
        while True:
            page = self.json("/inventory/assets?active_only=false&limit=250" + (f"&cursor={cursor}" if cursor else ""))
            found.update({a["coingecko_id"]: a for a in page["data"]})
            if not (cursor := page["next_cursor"]):
                return found

    def wait_for(self, predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}")

    def source_prices(self) -> dict[str, Decimal]:
        with self.cg.lock:
            return {row["id"]: row["current_price"] for row in self.cg.coins}


@pytest.fixture(scope="module")
def service(dynamodb_local, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("prices")
    with FakeCoinGecko(generate_catalog(60)) as cg:
        cg.tick()  # fresh last_updated times
        env = {
            **os.environ,
            "DYNAMODB_ENDPOINT_URL": dynamodb_local,
            "DYNAMODB_TABLE_NAME": f"e2e-prices-{uuid.uuid4().hex[:10]}",
            "COINGECKO_API_URL": cg.url,
            "COINGECKO_CALLS_PER_MINUTE": "600",
            "COINGECKO_RETRIES": "1",
            "COINGECKO_TIMEOUT_SECONDS": "1",
            "COINGECKO_BREAKER_THRESHOLD": "2",
            "COINGECKO_BREAKER_COOLDOWN_SECONDS": str(COOLDOWN),
            "PRICE_REFRESH_INTERVAL_SECONDS": str(INTERVAL),
            "CATEGORY_REFRESH_HOURS": "0",  # price refreshes are counted as /coins/markets calls
            "PRICE_MAX_AGE_SECONDS": str(MAX_AGE),
            # The fake's prices stand still between ticks, so with this short max age the
            # watched top assets go stale by design; these tests are about the refresh's
            # own state (tests/unit/test_health_prices.py covers the watched assets).
            "HEALTH_TOP_ASSETS": "0",
            # Recovery is waited for within seconds: the health ping must not lag it.
            "HEALTH_SOURCE_PING_CACHE_SECONDS": "1",
            "CACHE_TTL_SECONDS": "0.5",
            "CACHE_STALE_GRACE_SECONDS": "0",
            "BIND": f"127.0.0.1:{free_port()}",
            "WEB_CONCURRENCY": "3",
            "PROMETHEUS_MULTIPROC_DIR": str(workdir),
        }
        _flask(["migrate"], env)
        process, url = start_gunicorn(env, workdir / "gunicorn.log")
        try:
            svc = Service(url, cg)
            svc.wait_for(lambda: svc.json("/health/detailed")["status"] == "healthy", 30, "a first refresh")
            yield svc
        finally:
            _stop(process)


def test_prices_equal_the_source_exactly(service):
    service.cg.tick()
    expected = service.source_prices()
    service.wait_for(
        lambda: all(a["current_price"] == expected[cg_id] for cg_id, a in service.assets().items()),
        5 * INTERVAL, "the new prices",
    )
    assets = service.assets()
    assert len(assets) > 40
    for cg_id, asset in assets.items():
        assert asset["current_price"] == expected[cg_id] == asset["price_usd"]
        assert asset["is_active"] and not asset["price_stale"]


def test_one_refresh_per_interval_in_total(service):
    service.cg.reset_log()
    started = time.monotonic()
    time.sleep(5 * INTERVAL)
    elapsed = time.monotonic() - started
    calls = service.cg.count("/coins/markets")
    # Three workers, one refresher: about elapsed / INTERVAL calls, never three times that.
    assert elapsed / INTERVAL - 1 <= calls <= elapsed / INTERVAL + 1


@pytest.mark.parametrize("fault", ["500", "429", "slow", "html", "truncated"])
def test_source_faults_lose_nothing_and_recover(service, fault):
    # GIVEN current prices, and a source that then moves but starts failing
    service.wait_for(lambda: service.json("/health/detailed")["status"] == "healthy", 30, "healthy")
    before = {k: a["current_price"] for k, a in service.assets().items()}
    service.cg.set_fault(fault, delay=3.0, retry_after=1 if fault == "429" else None)
    service.cg.tick()
    # WHEN refreshes fail for a while
    health = service.wait_for(
        lambda: (h := service.json("/health/detailed"))["status"] == "degraded" and h["prices"]["last_error"] and h,
        6 * INTERVAL, "degraded health",
    )
    assert health["prices"]["last_success_at"] is not None
    # THEN nothing stored changed or blanked, and staleness shows once prices age
    assert {k: a["current_price"] for k, a in service.assets().items()} == before
    stale = service.wait_for(
        lambda: all(a["price_stale"] and not a["is_active"] for a in service.assets().values()),
        MAX_AGE + 4 * INTERVAL, "stale prices",
    )
    assert stale
    assert service.json("/inventory/assets")["data"] == []  # nothing tradable
    assert {k: a["current_price"] for k, a in service.assets().items()} == before
    # AND once the fault clears, refreshes succeed again by themselves
    service.cg.set_fault(None)
    service.cg.tick()  # the source publishes new figures (and times) again
    expected = service.source_prices()
    service.wait_for(
        lambda: service.json("/health/detailed")["status"] == "healthy", COOLDOWN + 6 * INTERVAL, "recovery"
    )
    service.wait_for(
        lambda: all(a["current_price"] == expected[k] and a["is_active"] for k, a in service.assets().items()),
        4 * INTERVAL, "fresh prices",
    )


def test_master_refresh_metrics_appear_in_metrics(service):
    text = service.get("/metrics").text
    assert 'inventory_price_refresh_total{outcome="success"}' in text
    assert "inventory_coingecko_requests_total" in text
    assert "inventory_price_refresh_last_success_timestamp_seconds" in text
