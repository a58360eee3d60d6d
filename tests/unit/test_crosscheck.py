"""Cross-checked prices end to end: the CoinGecko and Binance fakes over real HTTP, a moto table, the app.

The jobs are called as the scheduler calls them (plain functions); the answers are
read through the API, the way clients see them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

import pytest
import simplejson

from inventory.domain import utcnow
from inventory.domain.pricecheck import (
    CheckStatus,
    PriceCheck,
    SourcePrice,
    compare,
    default_band,
    divergence_bps,
    rebanded,
)
from inventory.jobs.crosscheck import crosscheck_prices
from inventory.jobs.refresh import refresh_prices
from inventory.source.client import CircuitBreaker, CoinGeckoClient
from inventory.source.exchange import BinanceClient
from inventory.source.pairs import pairs_from_tickers
from inventory.store import Stores
from inventory.store.mapping import item_to_asset
from tests.conftest import ADMIN
from tests.fakes.coingecko import FakeCoinGecko, generate_catalog

MAX_AGE = 180
KEY = "test-quote-key-0123456789abcdef0123456789"


def exact_bps(primary: Decimal, secondary: Decimal) -> Decimal:
    """The issue's formula, written out independently: |p - s| / p x 10,000 to 4 places, half-even."""
    with localcontext() as ctx:
        ctx.prec = 50
        return (abs(primary - secondary) * 10000 / primary).quantize(Decimal("0.0001"), ROUND_HALF_EVEN)


# -- the arithmetic and the bands ------------------------------------------------------------


@pytest.mark.parametrize("primary, secondary", [
    ("87000", "87000"),
    ("87000", "87008.7"),
    ("2900.12", "2972.6230"),
    ("1", "0.9949"),
    ("0.00001234", "0.00001235"),
    ("3", "1"),
])
def test_divergence_is_the_exact_formula(primary, secondary):
    assert divergence_bps(Decimal(primary), Decimal(secondary)) == exact_bps(Decimal(primary), Decimal(secondary))


def test_bands_stablecoins_top_twenty_and_the_rest():
    assert default_band(("stablecoin",), 3) == 50
    assert default_band(("layer-1",), 20) == 100
    assert default_band(("layer-1",), 21) == 300
    assert default_band((), None) == 300


def test_compare_judges_against_the_band_and_counts_diverged_checks():
    now = utcnow()
    primary = SourcePrice("coingecko", Decimal("100"), now)
    within = compare(primary, SourcePrice("binance", Decimal("101"), now), 100, now, 60)
    assert within.status is CheckStatus.OK and within.divergence_bps == Decimal("100.0000")
    first = compare(primary, SourcePrice("binance", Decimal("101.01"), now), 100, now, 60)
    second = compare(primary, SourcePrice("binance", Decimal("101.01"), now), 100, now, 60, previous=first)
    assert (first.status, first.diverged_checks, second.diverged_checks) == (CheckStatus.DIVERGED, 1, 2)
    stale = compare(primary, SourcePrice("binance", Decimal("100"), now - timedelta(seconds=61)), 100, now, 60)
    assert stale.status is CheckStatus.SECONDARY_STALE and stale.divergence_bps is None
    assert compare(primary, None, 100, now, 60).status is CheckStatus.SINGLE_SOURCE
    assert rebanded(first, 150).status is CheckStatus.OK and rebanded(within, 50).status is CheckStatus.DIVERGED


# -- mapping by identity ----------------------------------------------------------------------


def _ticker(coin, base, target, target_coin, volume=1000, **extra):
    return {"coin_id": coin, "base": base, "target": target, "target_coin_id": target_coin,
            "converted_volume": {"usd": Decimal(volume)}, "is_anomaly": False, "is_stale": False, **extra}


def test_pairs_map_by_coin_id_preferring_usd_then_usdt_then_usdc():
    rows = [
        _ticker("bitcoin", "BTC", "USDC", "usd-coin", 10**9),
        _ticker("bitcoin", "BTC", "USDT", "tether", 10),
        _ticker("ethereum", "ETH", "USDC", "usd-coin"),
        _ticker("solana", "SOL", "USD", None),
        _ticker("solana", "SOL", "USDT", "tether", 10**9),
        _ticker("ripple", "XRP", "BTC", "bitcoin"),  # no USD-like quote: not used
        _ticker("cardano", "ADA", "USDT", "tether", is_anomaly=True),
        _ticker("dogecoin", "DOGE", "USDT", "not-tether"),  # says USDT, is not tether
    ]
    pairs = pairs_from_tickers(rows, {"bitcoin", "ethereum", "solana", "ripple", "cardano", "dogecoin"})
    assert {c: (p.symbol, p.quote_coin_id) for c, p in pairs.items()} == {
        "bitcoin": ("BTCUSDT", "tether"), "ethereum": ("ETHUSDC", "usd-coin"), "solana": ("SOLUSD", None),
    }


