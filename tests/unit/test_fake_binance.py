"""The local Binance fake (inventory/devtools/binance.py): a second price source over the CoinGecko fake's prices."""

from __future__ import annotations

import json
import re
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
import requests

from inventory.devtools.binance import FakeBinance, Listing
from inventory.devtools.coingecko import FakeCoinGecko, generate_catalog

E8 = Decimal("1E-8")
EIGHT_DECIMALS = re.compile(r"^-?\d+\.\d{8}$")


def load(response: requests.Response):
    return json.loads(response.text, parse_float=Decimal)


def q8(d: Decimal) -> Decimal:
    return d.quantize(E8, rounding=ROUND_HALF_EVEN)


@pytest.fixture
def cg():
    with FakeCoinGecko(generate_catalog(100)) as fake:
        yield fake


@pytest.fixture
def bn(cg):
    with FakeBinance(cg) as fake:
        yield fake


def prices(bn: FakeBinance, **params) -> requests.Response:
    return requests.get(bn.url + "/api/v3/ticker/price", params=params, timeout=5)


def compact(symbols: list[str]) -> str:
    return json.dumps(symbols, separators=(",", ":"))


def test_ping_and_the_url_has_no_path(bn):
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", bn.url) and bn.url.endswith(f":{bn.port}")
    answer = requests.get(bn.url + "/api/v3/ping", timeout=5)
    assert answer.status_code == 200 and answer.json() == {}
    missing = requests.get(bn.url + "/api/v3/nothing", timeout=5)
    assert missing.status_code == 404 and set(missing.json()) == {"code", "msg"}


def test_all_pairs_are_listed_with_prices_as_strings_of_eight_decimals(cg, bn):
    # WHEN every price is asked for
    answer = prices(bn)
    # THEN it is a list of {symbol, price} with the price a string of exactly 8 decimals, as Binance sends
    assert answer.status_code == 200
    rows = answer.json()
    assert isinstance(rows, list) and rows
    assert all(set(row) == {"symbol", "price"} for row in rows)
    assert all(isinstance(row["price"], str) and EIGHT_DECIMALS.match(row["price"]) for row in rows)
    symbols = [row["symbol"] for row in rows]
    assert symbols[:2] == ["BTCUSDT", "ETHUSDT"] and len(set(symbols)) == len(symbols)
    # the 60 highest-ranked coins with a price and a plain ticker, against USDT; tether is only the quote
    assert len(bn.listings) == 60
    assert all(s.endswith("USDT") for s in bn.listings) and "USDTUSDT" not in bn.listings
    assert bn.listings["BTCUSDT"] == Listing("BTCUSDT", "BTC", "USDT", "bitcoin", "tether")
    for unplain in ("FIGR_HELOCUSDT", "BSC-USDUSDT", "LONGTICKERXYUSDT", "NOPXUSDT"):
        assert unplain not in bn.listings
    # a price below 1e-8 USDT is not served rather than served as 0
    assert "MICROUSDT" in bn.listings and "MICROUSDT" not in symbols
    assert all(Decimal(row["price"]) > 0 for row in rows)


def test_a_price_follows_coingecko_and_is_divided_by_the_quote_coins_price_exactly(cg, bn):
    # GIVEN CoinGecko's BTC and USDT prices
    cg.set_price("bitcoin", "87012.34")
    cg.set_price("tether", "1")
    assert prices(bn, symbol="BTCUSDT").json() == {"symbol": "BTCUSDT", "price": "87012.34000000"}
    # WHEN both move on CoinGecko
    cg.set_price("bitcoin", "90000.12")
    cg.set_price("tether", "0.9987")
    # THEN Binance's next answer is BTC's USD price in USDT, to 8 decimals (half even)
    expected = q8(Decimal("90000.12") / Decimal("0.9987"))
    assert prices(bn, symbol="BTCUSDT").json()["price"] == format(expected, "f") == "90117.27245419"
    assert bn.price_of("BTCUSDT") == expected
    # and a pair quoted in USD (no quote coin) is the USD price itself
    bn.list_pair("bitcoin", "BTC", "USD")
    assert prices(bn, symbol="BTCUSD").json()["price"] == "90000.12000000"
    # a coin without a price leaves its pair out
    cg.set_price("ethereum", None)
    assert "ETHUSDT" not in {row["symbol"] for row in prices(bn).json()}
    assert bn.price_of("ETHUSDT") is None


