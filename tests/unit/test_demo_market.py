"""`make demo`'s market: the emulator at late-2025 reference levels, its random walk and its ticker."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from decimal import Decimal
from itertools import pairwise

import pytest
import requests

from inventory.devtools.coingecko import (
    FakeCoinGecko,
    dumps,
    generate_catalog,
    pegged_ids,
    reference_levels,
)
from inventory.devtools.run import DEMO_COINS, RunError, start_demo_source
from inventory.jobs.seed import bundled_rows
from inventory.source.rows import load_json

LEVELS_FILE = "inventory/data/market_levels_2025.json"


@pytest.fixture(scope="module")
def levels():
    return reference_levels()


@pytest.fixture(scope="module")
def identities():
    return [{k: row[k] for k in ("id", "symbol", "name", "market_cap_rank")} for row in bundled_rows()]


@pytest.fixture
def demo(levels, identities):
    """The demo's catalog in an emulator that is not started (walk() by hand)."""
    fake = FakeCoinGecko(generate_catalog(DEMO_COINS, base=identities, levels=levels), pegged=pegged_ids(levels))
    yield fake
    fake.stop()


def by_id(rows) -> dict[str, dict]:
    return {row["id"]: row for row in rows}


def numbers(value):
    """Every number in a row, however deep."""
    if isinstance(value, dict):
        for v in value.values():
            yield from numbers(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from numbers(v)
    elif isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        yield value


def spearman(xs, ys) -> float:
    def ranks(values):
        order = sorted(range(len(values)), key=lambda i: values[i])
        out = [0] * len(values)
        for pos, i in enumerate(order):
            out[i] = pos
        return out
    rx, ry, n = ranks(xs), ranks(ys), len(xs)
    return 1 - 6 * sum((a - b) ** 2 for a, b in zip(rx, ry)) / (n * (n * n - 1))


def test_the_reference_levels_cover_the_bundled_catalog_and_say_where_they_come_from(levels):
    # GIVEN the data file as it ships
    from inventory.devtools.coingecko import _LEVELS_FILE
    document = load_json(_LEVELS_FILE.read_bytes())
    # THEN it names its source and date, and has a level for every bundled coin, all numbers exact
    assert _LEVELS_FILE.as_posix().endswith(LEVELS_FILE)
    assert "github.com/" in document["source"] and "/coins/markets" in document["source"]
    assert document["as_of"].startswith("2025-")
    assert set(document["recorded"]) <= set(levels)
    assert {row["id"] for row in bundled_rows()} <= set(levels)
    for coin_id, level in levels.items():
        assert level["price"] > 0 and level["market_cap"] > 0 and level["total_volume"] >= 0, coin_id
        assert not any(isinstance(v, float) for v in numbers(level)), coin_id


def test_the_demo_catalog_starts_at_realistic_levels(demo, levels):
    # GIVEN the demo's catalog (bundled coins at their reference levels, then the fake's own coins)
    rows = demo.coins
    coins = by_id(rows)
    # THEN BTC and ETH are at their real order of magnitude and stablecoins near 1.00
    assert Decimal(10_000) < coins["bitcoin"]["current_price"] < Decimal(1_000_000)
    assert Decimal(1_000) < coins["ethereum"]["current_price"] < Decimal(10_000)
    for stable in ("tether", "usd-coin", "dai", "usds"):
        assert Decimal("0.95") < coins[stable]["current_price"] < Decimal("1.05"), stable
    assert coins["bonk"]["current_price"] < Decimal("0.001")  # a meme coin, not 83,540
    # rows come in rank order, the market caps roughly descending with it
    ranks = [row["market_cap_rank"] for row in rows[:-1]]
    assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)
    ranked = [row for row in rows if row["id"] in levels]
    assert len(ranked) == len(levels)
    assert spearman([-r["market_cap_rank"] for r in ranked], [r["market_cap"] for r in ranked]) > 0.9
    biggest = sorted(ranked, key=lambda r: -r["market_cap"])[:5]
    assert {r["id"] for r in biggest} <= {"bitcoin", "ethereum", "tether", "binancecoin", "ripple", "solana", "usd-coin"}
    # the coins after them stay below the smallest reference cap
    smallest = min(r["market_cap"] for r in ranked)
    assert all(r["market_cap"] <= smallest for r in rows[len(ranked):] if r["market_cap_rank"])
    # market cap = price x circulating supply; the recorded figures are kept as they are
    for row in ranked:
        product = row["current_price"] * row["circulating_supply"]
        assert abs(product - row["market_cap"]) <= row["market_cap"] * Decimal("0.000001"), row["id"]
        assert row["total_volume"] == levels[row["id"]]["total_volume"]
    assert coins["bitcoin"]["price_change_percentage_24h"] == levels["bitcoin"]["price_change_percentage_24h"]
    assert coins["bitcoin"]["max_supply"] == 21_000_000
    # and every number is an int or a Decimal, never a float
    assert not any(isinstance(v, float) for v in numbers(rows))