def test_a_colliding_ticker_maps_only_the_coin_the_exchange_trades():
    # Two coins share the ticker CTX; the exchange's CTXUSDT is CoinGecko's "ctx-real".
    rows = [_ticker("ctx-real", "CTX", "USDT", "tether")]
    pairs = pairs_from_tickers(rows, {"ctx-real", "ctx-other"})
    assert set(pairs) == {"ctx-real"}
    # A pair symbol CoinGecko ties to two coins is never used for either.
    rows.append(_ticker("ctx-other", "CTX", "USDT", "tether"))
    assert pairs_from_tickers(rows, {"ctx-real", "ctx-other"}) == {}


# -- the jobs against both fakes ---------------------------------------------------------------


@pytest.fixture
def config(config):
    return config.replace(QUOTE_SIGNING_KEY=KEY, HEALTH_TOP_ASSETS="BTC,ETH")


@pytest.fixture
def fakes():
    from inventory.devtools.binance import FakeBinance

    cg = FakeCoinGecko(generate_catalog(30)).start()
    bn = FakeBinance(cg).start()
    yield cg, bn
    bn.stop()
    cg.stop()


class World:
    """Both sources, the stores and the API, with the two jobs as the scheduler runs them."""

    def __init__(self, fakes, moto_client, config, client):
        self.cg, self.bn = fakes
        self.client = client
        self.stores = Stores.build(moto_client, config)
        breaker = dict(threshold=100, cooldown=1)
        self.coingecko = CoinGeckoClient(self.cg.url, retries=0, calls_per_minute=0,
                                         breaker=CircuitBreaker(**breaker))
        self.exchange = BinanceClient(self.bn.url, retries=0, calls_per_minute=0, breaker=CircuitBreaker(**breaker))
        self.clock = utcnow

    def refresh(self):
        return refresh_prices(self.coingecko, self.stores.assets, self.stores.prices, pages=1,
                              check_max_age=MAX_AGE, clock=self.clock)

    def check(self):
        return crosscheck_prices(self.exchange, self.stores.assets, self.stores.prices, self.stores.crosschecks,
                                 exchange_id="binance", max_age_seconds=MAX_AGE,
                                 primary_failing=lambda: self.stores.refresh_state.get().last_error is not None,
                                 coingecko=self.coingecko, clock=self.clock)

    def asset(self, asset_id: str) -> dict:
        response = self.client.get(f"/inventory/assets/{asset_id}")
        assert response.status_code == 200
        return simplejson.loads(response.data, use_decimal=True)["data"]

    def quote(self, *asset_ids):
        return self.client.post("/inventory/quotes", json={"items": [{"asset_id": a} for a in asset_ids]})


@pytest.fixture
def world(fakes, moto_client, config, client):
    return World(fakes, moto_client, config, client)


def at(text: str):
    return datetime.fromisoformat(text)


def _row(cg, coin_id):
    return next(r for r in cg.coins if r["id"] == coin_id)


def test_btc_and_eth_are_ok_with_the_exact_divergence(world):
    assert world.refresh().ok
    report = world.check()
    assert report.ok and report.pairs_refreshed
    for asset_id, coin in (("BTC", "bitcoin"), ("ETH", "ethereum")):
        body = world.asset(asset_id)
        check = body["price_check"]
        assert check["status"] == "ok" and body["price_source"] == "coingecko"
        primary, secondary = check["sources"]
        assert primary == {"source": "coingecko", "price": body["current_price"], "as_of": primary["as_of"]}
        assert secondary["source"] == "binance" and secondary["pair"] == f"{asset_id}USDT"
        # The exchange's own number, converted with tether's (CoinGecko) price, exactly.
        pair_price = world.bn.price_of(f"{asset_id}USDT")
        assert secondary["quote"] == "USDT" and secondary["quote_price"] == _row(world.cg, "tether")["current_price"]
        assert secondary["price"] == pair_price * secondary["quote_price"]
        assert check["divergence_bps"] == exact_bps(primary["price"], secondary["price"])
        assert check["band_bps"] == 100 and primary["price"] == _row(world.cg, coin)["current_price"]