def test_a_walk_moves_binance_with_coingecko(cg, bn):
    before = bn.price_of("BTCUSDT")
    cg.walk()
    row = next(r for r in cg.coins if r["id"] == "bitcoin")
    tether = next(r for r in cg.coins if r["id"] == "tether")
    after = Decimal(prices(bn, symbol="BTCUSDT").json()["price"])
    assert after != before and after == q8(row["current_price"] / tether["current_price"])


def test_a_skew_of_250_bp_quotes_exactly_2_5_percent_more(cg, bn):
    cg.set_price("tether", "1")
    cg.set_price("ethereum", "2912.3457")
    bn.skew("ethereum", 250)
    assert prices(bn, symbol="ETHUSDT").json()["price"] == format(q8(Decimal("2912.3457") * Decimal("1.025")), "f")
    assert prices(bn, symbol="ETHUSDT").json()["price"] == "2985.15434250"
    bn.skew("ethereum", Decimal(-100))
    assert Decimal(prices(bn, symbol="ETHUSDT").json()["price"]) == q8(Decimal("2912.3457") * Decimal("0.99"))
    # other coins are not skewed, and 0 or None removes the skew
    assert bn.price_of("BTCUSDT") == q8(next(r for r in cg.coins if r["id"] == "bitcoin")["current_price"])
    bn.skew("ethereum", 0)
    assert bn.price_of("ETHUSDT") == Decimal("2912.3457")
    bn.skew("ethereum", 10)
    bn.skew("ethereum", None)
    assert bn.skews == {}


def test_a_shared_ticker_is_listed_only_for_the_higher_ranked_coin(cg, bn):
    # GIVEN two coins called WETH (weth rank 7, binance-peg-weth rank 8) and two called USDC
    ranks = {r["id"]: r["market_cap_rank"] for r in cg.coins}
    assert ranks["weth"] < ranks["binance-peg-weth"]
    # THEN each ticker is one pair, of the higher-ranked coin
    assert bn.listings["WETHUSDT"].coin_id == "weth"
    assert bn.listings["USDCUSDT"].coin_id == "usd-coin"
    assert [x.coin_id for x in bn.listings.values()].count("binance-peg-weth") == 0


def test_the_first_listed_coins_are_the_top_ranked_ones(cg):
    with FakeBinance(cg, listed_top=3) as small:
        assert list(small.listings) == ["BTCUSDT", "ETHUSDT", "USDCUSDT"]
        assert len(small.quotes()) == 3


def test_list_pair_can_list_a_ticker_as_another_coin(cg, bn):
    # GIVEN a WETHUSDT pair that is Binance's listing of another coin than the service's WETH
    cg.set_price("weth", "2900")
    cg.set_price("binance-peg-weth", "2500")
    cg.set_price("tether", "1")
    listing = bn.list_pair("binance-peg-weth", "weth", "usdt", "tether")
    # THEN the pair replaces the old one and follows the other coin's price
    assert listing == Listing("WETHUSDT", "WETH", "USDT", "binance-peg-weth", "tether")
    assert bn.listings["WETHUSDT"] is listing
    assert prices(bn, symbol="WETHUSDT").json()["price"] == "2500.00000000"
    # and CoinGecko's exchange mapping says which coin that ticker is
    tickers = requests.get(cg.url + "/exchanges/binance/tickers", params={"coin_ids": "weth,binance-peg-weth"},
                           timeout=5).json()["tickers"]
    assert [(t["base"], t["coin_id"]) for t in tickers] == [("WETH", "binance-peg-weth")]
    # delist removes a pair
    bn.delist("WETHUSDT")
    assert prices(bn, symbol="WETHUSDT").status_code == 400
    with pytest.raises(KeyError):
        bn.delist("WETHUSDT")
    with pytest.raises(ValueError):
        bn.list_pair("bitcoin", "btc usd", "x")


