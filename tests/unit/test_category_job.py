"""The category membership job against moto and the local CoinGecko emulator."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from inventory.domain.taxonomy import SOURCE_CATEGORIES, UNCATEGORIZED, ordered
from inventory.jobs.categories import refresh_categories
from inventory.jobs.refresh import refresh_prices
from inventory.source.client import CircuitBreaker, CoinGeckoClient
from inventory.store import CategoryStore, PriceStore
from inventory.store.feed import FeedStore
from tests.fakes.coingecko import FakeCoinGecko, generate_catalog

NOW = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
SOURCE_IDS = sum(len(ids) for ids in SOURCE_CATEGORIES.values())


@pytest.fixture
def cg():
    with FakeCoinGecko(generate_catalog(30)) as server:
        yield server


@pytest.fixture
def source(cg):
    return CoinGeckoClient(cg.url, retries=0, read_timeout=2.0, calls_per_minute=0,
                           breaker=CircuitBreaker(threshold=100, cooldown=60))


@pytest.fixture
def categories(moto_client, config):
    return CategoryStore(moto_client, config.DYNAMODB_TABLE_NAME)


@pytest.fixture
def catalog(source, store, moto_client, config):
    """The emulator's coins as assets, priced by one refresh."""
    prices = PriceStore(moto_client, config.DYNAMODB_TABLE_NAME, history_days=30, write_concurrency=1)
    assert refresh_prices(source, store, prices, pages=1).ok
    return {a.coingecko_id: a for a in store.iter_all()}


def run(source, categories, store):
    return refresh_categories(source, categories, NOW, max_pages=4)


def by_cg(store):
    return {a.coingecko_id: a for a in store.iter_all()}


def test_a_run_sets_every_linked_asset_from_the_source_and_touches_no_price(
    source, categories, store, catalog, cg, moto_client, config
):
    feed = FeedStore(moto_client, config.DYNAMODB_TABLE_NAME, 3600)
    head = feed.head()
    report = run(source, categories, store)
    assert report.error is None and report.changed == len(catalog) == report.assets
    # One list call, then per mapped category one page, and one more (empty) where
    # every member ranks within the catalog (a short page may be the server's page size).
    assert report.source_calls == cg.count("/coins/categories/list") + cg.count("/coins/markets") - 1
    assert 1 + SOURCE_IDS <= report.source_calls <= 1 + 2 * SOURCE_IDS
    after = by_cg(store)
    assert after["bitcoin"].categories == ("layer-1",) and after["bitcoin"].category == "layer-1"
    assert after["tether"].categories == ("stablecoin",)
    assert after["weth"].categories == ("wrapped",)
    slug_of = {source_id: slug for slug, ids in SOURCE_CATEGORIES.items() for source_id in ids}
    for cg_id, asset in after.items():
        assert asset.categories == ordered(slug_of[c] for c in cg.categories_of(cg_id) if c in slug_of), cg_id
    assert any(a.categories == (UNCATEGORIZED,) and a.category == UNCATEGORIZED for a in after.values())
    for cg_id, asset in after.items():
        expected = {f: getattr(catalog[cg_id], f) for f in ("current_price", "market_cap", "last_price_update",
                                                             "status", "version")}
        assert {f: getattr(asset, f) for f in expected} == expected, cg_id
    # Every change reached the feed (a touch: readers re-read the asset), in its own transaction.
    touched = [e["asset_id"] for entry in feed.read(head, 1000) for e in entry.events if e["type"] == "asset"]
    assert sorted(touched) == sorted(a.asset_id for a in after.values())
    assert categories.last_run() == NOW


def test_a_second_run_writes_nothing_and_a_membership_change_writes_one_asset(source, categories, store, catalog, cg):
    run(source, categories, store)
    again = run(source, categories, store)
    assert (again.changed, again.unchanged) == (0, len(catalog))
    cg.set_categories("bitcoin", ["layer-1", "privacy-coins"])
    moved = run(source, categories, store)
    assert (moved.changed, moved.unchanged) == (1, len(catalog) - 1)
    bitcoin = by_cg(store)["bitcoin"]
    assert (bitcoin.category, bitcoin.categories) == ("privacy", ("privacy", "layer-1"))


def test_an_operator_choice_is_never_overwritten(source, categories, store, catalog, cg):
    run(source, categories, store)
    btc = by_cg(store)["bitcoin"]
    categories.set_by_operator(btc, ("other",), "ops", "", "req-1", NOW)
    cg.set_categories("bitcoin", ["meme-token"])
    report = run(source, categories, store)
    assert report.operator_set == 1 and report.changed == 0
    assert by_cg(store)["bitcoin"].categories == ("other",)


def test_a_source_failure_keeps_every_stored_category(source, categories, store, catalog, cg):
    run(source, categories, store)
    cg.set_categories("bitcoin", ["meme-token"])
    cg.set_fault("500", count=3)
    cg.reset_log()
    report = run(source, categories, store)
    assert report.error and report.changed == 0
    assert by_cg(store)["bitcoin"].categories == ("layer-1",)


def test_category_pages_follow_the_servers_page_size_and_stop_past_the_catalog(source, cg):
    with cg.lock:
        coins = [row["id"] for row in cg.coins]
    for coin in coins:
        cg.set_categories(coin, ["gaming"])
    cg.category_page_size = 10
    whole = source.category_members("gaming", None, 10)
    assert (whole.calls, len(whole.rows)) == (4, 30)  # three pages of the server's 10, then an empty one
    cg.reset_log()
    top = source.category_members("gaming", 12, 10)
    assert top.calls == 2 and [r["id"] for r in top.rows] == coins[:20]


def test_the_scheduled_check_runs_only_under_the_lease_and_when_due(source, catalog, cg, moto_client, config):
    from inventory.jobs.categories import build_category_job

    held = {"lease": False}
    check = build_category_job(config, source, moto_client, lambda: held["lease"])
    cg.reset_log()
    assert check() is None and cg.count("/coins/categories/list") == 0
    held["lease"] = True
    assert check().changed == len(catalog)
    assert check() is None  # the last run is younger than CATEGORY_REFRESH_HOURS
    assert cg.count("/coins/categories/list") == 1


def test_the_emulator_serves_categories_like_the_real_api(cg):
    import requests

    listed = requests.get(cg.url + "/coins/categories/list", timeout=5).json()
    assert {"category_id": "stablecoins", "name": "Stablecoins"} in listed
    assert all(set(entry) == {"category_id", "name"} for entry in listed)
    stable = requests.get(cg.url + "/coins/markets", params={"vs_currency": "usd", "category": "stablecoins"},
                          timeout=5).json()
    assert [row["id"] for row in stable][:2] == ["tether", "usd-coin"]  # market cap order, like every page
    unknown = requests.get(cg.url + "/coins/markets", params={"vs_currency": "usd", "category": "nope"}, timeout=5)
    assert unknown.status_code == 404