def test_a_skew_past_the_band_is_diverged_within_one_check_refuses_quotes_and_degrades_health(world):
    world.refresh()
    world.check()
    assert world.quote("ETH").status_code == 200
    world.bn.skew("ethereum", 250)
    world.check()
    check = world.asset("ETH")["price_check"]
    assert check["status"] == "diverged" and check["divergence_bps"] > 240
    refused = world.quote("ETH", "BTC")
    assert refused.status_code == 409
    error = simplejson.loads(refused.data, use_decimal=True)
    assert error["errors"]["assets"] == {"ETH": "price_diverged"}
    assert error["errors"]["price_checks"]["ETH"]["divergence_bps"] == check["divergence_bps"]
    assert error["errors"]["price_checks"]["ETH"]["band_bps"] == 100
    health = world.client.get("/health/detailed").get_json()
    assert health["status"] == "degraded"
    diverged = [p for p in health["problems"] if p["code"] == "watched_assets_diverged"]
    assert diverged and diverged[0]["assets"] == ["ETH"] and "ETH" in diverged[0]["message"]
    assert health["price_check"]["diverged"] == ["ETH"]

    world.bn.skew("ethereum", 0)
    world.check()
    assert world.asset("ETH")["price_check"]["status"] == "ok"
    assert world.quote("ETH").status_code == 200
    assert not [p for p in world.client.get("/health/detailed").get_json()["problems"]
                if p["code"] == "watched_assets_diverged"]


def test_an_asset_the_exchange_lists_under_its_ticker_for_another_coin_is_single_source(world):
    world.refresh()
    weth = {a.asset_id: a for a in world.stores.assets.iter_all()}["WETH"]
    assert weth.coingecko_id == "weth"  # of the two coins with the ticker weth, the higher-ranked one
    # The exchange trades WETHUSDT, but CoinGecko says that pair is the other coin (binance-peg-weth).
    world.bn.delist("WETHUSDT")
    world.bn.list_pair("binance-peg-weth", "WETH", "USDT", "tether")
    report = world.check()
    body = world.asset("WETH")
    assert body["price_check"]["status"] == "single_source"
    assert [s["source"] for s in body["price_check"]["sources"]] == ["coingecko"]
    assert body["price_check"]["divergence_bps"] is None
    assert report.counts["ok"] >= 2  # the others were compared


def test_coingecko_rate_limited_the_exchange_stands_in_quotes_go_on_and_coingecko_takes_back(world):
    world.refresh()
    world.check()  # BTC agrees: the exchange may stand in for it
    world.cg.set_fault("429")
    assert not world.refresh().ok
    before = utcnow().replace(microsecond=0)
    report = world.check()
    assert report.stood_in >= 2
    btc = world.asset("BTC")
    assert btc["price_source"] == "binance" and at(btc["last_updated"]) >= before
    assert btc["price_check"]["status"] == "single_source"
    assert btc["price_check"]["sources"][0]["source"] == "binance"
    assert btc["current_price"] == btc["price_check"]["sources"][0]["price"]
    assert at(btc["market_as_of"]) < before  # CoinGecko's market figures keep their own age
    assert btc["market_cap"] == _row(world.cg, "bitcoin")["market_cap"]
    quote = world.quote("BTC")
    assert quote.status_code == 200
    line = quote.get_json()["items"][0]
    assert (line["price_check"], line["price_source"]) == ("single_source", "binance")

    world.cg.set_fault(None)
    assert world.refresh().ok
    btc = world.asset("BTC")
    assert btc["price_source"] == "coingecko"
    assert btc["current_price"] == _row(world.cg, "bitcoin")["current_price"]
    assert btc["price_check"]["status"] == "ok"  # checked at once against the exchange's last price


def test_second_source_down_checks_go_secondary_stale_after_the_bound_and_health_names_it(world):
    world.refresh()
    world.check()
    prices_before = {a.asset_id: a.current_price for a in world.stores.assets.iter_all()}
    world.bn.set_fault("503")
    report = world.check()
    assert not report.ok and world.asset("BTC")["price_check"]["status"] == "ok"  # within the bound
    later = utcnow() + timedelta(seconds=MAX_AGE + 1)
    world.clock = lambda: later
    world.check()
    mapped = [a for a in world.stores.assets.iter_all() if a.price_check is not None]
    assert mapped and {a.price_check.status for a in mapped} == {CheckStatus.SECONDARY_STALE}
    assert {a.asset_id: a.current_price for a in world.stores.assets.iter_all()} == prices_before
    health = world.client.get("/health/detailed").get_json()
    failing = [p for p in health["problems"] if p["code"] == "secondary_source_failing"]
    assert failing and "binance" in failing[0]["message"]
    assert health["price_check"]["reachable"] is False


def test_a_lost_pair_drops_the_check(world):
    world.refresh()
    world.check()
    assert world.asset("ETH")["price_check"]["status"] == "ok"
    world.stores.crosschecks.put_pairs("binance", {}, utcnow())
    world.check()
    assert world.asset("ETH")["price_check"]["status"] == "single_source"