def test_the_served_markets_keep_coingecko_s_shape(levels, identities):
    # GIVEN the demo's catalog served on loopback
    rows = generate_catalog(DEMO_COINS, base=identities, levels=levels)
    with FakeCoinGecko(rows, pegged=pegged_ids(levels)) as cg, FakeCoinGecko(generate_catalog(20)) as plain:
        # WHEN a client asks for the first page, as the service does
        answer = requests.get(cg.url + "/coins/markets", params={"vs_currency": "usd", "per_page": 250}, timeout=5)
        plain_row = requests.get(plain.url + "/coins/markets", params={"vs_currency": "usd"}, timeout=5).json()[0]
    served = json.loads(answer.text, parse_float=Decimal)
    # THEN every row has the fields of the fake's usual rows, exact figures, largest market cap first
    assert answer.status_code == 200 and len(served) == DEMO_COINS
    assert all(set(row) == set(plain_row) for row in served)
    btc = by_id(served)["bitcoin"]
    assert btc["current_price"] == levels["bitcoin"]["price"]
    assert btc["market_cap"] == levels["bitcoin"]["market_cap"] and btc["market_cap_rank"] == 1
    caps = [row["market_cap"] for row in served]
    assert caps == sorted(caps, reverse=True)


def test_a_walk_moves_every_price_a_little_and_keeps_the_figures_consistent(demo):
    # GIVEN the demo's catalog
    start = {row["id"]: dict(row) for row in demo.coins}
    btc_seen = [start["bitcoin"]["current_price"]]
    # WHEN it takes 20 steps
    for _ in range(20):
        time.sleep(0.002)  # last_updated has millisecond resolution
        demo.walk()
        btc_seen.append(by_id(demo.coins)["bitcoin"]["current_price"])
    coins = by_id(demo.coins)
    # THEN BTC moved at (nearly) every step, within a sane band
    assert sum(a != b for a, b in pairwise(btc_seen)) >= 3
    assert all(abs(p / btc_seen[0] - 1) < Decimal("0.2") for p in btc_seen)
    assert all(abs(b / a - 1) <= Decimal("0.0101") for a, b in pairwise(btc_seen))
    # a stablecoin moved far less and stayed at its peg
    usdt = coins["tether"]["current_price"]
    assert usdt != start["tether"]["current_price"] and Decimal("0.99") < usdt < Decimal("1.01")
    # the market cap follows the price, the 24h change agrees with it, every row is stamped now
    for coin_id in ("bitcoin", "ethereum", "tether", "shiba-inu"):
        row = coins[coin_id]
        product = row["current_price"] * row["circulating_supply"]
        assert abs(product - row["market_cap"]) <= max(product * Decimal("0.000001"), Decimal(1)), coin_id
        change, pct = row["price_change_24h"], row["price_change_percentage_24h"]
        assert (change > 0) == (pct > 0), coin_id
        opened = row["current_price"] - change
        assert abs(change / opened * 100 - pct) < Decimal("0.001"), coin_id
        assert row["low_24h"] <= row["current_price"] <= row["high_24h"], coin_id
    assert all(row["last_updated"] > start[row["id"]]["last_updated"] for row in demo.coins)
    assert coins["no-price-coin"]["current_price"] is None
    assert not any(isinstance(v, float) for v in numbers(demo.coins))


def test_hours_of_walking_stay_near_the_reference_levels(demo):
    # GIVEN the demo's catalog
    start = {row["id"]: row["current_price"] for row in demo.coins}
    # WHEN it walks for 1000 steps (five and a half hours at 20 s a step)
    for _ in range(1000):
        demo.walk()
    coins = by_id(demo.coins)
    # THEN prices are still about where they started: the walk is pulled back as it strays
    for coin_id in ("bitcoin", "ethereum", "solana", "dogecoin", "bonk"):
        assert abs(coins[coin_id]["current_price"] / start[coin_id] - 1) < Decimal("0.3"), coin_id
    for coin_id in ("tether", "usd-coin", "dai"):
        assert abs(coins[coin_id]["current_price"] - 1) < Decimal("0.01"), coin_id
    assert abs(coins["bitcoin"]["total_volume"] / demo._walks["bitcoin"]["volume"] - 1) <= Decimal("0.05")