def test_one_symbol_some_symbols_and_an_invalid_symbol(bn):
    one = prices(bn, symbol="ETHUSDT")
    assert one.status_code == 200 and set(one.json()) == {"symbol", "price"}
    some = prices(bn, symbols=compact(["ETHUSDT", "BTCUSDT"]))
    assert some.status_code == 200
    assert sorted(row["symbol"] for row in some.json()) == ["BTCUSDT", "ETHUSDT"]
    for params in ({"symbol": "NOPEUSDT"}, {"symbols": compact(["BTCUSDT", "NOPEUSDT"])}):
        invalid = prices(bn, **params)
        assert invalid.status_code == 400 and invalid.json() == {"code": -1121, "msg": "Invalid symbol."}
    # Binance refuses what its pattern does not allow: a lower-case symbol, JSON with spaces
    assert prices(bn, symbol="btcusdt").json()["code"] == -1100
    spaced = prices(bn, symbols=json.dumps(["BTCUSDT", "ETHUSDT"]))
    assert spaced.status_code == 400 and spaced.json()["code"] == -1100 and "'symbols'" in spaced.json()["msg"]
    both = prices(bn, symbol="BTCUSDT", symbols=compact(["ETHUSDT"]))
    assert both.status_code == 400 and both.json()["code"] == -1101


def test_the_24hr_ticker(cg, bn):
    cg.set_price("tether", "1")
    rows = requests.get(bn.url + "/api/v3/ticker/24hr", timeout=5).json()
    assert [row["symbol"] for row in rows] == [row["symbol"] for row in prices(bn).json()]
    btc = next(row for row in rows if row["symbol"] == "BTCUSDT")
    for key in ("lastPrice", "openPrice", "highPrice", "lowPrice", "volume", "quoteVolume", "priceChange"):
        assert isinstance(btc[key], str) and EIGHT_DECIMALS.match(btc[key]), key
    assert btc["closeTime"] - btc["openTime"] == 86_400_000 and isinstance(btc["count"], int) and btc["count"] > 0
    assert Decimal(btc["lowPrice"]) <= Decimal(btc["lastPrice"]) <= Decimal(btc["highPrice"])
    assert Decimal(btc["lastPrice"]) == bn.price_of("BTCUSDT")
    assert Decimal(btc["volume"]) > 0 and Decimal(btc["quoteVolume"]) > Decimal(btc["volume"])
    one = requests.get(bn.url + "/api/v3/ticker/24hr", params={"symbol": "ETHUSDT"}, timeout=5).json()
    assert isinstance(one, dict) and one["symbol"] == "ETHUSDT"


def test_429_with_retry_after_and_451_bodies(bn):
    bn.set_fault("429", count=1, retry_after=7)
    limited = prices(bn)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    assert limited.json() == {
        "code": -1003,
        "msg": "Too many requests; current limit of IP(127.0.0.1) is 6000 requests per minute. "
               "Please use WebSocket Streams for live updates to avoid polling the API."}
    assert prices(bn).status_code == 200  # count=1: once
    bn.set_fault("451")
    for _ in range(2):
        restricted = prices(bn)
        assert restricted.status_code == 451 and "Retry-After" not in restricted.headers
        assert restricted.json() == {
            "code": 0,
            "msg": "Service unavailable from a restricted location according to 'b. Eligibility' in "
                   "https://www.binance.com/en/terms. Please contact customer service if you believe you "
                   "received this message in error."}
    bn.set_fault("418", retry_after=60, count=1)
    banned = prices(bn)
    assert banned.status_code == 418 and banned.headers["Retry-After"] == "60"
    assert banned.json()["code"] == -1003 and "banned until" in banned.json()["msg"]
    with pytest.raises(ValueError):
        bn.set_fault("bad_rows")  # a CoinGecko fault, not a Binance one
    assert bn.count("/ticker/price") == 5 and bn.count() == 5 and bn.count("/ping") == 0
    bn.reset_log()
    assert bn.count() == 0 and bn.requests == []