def test_an_operators_band_judges_the_check_at_once_and_is_audited(world):
    world.refresh()
    world.bn.skew("ethereum", 150)
    world.check()
    response = world.client.get("/inventory/assets/ETH")
    assert response.get_json()["data"]["price_check"]["status"] == "diverged"
    headers = {**ADMIN, "If-Match": response.headers["ETag"]}
    changed = world.client.put("/inventory/assets/ETH/price-band", json={"band_bps": 200, "reason": "thin book"},
                               headers=headers)
    assert changed.status_code == 200, changed.get_json()
    data = changed.get_json()["data"]
    assert data["price_band_bps"] == 200 and data["price_check"]["status"] == "ok"
    assert data["price_check"]["band_bps"] == 200
    audit = world.client.get("/inventory/assets/ETH/audit", headers=ADMIN).get_json()["data"]
    assert any("price band default -> 200 bps: thin book" in entry["reason"] for entry in audit)
    world.check()  # the next check keeps the operator's band
    assert world.asset("ETH")["price_check"]["band_bps"] == 200
    bad = world.client.put("/inventory/assets/ETH/price-band", json={"band_bps": 0},
                           headers={**ADMIN, "If-Match": changed.headers["ETag"]})
    assert bad.status_code == 422


def test_checks_reach_the_stream_list_and_export(world):
    world.refresh()
    world.check()
    page = world.client.get("/inventory/assets?limit=5").get_json()["data"]
    assert all("price_check" in a and "price_source" in a for a in page)
    csv = world.client.get("/inventory/assets/export?format=csv").get_data(as_text=True).splitlines()
    header = csv[0].split(",")
    btc = next(line.split(",") for line in csv[1:] if line.startswith("BTC,"))
    row = dict(zip(header, btc))
    body = world.asset("BTC")
    assert row["price_check_status"] == "ok" and row["price_source"] == "coingecko"
    assert Decimal(row["price_check_divergence_bps"]) == body["price_check"]["divergence_bps"]
    # The feed entry of the check carries it to the stream, numbers as exact strings.
    entries = world.stores.feed.read(0, 1000)
    checks = [e for entry in entries for e in entry.events if e["type"] == "check" and e["asset_id"] == "BTC"]
    assert checks and checks[-1]["price_check"]["status"] == "ok"
    assert Decimal(checks[-1]["price_check"]["divergence_bps"]) == body["price_check"]["divergence_bps"]


def test_the_check_survives_the_item_round_trip(world):
    world.refresh()
    world.check()
    item = world.stores.client.get_item(TableName=world.stores.table_name,
                                        Key={"PK": {"S": "ASSET#BTC"}, "SK": {"S": "ASSET"}})["Item"]
    check = item_to_asset(item).price_check
    assert isinstance(check, PriceCheck) and check.status is CheckStatus.OK
    assert check.secondary.pair == "BTCUSDT"


def test_a_refresh_between_the_checks_read_and_write_does_not_lose_the_check(world):
    world.refresh()
    world.check()
    read_catalog = world.stores.assets.iter_all
    raced = []

    def read_then_refresh():
        catalog = list(read_catalog())
        if not raced:  # once, after the check's own read: every asset's stream_seq moves on
            raced.append(True)
            world.cg.tick()
            assert world.refresh().updated
        return iter(catalog)

    world.stores.assets.iter_all = read_then_refresh
    report = world.check()
    assert raced and report.rejected == 0 and report.counts["ok"] >= 2
    body = world.asset("BTC")
    assert body["price_check"]["sources"][0]["price"] == body["current_price"] == _row(world.cg, "bitcoin")[
        "current_price"]
    assert at(body["price_check"]["sources"][0]["as_of"]) == at(body["last_updated"])  # the raced-in price


def test_metrics_count_statuses_and_streaks_and_zero_an_asset_that_left_the_top(world):
    from prometheus_client import CollectorRegistry

    from inventory.telemetry.metrics import RefreshMetrics

    registry = CollectorRegistry()
    metrics = RefreshMetrics(registry)
    world.refresh()
    world.bn.skew("ethereum", 250)
    world.check()
    metrics.record_crosscheck(world.check())  # the second diverged check in a row

    def value(name, **labels):
        return registry.get_sample_value(name, labels)

    assert value("inventory_price_diverged_checks", asset_id="ETH") == 2
    assert value("inventory_price_diverged_checks", asset_id="BTC") == 0
    assert value("inventory_price_checks", status="diverged") == 1
    assert value("inventory_price_checks", status="ok") >= 10
    assert value("inventory_price_divergence_max_bps") == pytest.approx(250, abs=1)
    assert value("inventory_secondary_source_up", source="binance") == 1

    report = world.check()
    del report.top_streaks["ETH"]  # as if ETH left the top 20
    world.bn.set_fault("503")
    metrics.record_crosscheck(report)
    assert value("inventory_price_diverged_checks", asset_id="ETH") == 0
    metrics.record_crosscheck(world.check())
    assert value("inventory_secondary_source_up", source="binance") == 0
