"""/health/detailed tells the truth about prices (watched assets) and about the price source (a cached live ping)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
import simplejson

from inventory import create_app
from inventory.domain import AssetStatus, RefreshState
from inventory.jobs.refresh import refresh_prices
from inventory.services.probe import SourceProbe
from inventory.source.client import CircuitBreaker, CoinGeckoClient
from inventory.store import AssetStore
from inventory.store.prices import PriceStore
from tests.conftest import build_asset
from tests.fakes.coingecko import FakeCoinGecko, generate_catalog

PROBLEM_KEYS = {"dependency", "code", "message"}
SOURCE_KEYS = {"reachable", "latency_ms", "checked_at", "last_error", "last_error_at"}


def body(response):
    return simplejson.loads(response.get_data(), use_decimal=True)


@pytest.fixture
def cg():
    with FakeCoinGecko(generate_catalog(40)) as server:
        yield server


def health_app(config, moto_client, cg, **settings):
    app = create_app(config.replace(COINGECKO_API_URL=cg.url, **settings), dynamodb_client=moto_client)
    app.config["TESTING"] = True
    return app.test_client()


def refresh(cg, moto_client, config, refresh_state):
    source = CoinGeckoClient(cg.url, retries=0, calls_per_minute=0, breaker=CircuitBreaker(threshold=5, cooldown=1))
    prices = PriceStore(moto_client, config.DYNAMODB_TABLE_NAME, history_days=30, write_concurrency=1)
    store = AssetStore(moto_client, config.DYNAMODB_TABLE_NAME, write_concurrency=1)
    return refresh_prices(source, store, prices, pages=1, state=refresh_state)


def test_malformed_rows_for_btc_make_health_degraded_naming_btc(cg, moto_client, config, refresh_state):
    # GIVEN a catalog priced ten minutes ago (stale by now)
    old = (datetime.now(timezone.utc) - timedelta(minutes=10)).isoformat().replace("+00:00", "Z")
    for row in cg.coins:
        row["last_updated"] = old
    assert refresh(cg, moto_client, config, refresh_state).ok
    # WHEN the next refresh gets fresh prices except malformed rows for BTC, ETH and a few more
    cg.tick()
    cg.set_fault("bad_rows", count=1)
    report = refresh(cg, moto_client, config, refresh_state)
    assert report.ok and sum(report.skipped.values()) >= 2  # a refresh that skips rows still "succeeds"
    # THEN health is degraded, naming BTC and ETH among the (at most five) malformed rows' assets
    response = health_app(config, moto_client, cg).get("/health/detailed")
    assert response.status_code == 200
    health = body(response)
    assert health["status"] == "degraded"
    [problem] = [p for p in health["problems"] if p["code"] == "watched_assets_untradable"]
    assert problem["dependency"] == "prices"
    assert {"BTC", "ETH"} <= set(problem["assets"]) and len(problem["assets"]) <= 5
    assert "BTC (stale)" in problem["message"] and problem["message"] in health["reasons"]
    watched = health["prices"]["watched"]
    assert watched["which"] == "ranks 1-10" and watched["checked"] == 5  # ranks 5, 6, 8, 9 and 10 have no usable ticker
    assert {"asset_id": "BTC", "problem": "stale"}.items() <= next(
        p for p in watched["problems"] if p["asset_id"] == "BTC").items()


def test_fresh_top_assets_and_an_answering_source_are_healthy(cg, moto_client, config, refresh_state):
    assert refresh(cg, moto_client, config, refresh_state).ok
    health = body(health_app(config, moto_client, cg).get("/health/detailed"))
    assert (health["status"], health["problems"], health["reasons"]) == ("healthy", [], [])
    assert health["prices"]["watched"]["problems"] == []
    assert health["price_source"]["reachable"] is True and health["price_source"]["latency_ms"] >= 0


def test_a_suspended_stale_asset_is_an_operators_choice_not_a_fault(cg, moto_client, config, add_assets, refresh_state):
    add_assets(
        build_asset("BTC", 1, price="97000", status=AssetStatus.SUSPENDED, age_seconds=3600),
        build_asset("ETH", 2, price="3500", status=AssetStatus.INACTIVE),
        build_asset("SOL", 3, price="150"),
    )
    refresh_state.put(RefreshState(last_success_at=datetime.now(timezone.utc)))
    health = body(health_app(config, moto_client, cg).get("/health/detailed"))
    assert health["status"] == "healthy", health["problems"]


def test_unpriced_and_stale_active_assets_are_named(cg, moto_client, config, add_assets, refresh_state):
    add_assets(
        build_asset("BTC", 1, price="97000", age_seconds=3600),
        build_asset("ETH", 2),
        build_asset("SOL", 3, price="150"),
        build_asset("DEEP", 11, price="1", age_seconds=3600),  # beyond the top 3: not watched
    )
    refresh_state.put(RefreshState(last_success_at=datetime.now(timezone.utc)))
    health = body(health_app(config, moto_client, cg, HEALTH_TOP_ASSETS="3").get("/health/detailed"))
    [problem] = health["problems"]
    assert (problem["code"], problem["assets"]) == ("watched_assets_untradable", ["BTC", "ETH"])
    assert [p["problem"] for p in health["prices"]["watched"]["problems"]] == ["stale", "no_price"]


def test_a_list_of_ids_is_watched_and_a_missing_one_named(cg, moto_client, config, add_assets, refresh_state):
    add_assets(build_asset("BTC", 1, price="97000", age_seconds=3600), build_asset("ETH", 2, price="3500"))
    refresh_state.put(RefreshState(last_success_at=datetime.now(timezone.utc)))
    client = health_app(config, moto_client, cg, HEALTH_TOP_ASSETS="eth, nope")
    health = body(client.get("/health/detailed"))
    assert health["prices"]["watched"]["which"] == "ETH, NOPE"
    assert health["problems"][0]["assets"] == ["NOPE"]  # BTC is stale but not watched
    assert health["prices"]["watched"]["problems"][0]["problem"] == "missing"


@pytest.mark.parametrize("raw", ["", "btc;eth", "-3", "B T C"])
def test_a_malformed_health_top_assets_fails_the_start(config, moto_client, raw):
    with pytest.raises(ValueError, match="HEALTH_TOP_ASSETS"):
        create_app(config.replace(HEALTH_TOP_ASSETS=raw), dynamodb_client=moto_client)


# -- the live check of the price source ---------------------------------------------


def test_fifty_health_calls_make_one_ping(cg, moto_client, config):
    client = health_app(config, moto_client, cg)
    cg.reset_log()
    for _ in range(50):
        assert client.get("/health/detailed").status_code == 200
    client.get("/metrics")  # a scrape shares the cached result too
    assert cg.count("/ping") == 1


def test_the_ping_is_made_again_after_the_cache_period(cg, moto_client, config):
    client = health_app(config, moto_client, cg, HEALTH_SOURCE_PING_CACHE_SECONDS=0.0)
    cg.reset_log()
    for _ in range(3):
        client.get("/health/detailed")
    assert cg.count("/ping") == 3


def test_an_unreachable_source_is_a_degraded_dependency_in_a_stable_shape(moto_client, config, add_assets):
    # The config fixture points at a closed loopback port.
    add_assets(build_asset("BTC", 1, price="97000"))
    client = create_app(config, dynamodb_client=moto_client).test_client()
    health = body(client.get("/health/detailed"))
    assert health["status"] == "degraded"
    source = [p for p in health["problems"] if p["dependency"] == "price_source"]
    assert source == [{
        "dependency": "price_source",
        "code": "ping_failed",
        "message": "price source does not answer its ping: price source unreachable: ConnectionError",
    }]
    assert set(health["price_source"]) == SOURCE_KEYS
    assert health["price_source"]["reachable"] is False and health["price_source"]["latency_ms"] is None
    assert health["price_source"]["last_error"] == "price source unreachable: ConnectionError"
    for problem in health["problems"]:
        assert set(problem) - {"assets"} == PROBLEM_KEYS


def test_a_source_answering_500_is_reported_with_its_status(cg, moto_client, config):
    cg.set_fault("500")
    health = body(health_app(config, moto_client, cg).get("/health/detailed"))
    assert health["price_source"]["last_error"] == "price source answered 500"


def test_the_last_error_stays_visible_after_a_recovery(cg, moto_client, config):
    client = health_app(config, moto_client, cg, HEALTH_SOURCE_PING_CACHE_SECONDS=0.0)
    cg.set_fault("503", count=1)
    assert body(client.get("/health/detailed"))["price_source"]["reachable"] is False
    source = body(client.get("/health/detailed"))["price_source"]
    assert source["reachable"] is True and source["last_error"] == "price source answered 503"


def test_the_probe_gauge_follows_the_ping(cg, moto_client, config):
    client = health_app(config, moto_client, cg, HEALTH_SOURCE_PING_CACHE_SECONDS=0.0)
    assert "inventory_coingecko_up 1.0" in client.get("/metrics").get_data(as_text=True)
    cg.set_fault("503")
    text = client.get("/metrics").get_data(as_text=True)
    assert "inventory_coingecko_up 0.0" in text
    assert "inventory_coingecko_ping_duration_seconds " in text


def test_the_documented_health_shape_lists_problems_and_the_source(client):
    schema = client.get("/openapi.json").get_json()["components"]["schemas"]
    assert {"problems", "price_source", "reasons", "status"} <= set(schema["Health"]["properties"])
    assert set(schema["Problem"]["properties"]) == PROBLEM_KEYS | {"assets"}
    assert set(schema["SourceHealth"]["properties"]) == SOURCE_KEYS


def test_concurrent_checks_share_one_ping_in_flight():
    calls = []

    def slow_ping() -> float:
        calls.append(1)
        time.sleep(0.2)
        return 0.2

    probe = SourceProbe(slow_ping, cache_seconds=10)
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda _: probe.check(), range(20)))
    assert len(calls) == 1
    assert {r.latency_ms for r in results} == {200.0}