def test_a_fault_of_one_source_does_not_touch_the_other(cg, bn):
    # GIVEN Binance failing
    bn.set_fault("503")
    # THEN CoinGecko answers, and its log does not see Binance's requests
    assert prices(bn).status_code == 503
    markets = requests.get(cg.url + "/coins/markets", params={"vs_currency": "usd"}, timeout=5)
    assert markets.status_code == 200 and cg.count() == 1 and cg.count("/ticker/price") == 0
    # GIVEN CoinGecko failing instead
    bn.set_fault(None)
    cg.set_fault("429", retry_after=3)
    # THEN Binance answers, CoinGecko's exchange tickers get CoinGecko's fault
    assert prices(bn).status_code == 200 and prices(bn, symbol="BTCUSDT").status_code == 200
    assert requests.get(cg.url + "/coins/markets", params={"vs_currency": "usd"}, timeout=5).status_code == 429
    assert requests.get(cg.url + "/exchanges/binance/tickers", timeout=5).status_code == 429
    assert bn.count() == 3


def test_coingecko_maps_the_exchange_tickers_to_coin_ids(cg, bn):
    cg.set_price("tether", "0.9990")
    answer = requests.get(cg.url + "/exchanges/binance/tickers", params={"coin_ids": "bitcoin, ethereum"}, timeout=5)
    assert answer.status_code == 200
    body = load(answer)
    assert body["name"] == "Binance"
    btc = body["tickers"][0]
    assert [t["coin_id"] for t in body["tickers"]] == ["bitcoin", "ethereum"]
    assert set(btc) == {
        "base", "target", "market", "last", "volume", "converted_last", "converted_volume", "trust_score",
        "bid_ask_spread_percentage", "timestamp", "last_traded_at", "last_fetch_at", "is_anomaly", "is_stale",
        "trade_url", "token_info_url", "coin_id", "target_coin_id", "coin_mcap_usd"}
    assert btc["base"] == "BTC" and btc["target"] == "USDT" and btc["target_coin_id"] == "tether"
    assert btc["market"] == {"name": "Binance", "identifier": "binance", "has_trading_incentive": False}
    assert btc["last"] == bn.price_of("BTCUSDT")
    usd = next(r for r in cg.coins if r["id"] == "bitcoin")["current_price"]
    assert btc["converted_last"]["usd"] == usd and btc["converted_last"]["btc"] == 1
    assert set(btc["converted_volume"]) == {"btc", "eth", "usd"} and btc["converted_volume"]["usd"] > 0
    assert btc["trust_score"] == "green" and btc["is_anomaly"] is False and btc["is_stale"] is False
    assert btc["trade_url"] == "https://www.binance.com/en/trade/BTC_USDT" and btc["token_info_url"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", btc["timestamp"])
    assert btc["coin_mcap_usd"] == next(r for r in cg.coins if r["id"] == "bitcoin")["market_cap"]
    # the CoinGecko path is logged by CoinGecko, not by the exchange
    assert cg.count("/exchanges/binance/tickers") == 1 and bn.count("/tickers") == 0
    # an unknown exchange
    unknown = requests.get(cg.url + "/exchanges/kraken/tickers", timeout=5)
    assert unknown.status_code == 404 and unknown.json() == {"error": "exchange not found"}


def test_exchange_tickers_come_100_a_page():
    # GIVEN an exchange listing 150 pairs (149 of them priced: micro-price-coin is below 1e-8)
    with FakeCoinGecko(generate_catalog(250)) as cg, FakeBinance(cg, listed_top=150) as bn:
        served = [row["symbol"] for row in prices(bn).json()]
        assert len(bn.listings) == 150 and len(served) == 149

        def page(n: int | None) -> list[dict]:
            params = {} if n is None else {"page": n}
            answer = requests.get(cg.url + "/exchanges/binance/tickers", params=params, timeout=5)
            assert answer.status_code == 200
            return answer.json()["tickers"]

        first, second, third = page(None), page(2), page(3)
        # THEN the pages split them 100 + 49, in the exchange's order, and page 1 is the default
        assert len(first) == 100 and len(second) == 49 and third == []
        assert [t["coin_id"] for t in page(1)] == [t["coin_id"] for t in first]
        assert [t["base"] + t["target"] for t in first + second] == served
        assert requests.get(cg.url + "/exchanges/binance/tickers", params={"page": 0}, timeout=5).status_code == 400
        # the coin_ids filter applies before paging
        late = [t["coin_id"] for t in second[-2:]]
        filtered = requests.get(cg.url + "/exchanges/binance/tickers", params={"coin_ids": ",".join(late)},
                                timeout=5).json()["tickers"]
        assert [t["coin_id"] for t in filtered] == late