def test_the_ticker_moves_prices_on_its_own_and_stops_with_the_emulator(levels, identities):
    # GIVEN the emulator started with a ticker every 50 ms
    rows = generate_catalog(DEMO_COINS, base=identities, levels=levels)
    fake = FakeCoinGecko(rows, tick_seconds=0.05, pegged=pegged_ids(levels)).start()
    try:
        def btc():
            served = requests.get(fake.url + "/coins/markets",
                                  params={"vs_currency": "usd", "ids": "bitcoin"}, timeout=5).text
            return json.loads(served, parse_float=Decimal)[0]
        first = btc()
        # WHEN nobody but the ticker touches it
        deadline = time.monotonic() + 10
        later = btc()
        while later["current_price"] == first["current_price"] and time.monotonic() < deadline:
            time.sleep(0.05)
            later = btc()
        # THEN the served price and its time move
        assert later["current_price"] != first["current_price"]
        assert later["last_updated"] > first["last_updated"]
    finally:
        fake.stop()
    # and stop() ends the ticker: nothing moves any more
    assert not any(t.name.startswith("FakeCoinGecko-ticker") for t in threading.enumerate())
    frozen = by_id(fake.coins)["bitcoin"]["current_price"]
    time.sleep(0.2)
    assert by_id(fake.coins)["bitcoin"]["current_price"] == frozen
    with pytest.raises(ValueError):
        FakeCoinGecko(rows, tick_seconds=0)


def test_start_demo_source_serves_the_reference_levels_and_ticks():
    # GIVEN make demo's price source started with a fast ticker
    demo = start_demo_source({"DEMO_TICK_SECONDS": "0.05"})
    try:
        # THEN it serves BTC at a realistic level, and the price moves by itself
        assert demo.tick_seconds == 0.05
        first = by_id(demo.coins)["bitcoin"]["current_price"]
        assert Decimal(10_000) < first < Decimal(1_000_000)
        deadline = time.monotonic() + 10
        while by_id(demo.coins)["bitcoin"]["current_price"] == first and time.monotonic() < deadline:
            time.sleep(0.05)
        assert by_id(demo.coins)["bitcoin"]["current_price"] != first
        assert "tether" in demo.pegged
    finally:
        demo.stop()


@pytest.mark.parametrize(
    ("env", "seconds"),
    [({}, 20.0), ({"PRICE_REFRESH_INTERVAL_SECONDS": "10"}, 5.0), ({"DEMO_TICK_SECONDS": "7.5"}, 7.5),
     ({"PRICE_REFRESH_INTERVAL_SECONDS": "2", "DEMO_TICK_SECONDS": "1"}, 1.0)],
)
def test_the_demo_ticks_faster_than_the_refresh_reads(env, seconds):
    demo = start_demo_source(env)
    try:
        assert demo.tick_seconds == seconds
    finally:
        demo.stop()


@pytest.mark.parametrize("raw", ["0", "-1", "soon", "nan", "inf"])
def test_a_bad_demo_tick_is_refused_in_one_line(raw):
    with pytest.raises(RunError, match="DEMO_TICK_SECONDS"):
        start_demo_source({"DEMO_TICK_SECONDS": raw})


def test_without_levels_or_a_ticker_the_fake_is_what_the_tests_always_had():
    # GIVEN the fake as most tests build it: 100 generated coins, ticked by hand
    fake = FakeCoinGecko(generate_catalog(100))

    def digest():
        rows = [{k: v for k, v in row.items() if k != "last_updated"} for row in fake.coins]
        return hashlib.sha256(dumps(rows).encode()).hexdigest()

    # THEN its catalog and three ticks give exactly the figures they gave before the demo's walk existed
    assert digest() == "0c409d6d1b5a42d66bd59193c11606b365a35a0c3d85d7d8f4c820f9141aa327"
    for _ in range(3):
        fake.tick()
    assert digest() == "215e681b63142624d397babab78037a6138467388a80d53b17cc574ec65fa717"
    assert fake.tick_seconds is None and fake._ticker is None
