"""A local fake of the CoinGecko v3 API, for tests, benchmarks and `make demo`.

Standard library only (plus the seed catalog and taxonomy of this package, for
category membership); never talks to the real internet.

    with FakeCoinGecko() as cg:            # 100 generated coins
        requests.get(cg.url + "/coins/markets", params={"vs_currency": "usd"})
        cg.set_fault("429", count=1, retry_after=2)
        assert cg.count("/coins/markets") == 1

Standalone (benchmarks)::

    python -m inventory.devtools.coingecko --port 8765 --coins 10000

    python -m inventory.devtools.coingecko --port 8765 --binance-port 8766   # and a FakeBinance

Serves ``/api/v3/ping``, ``/api/v3/coins/markets`` (with the ``category=``
filter), ``/api/v3/coins/categories/list``,
``/api/v3/coins/{id}/market_chart`` and ``/api/v3/exchanges/{id}/tickers``
(the ``/api/v3`` prefix is optional).  The last serves, 100 a page and
``coin_ids=`` filtered, the pairs of an exchange fake attached with
``attach_exchange`` (a ``FakeBinance``, ``inventory/devtools/binance.py``,
attaches itself as ``binance``), at that exchange's own prices: how a second
price source's tickers map to CoinGecko coin ids.
Category membership is deterministic: the seeded real coins are in the
CoinGecko categories of their hand labels (inventory/data/seed_catalog.json),
other coins in at most one category chosen by a hash of their id.
All numbers are held as ``Decimal``/``int`` and written to JSON exactly
(``str(Decimal)``), so a client parsing with ``parse_float=Decimal`` gets the
very same values back.

Reference levels and a random walk (``make demo``)::

    levels = reference_levels()            # inventory/data/market_levels_2025.json
    fake = FakeCoinGecko(generate_catalog(150, base=identities, levels=levels),
                         tick_seconds=20, pegged=pegged_ids(levels)).start()

puts the coins of ``levels`` at their recorded price, market cap, volume and
24h change (supply = market cap / price), and moves every price one step of
``walk()`` every ``tick_seconds`` on a daemon thread that ``stop()`` ends.
Without ``levels`` and ``tick_seconds`` nothing of this happens: the catalog
and ``tick()`` are what the tests have always had.

Faults (``set_fault``) apply to *every* request, whatever its path (but not
to an attached exchange's own API, which has its own), and each request
consumes one unit of ``count``.  Faults that only make sense for a
list endpoint (``object``, ``bad_rows``) change ``/coins/markets`` only; on
other paths they are consumed but the answer is normal.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import re
import signal
import socket
import sys
import threading
import time
import zlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import TCPServer
from typing import TYPE_CHECKING, Self
from urllib.parse import parse_qsl, unquote, urlsplit

if TYPE_CHECKING:
    from .binance import FakeBinance

__all__ = ["FAULTS", "FakeCoinGecko", "dumps", "generate_catalog", "pegged_ids", "reference_levels"]

FAULTS = frozenset(
    {"429", "500", "502", "503", "slow", "truncated", "html", "object", "bad_rows", "401"}
)
PRICE_CHANGE_WINDOWS = ("1h", "24h", "7d", "14d", "30d", "200d", "1y")
API_PREFIX = "/api/v3"

RATE_LIMIT_BODY = {
    "status": {
        "error_code": 429,
        "error_message": "You've exceeded the Rate Limit. Please visit "
        "https://www.coingecko.com/en/api/pricing to subscribe to our API plans "
        "for higher rate limits.",
    }
}
BAD_KEY_BODY = {
    "status": {
        "error_code": 10011,
        "error_message": "If you are using Demo API key, please change your root "
        "URL from pro-api.coingecko.com to api.coingecko.com",
    }
}
HTML_BODY = (
    "<!DOCTYPE html><html><head><title>Just a moment...</title></head>"
    "<body><h1>Checking your browser before accessing api.coingecko.com</h1>"
    "</body></html>"
)
BAD_GATEWAY_HTML = (
    "<html><head><title>502 Bad Gateway</title></head><body>"
    "<center><h1>502 Bad Gateway</h1></center><hr><center>cloudflare</center>"
    "</body></html>"
)


# --------------------------------------------------------------------------
# JSON with exact Decimals
# --------------------------------------------------------------------------

def _encode(obj, out: list) -> None:
    if obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif isinstance(obj, str):
        out.append(json.dumps(obj, ensure_ascii=False))
    elif isinstance(obj, Decimal):
        if not obj.is_finite():
            raise ValueError(f"cannot encode non-finite Decimal {obj!r} as JSON")
        out.append(str(obj))  # e.g. "0.00001234", "1.234E-9": both valid JSON
    elif isinstance(obj, int):
        out.append(int.__repr__(obj))
    elif isinstance(obj, float):
        out.append(json.dumps(obj))  # not produced by the fake; allowed for custom rows
    elif isinstance(obj, dict):
        out.append("{")
        first = True
        for k, v in obj.items():
            if not first:
                out.append(",")
            first = False
            out.append(json.dumps(str(k), ensure_ascii=False))
            out.append(":")
            _encode(v, out)
        out.append("}")
    elif isinstance(obj, (list, tuple)):
        out.append("[")
        for i, v in enumerate(obj):
            if i:
                out.append(",")
            _encode(v, out)
        out.append("]")
    else:
        raise TypeError(f"cannot encode {type(obj).__name__} as JSON")


def dumps(obj) -> str:
    """JSON text for ``obj``; ``Decimal`` values are written exactly via ``str()``."""
    out: list = []
    _encode(obj, out)
    return "".join(out)


# --------------------------------------------------------------------------
# Catalog generation
# --------------------------------------------------------------------------

def _iso(dt: datetime) -> str:
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _iso_now() -> str:
    return _iso(datetime.now(UTC))


def _is_num(v) -> bool:
    return isinstance(v, (int, Decimal)) and not isinstance(v, bool)


def _unit(d: Decimal) -> Decimal:
    """The smallest step at the precision of ``d`` (at least cents)."""
    return Decimal(1).scaleb(min(d.as_tuple().exponent, -2))


def _plain(d: Decimal) -> Decimal:
    """``d`` without trailing zeros, never in exponent form for a whole number (87000, not 8.7E+4)."""
    d = d.normalize()
    return d.quantize(Decimal(1)) if d.as_tuple().exponent > 0 else d


def _significant(d: Decimal, digits: int = 8) -> Decimal:
    """``d`` rounded to ``digits`` significant digits, as CoinGecko's converted figures are."""
    if not d:
        return Decimal(0)
    return _plain(d.quantize(Decimal(1).scaleb(d.adjusted() - digits + 1)))


def _moved(price: Decimal, step: Decimal, digits: int = 4) -> Decimal:
    """``price * (1 + step)`` at the price's own precision but with at least
    ``digits`` significant digits; never the same price, never zero or less."""
    unit = Decimal(1).scaleb(min(price.as_tuple().exponent, price.adjusted() - (digits - 1)))
    new = (price * (1 + step)).quantize(unit)
    if new == price:
        new = price + unit if step >= 0 else price - unit
    if new <= 0:
        new = price + unit
    return new


# Built-in identities for base=None: real-looking, including the awkward cases
# (duplicate tickers, tickers with - and _, a 12-char ticker, punctuation and
# non-ASCII in names, tiny prices, a null price).  "_px" is a reference price.
_SPECIALS = [
    {"id": "bitcoin", "symbol": "btc", "name": "Bitcoin", "_px": "87000"},
    {"id": "ethereum", "symbol": "eth", "name": "Ethereum", "_px": "2900"},
    {"id": "tether", "symbol": "usdt", "name": "Tether", "_px": "1"},
    {"id": "usd-coin", "symbol": "usdc", "name": "USDC", "_px": "1"},
    {"id": "figure-heloc", "symbol": "figr_heloc", "name": "Figure Heloc", "_px": "1.03"},
    {"id": "binance-bridged-usdt-bnb-smart-chain", "symbol": "bsc-usd",
     "name": "Binance Bridged USDT (BNB Smart Chain)", "_px": "1"},
    {"id": "weth", "symbol": "weth", "name": "WETH", "_px": "2900"},
    {"id": "binance-peg-weth", "symbol": "weth", "name": "Binance-Peg WETH", "_px": "2900"},
    {"id": "binance-bridged-usdc-bnb-smart-chain", "symbol": "usdc",
     "name": "Binance Bridged USDC (BNB Smart Chain)", "_px": "1"},
]
# Appended after the real identities when base is given, and part of the
# built-in list otherwise.
_QUIRKS = [
    {"id": "long-ticker-token", "symbol": "longtickerxy",
     "name": "L\u00f3ng T\u00efcker Token (v2.0) \u2013 \"Bridged\" & Wrapped", "_px": "3.5"},
    {"id": "tiny-price-coin", "symbol": "tiny", "name": "Tiny Price Coin",
     "_px_exact": Decimal("0.00001234")},
    {"id": "micro-price-coin", "symbol": "micro", "name": "Micro Price Coin",
     "_px_exact": Decimal("0.000000001234")},
    {"id": "no-price-coin", "symbol": "nopx", "name": "No Price Coin", "_px_null": True},
]
_UNRANKED = {"id": "unranked-coin", "symbol": "unrk", "name": "Unranked Coin", "_unranked": True}

_BIG_CAP = Decimal(2 * 10**12)
_CAP_EXP = Decimal("1.2")


def _market_cap_for_rank(rank: int, big_cap: Decimal = _BIG_CAP) -> int:
    # strictly decreasing in rank for ranks up to well beyond 100 000
    return int(big_cap / (Decimal(rank) ** _CAP_EXP))


def _price_for(ident: dict, rng: random.Random):
    if ident.get("_px_null"):
        return None
    if "_px_exact" in ident:
        return ident["_px_exact"]
    ref = ident.get("_px")
    if ref is None and "usd" in str(ident.get("symbol", "")).lower():
        ref = "1"
    if ref == "1":  # stablecoin: 0.9990 .. 1.0010
        return Decimal(rng.randint(9990, 10010)).scaleb(-4)
    if ref is not None:
        ref_d = Decimal(ref)
        jitter = Decimal(rng.randint(-300, 300)) / Decimal(10000)
        unit = Decimal("0.01") if ref_d >= 1 else Decimal("0.0001")
        return (ref_d * (1 + jitter)).quantize(unit)
    # synthetic: 4 significant digits, 1e-6 .. 1e4
    mantissa = rng.randint(1000, 9999)
    exp = rng.randint(-9, 1)
    return Decimal(mantissa).scaleb(exp)


def _dec(value) -> Decimal:
    """A figure of a reference level as an exact Decimal (a float goes through its shortest repr)."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _level_figures(level: dict, rng: random.Random) -> tuple:
    """(price, market_cap, volume, pct_24h, mc_pct, circulating, total_supply, max_supply) of a reference level."""
    price = _dec(level["price"])
    market_cap = int(level["market_cap"])
    volume = int(level.get("total_volume", market_cap // 20))
    pct_24h = level.get("price_change_percentage_24h")
    if pct_24h is None:  # a day's change of a few percent, a pegged coin's of a few hundredths
        spread = 5000 if level.get("pegged") else 500000
        pct_24h = Decimal(rng.randint(-spread, spread)).scaleb(-5)
    pct_24h = _dec(pct_24h)
    if level.get("circulating_supply") is not None:
        circulating = _dec(level["circulating_supply"])
    else:
        circulating = (Decimal(market_cap) / price).quantize(Decimal("0.0001"))
    total_supply = _dec(level["total_supply"]) if level.get("total_supply") is not None else circulating
    max_supply = _dec(level["max_supply"]) if level.get("max_supply") is not None else None
    return price, market_cap, volume, pct_24h, pct_24h, circulating, total_supply, max_supply


def _make_row(ident: dict, rank, rng: random.Random, now: str, level: dict | None = None,
              big_cap: Decimal = _BIG_CAP) -> dict:
    coin_id = ident["id"]
    unranked = rank is None
    cap_rank = rank if rank is not None else 10**6
    if level is not None:
        price, market_cap, volume, pct_24h, mc_pct, circulating, total_supply, max_supply = \
            _level_figures(level, rng)
    else:
        price = _price_for(ident, rng)
        market_cap = 0 if unranked else _market_cap_for_rank(cap_rank, big_cap)
        volume = max(1, _market_cap_for_rank(cap_rank, big_cap) * rng.randint(5, 300) // 1000)
        pct_24h = Decimal(rng.randint(-1500000, 1500000)).scaleb(-5)  # -15.00000 .. 15.00000
        mc_pct = Decimal(rng.randint(-1500000, 1500000)).scaleb(-5)
        ref_for_supply = price if (price is not None and price > 0) else Decimal("0.5")
        circulating = (Decimal(_market_cap_for_rank(cap_rank, big_cap)) / ref_for_supply).quantize(Decimal("0.1"))
        if rng.random() < 0.5:
            total_supply = circulating
            max_supply = circulating if rng.random() < 0.5 else None
        else:
            total_supply = (circulating * Decimal(rng.randint(100, 300)) / 100).quantize(Decimal("0.1"))
            max_supply = None if rng.random() < 0.5 else total_supply
    fdv = None
    if price is not None and not unranked and total_supply is not None:
        fdv = int(total_supply * price)
    if price is not None:
        unit = _unit(price)
        high = (price * (1 + abs(pct_24h) / 100 + Decimal("0.001"))).quantize(unit)
        low = (price * (1 - abs(pct_24h) / 100 - Decimal("0.001"))).quantize(unit)
        change = (price * pct_24h / (100 + pct_24h)).quantize(Decimal(1).scaleb(unit.as_tuple().exponent - 4))
        ath = (price * Decimal(rng.randint(101, 300)) / 100).quantize(unit)
        atl = (price * Decimal(rng.randint(1, 99)) / 100).quantize(Decimal(1).scaleb(unit.as_tuple().exponent - 2))
        ath_pct = ((price - ath) / ath * 100).quantize(Decimal("0.00001"))
        atl_pct = ((price - atl) / atl * 100).quantize(Decimal("0.00001"))
    else:
        high = low = change = ath = atl = ath_pct = atl_pct = None
    mc_change = None if unranked else (Decimal(market_cap) * mc_pct / (100 + mc_pct)).quantize(Decimal("0.01"))
    epoch = datetime(2013, 4, 28, tzinfo=UTC)
    atl_date = epoch + timedelta(days=rng.randint(0, 2500), seconds=rng.randint(0, 86399))
    ath_date = atl_date + timedelta(days=rng.randint(1, 1500), seconds=rng.randint(0, 86399),
                                    milliseconds=rng.randint(0, 999))
    roi = None
    if rng.random() < 0.1 and price is not None:
        times = Decimal(rng.randint(-99000, 5000000)).scaleb(-5)
        roi = {"times": times, "currency": "usd", "percentage": times * 100}
    num = ident.get("_img", abs(zlib.crc32(coin_id.encode())) % 100000)
    return {
        "id": coin_id,
        "symbol": ident["symbol"],
        "name": ident["name"],
        "image": f"https://coin-images.coingecko.com/coins/images/{num}/large/{coin_id}.png?1696501400",
        "current_price": price,
        "market_cap": market_cap,
        "market_cap_rank": rank,
        "fully_diluted_valuation": fdv,
        "total_volume": volume,
        "high_24h": high,
        "low_24h": low,
        "price_change_24h": change,
        "price_change_percentage_24h": None if price is None else pct_24h,
        "market_cap_change_24h": mc_change,
        "market_cap_change_percentage_24h": None if unranked else mc_pct,
        "circulating_supply": circulating,
        "total_supply": total_supply,
        "max_supply": max_supply,
        "ath": ath,
        "ath_change_percentage": ath_pct,
        "ath_date": _iso(ath_date),
        "atl": atl,
        "atl_change_percentage": atl_pct,
        "atl_date": _iso(atl_date),
        "roi": roi,
        "last_updated": now,
    }


def generate_catalog(n: int, *, seed: int = 42, base: list[dict] | None = None,
                     levels: dict[str, dict] | None = None) -> list[dict]:
    """``n`` market rows in ``/coins/markets`` shape, deterministic by ``seed``.

    ``base`` (optional) is a list of identities ``{"id", "symbol", "name",
    "market_cap_rank"}`` such as the content of ``top-coins-2025.json``; they
    come first, keeping their ranks.  Then come the quirk coins
    (``long-ticker-token``/``longtickerxy``, ``tiny-price-coin`` at
    0.00001234, ``micro-price-coin`` at 0.000000001234, ``no-price-coin``
    with ``current_price`` null), then synthetic ``coin-00123``/``c123``
    padding; the last row is always ``unranked-coin`` (rank null, market cap
    0).  If ``n`` is too small for all of that, ``base`` is cut short so the
    quirks still fit.

    With ``base=None`` the awkward real-world identities are built in:
    bitcoin, ethereum, tether, usd-coin (usdc), figure-heloc (figr_heloc),
    binance-bridged-usdt-bnb-smart-chain (bsc-usd), weth and
    binance-peg-weth (both ``weth``), binance-bridged-usdc-bnb-smart-chain
    (second ``usdc``), then the quirk coins (ranks 10-13); every quirk is
    present when ``n >= 14``.

    ``levels`` (optional, e.g. ``reference_levels()``) maps coin ids to
    reference figures ``{"price", "market_cap", "total_volume"}`` and
    optionally ``price_change_percentage_24h``, ``circulating_supply`` (else
    market cap / price), ``total_supply``, ``max_supply``, ``pegged``; those
    coins get them instead of made-up figures, and the made-up market caps of
    the other ranked coins shrink so they stay below the smallest reference
    cap.  Their market caps then descend only roughly, as the recorded ones do.

    Ranks ascend with position and, without ``levels``, market caps (ints)
    descend.  All numbers are ``Decimal`` or ``int``, never float.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    if n == 0:
        return []
    rng = random.Random(seed)
    now = _iso_now()
    if base is None:
        head = [dict(x) for x in _SPECIALS + _QUIRKS]
    else:
        room = max(0, n - 1 - len(_QUIRKS))
        head = [
            {"id": b["id"], "symbol": b["symbol"], "name": b["name"],
             "_rank": b.get("market_cap_rank")}
            for b in base[:room]
        ] + [dict(x) for x in _QUIRKS]
    idents = head[: max(n - 1, 1)]
    levels = levels or {}
    ranks: list[int] = []
    prev_rank = 0
    for ident in idents:
        given = ident.get("_rank")
        prev_rank = given if isinstance(given, int) and given > prev_rank else prev_rank + 1
        ranks.append(prev_rank)
    big_cap = _BIG_CAP
    leveled = [(rank, int(levels[i["id"]]["market_cap"])) for i, rank in zip(idents, ranks) if i["id"] in levels]
    if leveled:  # the made-up caps continue below the smallest reference cap
        big_cap = min(cap for _, cap in leveled) * Decimal(max(rank for rank, _ in leveled)) ** _CAP_EXP
    rows: list[dict] = [_make_row(ident, rank, rng, now, levels.get(ident["id"]), big_cap)
                        for ident, rank in zip(idents, ranks)]
    while len(rows) < n - 1:
        rank = prev_rank + 1
        prev_rank = rank
        ident = {"id": f"coin-{rank:05d}", "symbol": f"c{rank}", "name": f"Coin {rank}"}
        rows.append(_make_row(ident, rank, rng, now, None, big_cap))
    if n >= 2:
        rows.append(_make_row(dict(_UNRANKED), None, rng, now, None, big_cap))
    return rows[:n]


_LEVELS_FILE = Path(__file__).resolve().parent.parent / "data" / "market_levels_2025.json"


def reference_levels(path: str | Path | None = None) -> dict[str, dict]:
    """Coin id -> reference figures (``generate_catalog(levels=)``), numbers as Decimal/int.

    From ``inventory/data/market_levels_2025.json`` unless ``path`` names
    another file of that shape (its ``source`` says where the figures come from).
    """
    raw = Path(path or _LEVELS_FILE).read_text(encoding="utf-8")
    return json.loads(raw, parse_float=Decimal)["coins"]


def pegged_ids(levels: dict[str, dict]) -> frozenset[str]:
    """The coins of ``levels`` that hold a peg: ``walk()`` moves them far less."""
    return frozenset(cid for cid, level in levels.items() if level.get("pegged"))


# --------------------------------------------------------------------------
# Deterministic derived series
# --------------------------------------------------------------------------

def _noise(key: str, spread: int) -> Decimal:
    """Deterministic value in [-spread, spread] / 10000 for ``key``."""
    return Decimal(zlib.crc32(key.encode()) % (2 * spread + 1) - spread) / Decimal(10000)


_WINDOW_SPREAD = {"1h": 2, "24h": 15, "7d": 30, "14d": 40, "30d": 60, "200d": 90, "1y": 95}


def _pct_change(coin_id: str, window: str) -> Decimal:
    spread = _WINDOW_SPREAD[window] * 100000  # in 1e-5 percent
    return Decimal(zlib.crc32(f"{coin_id}|pct|{window}".encode()) % (2 * spread + 1) - spread).scaleb(-5)


def _sparkline(coin_id: str, price) -> list:
    if not _is_num(price):
        return []
    price = Decimal(price)
    unit = _unit(price)
    pts = [(price * (1 + _noise(f"{coin_id}|spark|{i}", 500))).quantize(unit) for i in range(167)]
    pts.append(price)
    return pts


# --------------------------------------------------------------------------
# Categories
# --------------------------------------------------------------------------

# CoinGecko category ids and names (a few of the real list's thousands,
# including ones the service maps to nothing).
CATEGORY_NAMES = {
    "artificial-intelligence": "Artificial Intelligence (AI)",
    "coinbase-ventures-portfolio": "Coinbase Ventures Portfolio",
    "decentralized-finance-defi": "Decentralized Finance (DeFi)",
    "exchange-based-tokens": "Exchange-based Tokens",
    "gaming": "Gaming (GameFi)",
    "gmci-index": "GMCI Index",
    "layer-1": "Layer 1 (L1)",
    "layer-2": "Layer 2 (L2)",
    "liquid-restaking-tokens": "Liquid Restaking Tokens",
    "liquid-staking-tokens": "Liquid Staking Tokens",
    "meme-token": "Meme",
    "oracle": "Oracle",
    "privacy-coins": "Privacy Coins",
    "real-world-assets-rwa": "Real World Assets (RWA)",
    "smart-contract-platform": "Smart Contract Platform",
    "stablecoins": "Stablecoins",
    "tokenized-gold": "Tokenized Gold",
    "wrapped-tokens": "Wrapped-Tokens",
}
# Coins that are not seeded real coins: one of these by a hash of the id (None: in no category).
_HASHED_CATEGORIES = ("meme-token", "decentralized-finance-defi", "gaming", "artificial-intelligence",
                      "layer-2", "layer-1", None, None, None, None)


def _seeded_memberships() -> dict[str, tuple[str, ...]]:
    """Real coin id -> CoinGecko category ids, from the seed catalog's hand labels."""
    from ..domain.taxonomy import SOURCE_CATEGORIES

    seed = Path(__file__).resolve().parent.parent / "data" / "seed_catalog.json"
    found = {}
    for row in json.loads(seed.read_text()):
        ids = [SOURCE_CATEGORIES[slug][0] for slug in row.get("categories", ()) if SOURCE_CATEGORIES.get(slug)]
        if "layer-1" in ids:
            ids.append("smart-contract-platform")  # a category the service does not map
        found[row["id"]] = tuple(ids)
    return found


def default_categories(coin_id: str, seeded: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """The CoinGecko categories a coin is in, deterministically."""
    if coin_id in seeded:
        return seeded[coin_id]
    pick = _HASHED_CATEGORIES[zlib.crc32(f"{coin_id}|category".encode()) % len(_HASHED_CATEGORIES)]
    return (pick,) if pick else ()


# --------------------------------------------------------------------------
# HTTP server
# --------------------------------------------------------------------------

class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, addr, handler, fake: _FakeServer):
        self.fake = fake
        self.conns: set = set()
        self.conns_lock = threading.Lock()
        super().__init__(addr, handler)

    def server_bind(self):
        # HTTPServer.server_bind calls socket.getfqdn(), which can be slow.
        TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
            return
        super().handle_error(request, client_address)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real API
    sys_version = ""
    timeout = 300

    def version_string(self):
        return self.server.fake.server_version

    def setup(self):
        super().setup()
        with self.server.conns_lock:
            self.server.conns.add(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            with self.server.conns_lock:
                self.server.conns.discard(self.connection)

    def log_message(self, format, *args):  # no access log on stderr
        pass

    def do_GET(self):
        self._serve()

    def do_HEAD(self):
        self._serve(head=True)

    def _not_allowed(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self._serve(method_not_allowed=True)

    do_POST = do_PUT = do_DELETE = do_PATCH = _not_allowed

    def _serve(self, head: bool = False, method_not_allowed: bool = False):
        fake: _FakeServer = self.server.fake
        started = time.time()
        split = urlsplit(self.path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            fault = fake._take_fault()
            if fault is not None and fault[0] == "slow" and fault[2] > 0:
                time.sleep(fault[2])
            if method_not_allowed:
                status, extra, ctype, body = 405, [], "json", {"error": "Method Not Allowed"}
            else:
                status, extra, ctype, body = fake._respond(split.path, query, headers, fault)
            if ctype == "json":
                data = dumps(body).encode("utf-8")
                ctype = "application/json; charset=utf-8"
            else:
                data = body.encode("utf-8")
                ctype = "text/html; charset=utf-8"
            if fault is not None and fault[0] == "truncated":
                data = data[: len(data) // 2]
        except Exception as exc:  # noqa: BLE001 - a bug in the fake: answer 500, keep serving
            import traceback
            traceback.print_exc()
            status, extra = 500, []
            data = dumps({"error": f"fake server error: {exc!r}"}).encode()
            ctype = "application/json; charset=utf-8"
        # log before answering, so a client that has its answer sees the entry
        fake._log({"path": split.path, "query": query, "headers": headers,
                   "status": status, "time": started})
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        if fake.cache_control:
            self.send_header("Cache-Control", fake.cache_control)
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(data)


_CHART_RE = re.compile(r"^/coins/([^/]+)/market_chart$")
_TICKERS_RE = re.compile(r"^/exchanges/([^/]+)/tickers$")
TICKERS_PER_PAGE = 100  # what /exchanges/{id}/tickers gives a page, whatever is asked
_UNIT_COINS = {"bitcoin": "btc", "ethereum": "eth"}  # converted_last/converted_volume units besides usd


class _FakeServer:
    """What every local fake API shares: an HTTP server on its own thread
    (``start``/``stop``, a context manager, the same port again after a
    restart), faults (``set_fault``) and a request log (``requests``,
    ``count``, ``reset_log``).

    A subclass answers with ``_respond(path, query, headers, fault)`` ->
    ``(status, extra_headers, "json"|"html", body)`` and names the faults it
    knows in ``faults``.  Each fake has its own faults and log, so one source
    can fail while another answers.
    """

    faults: frozenset = FAULTS
    server_version = "FakeCoinGecko/1.0"
    cache_control: str | None = "max-age=30, public"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0):
        self.lock = threading.RLock()
        self.requests: list[dict] = []
        self.host = host
        self._fault: tuple | None = None  # (name, remaining|None, retry_after|None, delay)
        self._thread: threading.Thread | None = None
        self._server: _Server | None = None
        self._port = port
        self._bind()

    # -- lifecycle ---------------------------------------------------------
    def _bind(self) -> None:
        cls = _Server6 if ":" in self.host else _Server
        self._server = cls((self.host, self._port), _Handler, self)
        self._port = self._server.server_address[1]

    @property
    def port(self) -> int:
        return self._port

    @property
    def _origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}"

    def start(self) -> Self:
        if self._thread is not None and self._thread.is_alive():
            return self
        if self._server is None:  # restarted after stop(): same port
            self._bind()
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1},
                                        name=f"{type(self).__name__}:{self._port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        if thread is not None and thread.is_alive():
            server.shutdown()
        # close kept-alive connections so their handler threads stop answering
        with server.conns_lock:
            conns = list(server.conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __del__(self):
        with contextlib.suppress(Exception):  # at interpreter exit anything may be gone already
            if self._server is not None and self._thread is None:
                self._server.server_close()

    # -- faults and log ------------------------------------------------------
    def set_fault(self, fault: str | None, *, count: int | None = None,
                  retry_after: int | None = None, delay: float = 0.0) -> None:
        """Answer the next ``count`` requests (every one if None) with ``fault``;
        ``None`` or ``count=0`` clears it.  ``retry_after`` is sent as a
        ``Retry-After`` header where the fault has one, ``delay`` is how long
        ``slow`` waits before answering."""
        if fault is not None and fault not in self.faults:
            raise ValueError(f"unknown fault {fault!r}; expected one of {sorted(self.faults)}")
        if count is not None and count < 0:
            raise ValueError("count must be >= 0 or None")
        with self.lock:
            if fault is None or count == 0:
                self._fault = None
            else:
                self._fault = (fault, count, retry_after, float(delay))

    def _take_fault(self):
        with self.lock:
            f = self._fault
            if f is None:
                return None
            name, remaining, retry_after, delay = f
            if remaining is not None:
                remaining -= 1
                self._fault = None if remaining <= 0 else (name, remaining, retry_after, delay)
            return (name, retry_after, delay)

    def _log(self, entry: dict) -> None:
        with self.lock:
            self.requests.append(entry)

    def count(self, path_suffix: str) -> int:
        """Requests so far whose path ends with ``path_suffix`` (a trailing / ignored)."""
        with self.lock:
            return sum(1 for r in self.requests
                       if r["path"].endswith(path_suffix) or r["path"].rstrip("/").endswith(path_suffix))

    def reset_log(self) -> None:
        with self.lock:
            self.requests.clear()

    def _respond(self, raw_path: str, query: dict, headers: dict, fault):
        raise NotImplementedError


class FakeCoinGecko(_FakeServer):
    """A CoinGecko v3 compatible HTTP server on localhost.

    ``coins`` is the live catalog (list of market rows); mutate it only while
    holding ``lock``, or use ``set_price``/``tick``/``walk``.  The rows passed in are
    copied (shallowly), so one generated catalog can feed several fakes.

    ``tick_seconds`` (optional): while the fake is started, a daemon thread
    calls ``walk()`` every that many seconds; ``stop()`` ends it.  ``pegged``:
    coin ids ``walk()`` moves like stablecoins (``pegged_ids(levels)``).

    ``attach_exchange`` (``FakeBinance`` does it itself) serves an exchange's
    pairs at ``/exchanges/{id}/tickers``, as CoinGecko maps exchange tickers
    to its coin ids.
    """

    def __init__(self, coins: list[dict] | None = None, *, host: str = "127.0.0.1", port: int = 0,
                 tick_seconds: float | None = None, pegged=()):
        if tick_seconds is not None and not tick_seconds > 0:
            raise ValueError("tick_seconds must be > 0 or None")
        self.tick_seconds = tick_seconds
        self.pegged = frozenset(pegged)
        self._walks: dict[str, dict] = {}  # coin id -> where its walk started (see walk())
        self._ticker: threading.Thread | None = None
        self._ticker_stop = threading.Event()
        self.coins: list[dict] = [dict(r) for r in (generate_catalog(100) if coins is None else coins)]
        self.require_key: str | None = None
        self._rng = random.Random(0x5EED)
        self._seeded = _seeded_memberships()
        self.memberships: dict[str, tuple[str, ...]] = {}  # coin id -> category ids, over the defaults
        # The real API has answered category queries with 50 rows a page whatever
        # per_page said; set this to mimic it (None: per_page is obeyed).
        self.category_page_size: int | None = None
        self.exchanges: dict[str, FakeBinance] = {}  # exchange id -> exchange (attach_exchange)
        super().__init__(host=host, port=port)

    # -- lifecycle ---------------------------------------------------------
    @property
    def url(self) -> str:
        return self._origin + API_PREFIX

    def start(self) -> Self:
        super().start()
        if self.tick_seconds and (self._ticker is None or not self._ticker.is_alive()):
            self._ticker_stop = threading.Event()
            self._ticker = threading.Thread(target=self._tick_every, args=(self.tick_seconds, self._ticker_stop),
                                            name=f"FakeCoinGecko-ticker:{self._port}", daemon=True)
            self._ticker.start()
        return self

    def _tick_every(self, seconds: float, stopped: threading.Event) -> None:
        while not stopped.wait(seconds):
            try:
                self.walk()
            except Exception:  # noqa: BLE001 - a bug in the walk: say so, keep ticking
                import traceback
                traceback.print_exc()

    def stop(self) -> None:
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            self._ticker_stop.set()
            ticker.join(timeout=5)
        super().stop()

    def attach_exchange(self, exchange_id: str, exchange: FakeBinance) -> None:
        """Serve ``exchange``'s listed pairs at ``/exchanges/{exchange_id}/tickers``
        (replacing any exchange attached under that id)."""
        with self.lock:
            self.exchanges[exchange_id] = exchange

    # -- catalog -----------------------------------------------------------
    def set_price(self, coin_id: str, price, last_updated: str | None = None) -> None:
        """Set ``current_price`` of ``coin_id`` (``KeyError`` if unknown).

        ``price`` may be a Decimal, int, str or None; ``last_updated``
        defaults to now.
        """
        if price is not None and not isinstance(price, Decimal):
            price = Decimal(str(price))
        with self.lock:
            for row in self.coins:
                if row.get("id") == coin_id:
                    row["current_price"] = price
                    row["last_updated"] = last_updated or _iso_now()
                    return
        raise KeyError(coin_id)

    def tick(self) -> None:
        """Move every numeric price by a small random step (about +-0.5% at
        most, never zero, kept at the price's precision but with at least 4
        significant digits) and set ``last_updated`` on every row."""
        now = _iso_now()
        with self.lock:
            for row in self.coins:
                price = row.get("current_price")
                if _is_num(price):
                    step = Decimal(self._rng.randint(-50, 50)) / Decimal(10000)
                    new = _moved(Decimal(price), step)
                    row["current_price"] = new
                    if _is_num(row.get("high_24h")) and new > row["high_24h"]:
                        row["high_24h"] = new
                    if _is_num(row.get("low_24h")) and new < row["low_24h"]:
                        row["low_24h"] = new
                row["last_updated"] = now

    def walk(self) -> None:
        """One step of a random walk, what ``tick_seconds`` repeats: every
        numeric price moves 0.01% to 0.2% (a ``pegged`` coin 0.001% to 0.01%,
        with 6 significant digits), drawn back toward the price its walk
        started from as it strays, so hours of steps stay near the reference
        level.  The market cap follows (price x circulating supply), as do the
        fully diluted valuation, the 24h high/low and the 24h changes (against
        the price a day before the walk started, from its 24h change), the
        ath/atl distances; the volume stays within 5% of where it started;
        ``last_updated`` is now on every row."""
        now = _iso_now()
        with self.lock:
            for row in self.coins:
                if _is_num(row.get("current_price")):
                    self._walk_row(row, Decimal(row["current_price"]), now)
                row["last_updated"] = now

    def _walk_row(self, row: dict, price: Decimal, now: str) -> None:
        coin_id = str(row.get("id"))
        start = self._walks.get(coin_id)
        if start is None:
            pct, cap, supply = row.get("price_change_percentage_24h"), row.get("market_cap"), None
            if _is_num(row.get("circulating_supply")) and row["circulating_supply"] > 0:
                supply = Decimal(row["circulating_supply"])
            elif _is_num(cap) and cap > 0:
                supply = Decimal(cap) / price
            opened = price / (1 + Decimal(pct) / 100) if _is_num(pct) and pct > -100 else price
            start = self._walks[coin_id] = {"price": price, "open": opened, "supply": supply,
                                            "volume": row.get("total_volume")}
        pegged = coin_id in self.pegged
        # the further from where it started, the likelier the way back: P(down) = 1/2 + pull * drift
        drift = price / start["price"] - 1
        p_down = min(max(Decimal("0.5") + drift * (1000 if pegged else 5), Decimal("0.05")), Decimal("0.95"))
        down = Decimal(self._rng.randint(0, 9999)) / 10000 < p_down
        # about what a large coin moves in 20 s: a second source read a minute apart stays close
        size = Decimal(self._rng.randint(1, 10) if pegged else self._rng.randint(1, 20)).scaleb(-5 if pegged else -4)
        new = _moved(price, -size if down else size, 6 if pegged else 4)
        row["current_price"] = new
        if _is_num(row.get("high_24h")):
            row["high_24h"] = max(row["high_24h"], new)
        if _is_num(row.get("low_24h")):
            row["low_24h"] = min(row["low_24h"], new)
        opened, unit = start["open"], _unit(new)
        pct = ((new / opened - 1) * 100).quantize(Decimal("0.00001"))
        if _is_num(row.get("price_change_24h")):
            row["price_change_24h"] = (new - opened).quantize(Decimal(1).scaleb(unit.as_tuple().exponent - 4))
        if _is_num(row.get("price_change_percentage_24h")):
            row["price_change_percentage_24h"] = pct
        supply = start["supply"]
        if supply is not None and _is_num(row.get("market_cap")) and row["market_cap"] > 0:
            row["market_cap"] = int(new * supply)
            if _is_num(row.get("market_cap_change_24h")):
                row["market_cap_change_24h"] = ((new - opened) * supply).quantize(Decimal("0.01"))
            if _is_num(row.get("market_cap_change_percentage_24h")):
                row["market_cap_change_percentage_24h"] = pct
        if _is_num(row.get("fully_diluted_valuation")) and _is_num(row.get("total_supply")):
            row["fully_diluted_valuation"] = int(new * Decimal(row["total_supply"]))
        if _is_num(start["volume"]) and _is_num(row.get("total_volume")):
            row["total_volume"] = int(start["volume"] * (1 + Decimal(self._rng.randint(-500, 500)).scaleb(-4)))
        for mark in ("ath", "atl"):
            level = row.get(mark)
            if not (_is_num(level) and level > 0):
                continue
            if (mark == "ath" and new > level) or (mark == "atl" and new < level):
                row[mark], row[f"{mark}_date"], level = new, now, new
            row[f"{mark}_change_percentage"] = ((new - level) / level * 100).quantize(Decimal("0.00001"))

    # -- log -----------------------------------------------------------------
    def count(self, path_suffix: str = "/coins/markets") -> int:
        return super().count(path_suffix)

    def categories_of(self, coin_id: str) -> tuple[str, ...]:
        with self.lock:
            if coin_id in self.memberships:
                return self.memberships[coin_id]
        return default_categories(coin_id, self._seeded)

    def set_categories(self, coin_id: str, category_ids) -> None:
        with self.lock:
            self.memberships[coin_id] = tuple(category_ids)

    # -- routing -----------------------------------------------------------
    def _respond(self, raw_path: str, query: dict, headers: dict, fault):
        """-> (status, extra_headers, "json"|"html", body)"""
        name = fault[0] if fault else None
        if name == "429":
            extra = [("Retry-After", str(fault[1]))] if fault[1] is not None else []
            return 429, extra, "json", RATE_LIMIT_BODY
        if name in ("500", "503"):
            msg = "Internal Server Error" if name == "500" else "Service Unavailable"
            return int(name), [], "json", {"status": {"error_code": int(name), "error_message": msg}}
        if name == "502":
            return 502, [], "html", BAD_GATEWAY_HTML
        if name == "html":
            return 200, [], "html", HTML_BODY
        if name == "401":
            return 401, [], "json", BAD_KEY_BODY

        key = self.require_key
        if key is not None:
            given = (headers.get("x-cg-demo-api-key") or headers.get("x-cg-pro-api-key")
                     or query.get("x_cg_demo_api_key") or query.get("x_cg_pro_api_key"))
            if given != key:
                return 401, [], "json", BAD_KEY_BODY

        path = unquote(raw_path)
        if path.startswith(API_PREFIX + "/") or path == API_PREFIX:
            path = path[len(API_PREFIX):]
        path = path.rstrip("/")
        if path == "/ping":
            return 200, [], "json", {"gecko_says": "(V3) To the Moon!"}
        if path == "/coins/markets":
            return self._markets(query, name)
        if path == "/coins/categories/list":
            listed = [{"category_id": cid, "name": n} for cid, n in sorted(CATEGORY_NAMES.items())]
            return 200, [], "json", listed
        m = _CHART_RE.match(path)
        if m:
            return self._market_chart(m.group(1), query)
        m = _TICKERS_RE.match(path)
        if m:
            return self._exchange_tickers(m.group(1), query)
        return 404, [], "json", {"error": "Not Found"}

    def _markets(self, q: dict, fault):
        vs = q.get("vs_currency", "").strip()
        if not vs:
            return 422, [], "json", {"error": "Missing parameter vs_currency"}
        try:
            per_page = int(q.get("per_page") or 100)
            page = int(q.get("page") or 1)
        except ValueError:
            return 400, [], "json", {"error": "invalid per_page or page"}
        if not 1 <= per_page <= 250:
            return 400, [], "json", {"error": "per_page must be between 1 and 250"}
        if page < 1:
            return 400, [], "json", {"error": "page must be 1 or more"}
        order = q.get("order") or "market_cap_desc"
        sort_field = {"market_cap": "market_cap", "volume": "total_volume", "id": "id"}
        field, _, direction = order.rpartition("_")
        if field not in sort_field or direction not in ("asc", "desc"):
            return 400, [], "json", {"error": "invalid order"}

        def split(name):
            v = q.get(name)
            return {s.strip().lower() for s in v.split(",") if s.strip()} if v else None

        ids, symbols, names = split("ids"), split("symbols"), split("names")
        category = (q.get("category") or "").strip()
        if category and category not in CATEGORY_NAMES:
            return 404, [], "json", {"error": "category not found"}
        if category and self.category_page_size:
            per_page = min(per_page, self.category_page_size)
        with self.lock:
            rows = self.coins
            if category:
                rows = [r for r in rows if category in self.categories_of(str(r.get("id")))]
            if ids is not None:
                rows = [r for r in rows if str(r.get("id")).lower() in ids]
            if symbols is not None:
                rows = [r for r in rows if str(r.get("symbol")).lower() in symbols]
            if names is not None:
                rows = [r for r in rows if str(r.get("name")).lower() in names]
            key_name = sort_field[field]
            if key_name == "id":
                rows = sorted(rows, key=lambda r: (not isinstance(r.get("id"), str), r.get("id") or ""),
                              reverse=False)
                if direction == "desc":
                    rows = rows[::-1]
            else:
                def k(r):
                    v = r.get(key_name)
                    if not _is_num(v):
                        return (1, 0)
                    return (0, -v if direction == "desc" else v)
                rows = sorted(rows, key=k)  # stable; nulls last
            start = (page - 1) * per_page
            rows = [dict(r) for r in rows[start:start + per_page]]

        windows = [w for w in (s.strip() for s in (q.get("price_change_percentage") or "").split(","))
                   if w in PRICE_CHANGE_WINDOWS]
        sparkline = (q.get("sparkline") or "").lower() == "true"
        for r in rows:
            price = r.get("current_price")
            if sparkline:
                r["sparkline_in_7d"] = {"price": _sparkline(str(r.get("id")), price)}
            for w in windows:
                if price is None:
                    v = None
                elif w == "24h" and _is_num(r.get("price_change_percentage_24h")):
                    v = r["price_change_percentage_24h"]
                else:
                    v = _pct_change(str(r.get("id")), w)
                r[f"price_change_percentage_{w}_in_currency"] = v

        if fault == "bad_rows":
            mutations = [
                lambda r: r.__setitem__("current_price", "abc"),
                lambda r: r.__setitem__("current_price", -abs(Decimal(r["current_price"]))
                                        if _is_num(r.get("current_price")) else Decimal("-1.5")),
                lambda r: r.__setitem__("id", None),
                lambda r: r.__setitem__("market_cap_rank", str(r.get("market_cap_rank"))),
                lambda r: r.pop("current_price", None),
            ]
            for row, mutate in zip(rows, mutations):
                mutate(row)
        if fault == "object":
            return 200, [], "json", {"data": rows}
        return 200, [], "json", rows

    def _market_chart(self, coin_id: str, q: dict):
        if not q.get("vs_currency", "").strip():
            return 422, [], "json", {"error": "Missing parameter vs_currency"}
        days_s = (q.get("days") or "").strip().lower()
        if not days_s:
            return 422, [], "json", {"error": "Missing parameter days"}
        if days_s == "max":
            days = Decimal(365)
        else:
            try:
                days = Decimal(days_s)
            except ArithmeticError:
                return 400, [], "json", {"error": "invalid days"}
            if not days.is_finite() or days < 0:
                return 400, [], "json", {"error": "invalid days"}
            days = min(days, Decimal(5000))
        with self.lock:
            row = next((dict(r) for r in self.coins if r.get("id") == coin_id), None)
        if row is None:
            return 404, [], "json", {"error": "coin not found"}
        interval = (q.get("interval") or "").lower()
        daily = interval == "daily" or (interval != "hourly" and days > 90)
        step = 86_400_000 if daily else 3_600_000
        now_ms = int(time.time() * 1000)
        start_ms = now_ms - int(days * 86_400_000)
        first = -(-start_ms // step) * step
        stamps = list(range(first, now_ms, step)) + [now_ms]
        price, mc, vol = row.get("current_price"), row.get("market_cap"), row.get("total_volume")
        prices, caps, vols = [], [], []
        if _is_num(price):
            price = Decimal(price)
            unit = _unit(price)
            for i, ts in enumerate(stamps):
                last = i == len(stamps) - 1
                f = 1 + _noise(f"{coin_id}|{ts}", 500)
                prices.append([ts, price if last else (price * f).quantize(unit)])
                if _is_num(mc):
                    caps.append([ts, Decimal(mc) if last else (Decimal(mc) * f).quantize(Decimal(1))])
                if _is_num(vol):
                    fv = 1 + _noise(f"{coin_id}|vol|{ts}", 3000)
                    vols.append([ts, Decimal(vol) if last else (Decimal(vol) * fv).quantize(Decimal(1))])
        return 200, [], "json", {"prices": prices, "market_caps": caps, "total_volumes": vols}

    def _exchange_tickers(self, exchange_id: str, q: dict):
        """An attached exchange's pairs as CoinGecko maps them to its coins, from the
        exchange's own prices at this moment (so both sources agree on them)."""
        with self.lock:
            exchange = self.exchanges.get(exchange_id)
        if exchange is None:
            return 404, [], "json", {"error": "exchange not found"}
        try:
            page = int(q.get("page") or 1)
        except ValueError:
            return 400, [], "json", {"error": "invalid page"}
        if page < 1:
            return 400, [], "json", {"error": "page must be 1 or more"}
        wanted = {s.strip().lower() for s in (q.get("coin_ids") or "").split(",") if s.strip()}
        # never hold our lock while the exchange reads our prices (it takes it itself)
        quotes = [x for x in exchange.quotes() if not wanted or x.listing.coin_id in wanted]
        quotes = quotes[(page - 1) * TICKERS_PER_PAGE: page * TICKERS_PER_PAGE]
        with self.lock:  # what converted_* is also given in
            units = {_UNIT_COINS[cid]: Decimal(row["current_price"]) for row in self.coins
                     if (cid := row.get("id")) in _UNIT_COINS and _is_num(row.get("current_price"))
                     and row["current_price"] > 0}
        stamp = datetime.now(UTC).replace(microsecond=0).isoformat()
        market = {"name": exchange.name, "identifier": exchange_id, "has_trading_incentive": False}

        def converted(value_usd: Decimal, whole_usd: bool = False) -> dict:
            out = {unit: _significant(value_usd / px) for unit, px in units.items()}
            out["usd"] = int(value_usd) if whole_usd else _significant(value_usd)
            return out

        tickers = []
        for x in quotes:
            listing = x.listing
            tickers.append({
                "base": listing.base,
                "target": listing.target,
                "market": dict(market),
                "last": _plain(x.price),
                "volume": _plain(x.volume),
                "converted_last": converted(x.usd),
                "converted_volume": converted(x.volume_usd, whole_usd=True),
                "trust_score": "green",
                "bid_ask_spread_percentage": x.spread_pct,
                "timestamp": stamp,
                "last_traded_at": stamp,
                "last_fetch_at": stamp,
                "is_anomaly": False,
                "is_stale": False,
                "trade_url": exchange.trade_url(listing),
                "token_info_url": None,
                "coin_id": listing.coin_id,
                "target_coin_id": listing.target_coin_id,
                "coin_mcap_usd": x.coin_mcap_usd,
            })
        return 200, [], "json", {"name": exchange.name, "tickers": tickers}


# --------------------------------------------------------------------------
# Standalone
# --------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m inventory.devtools.coingecko",
                                description="Local fake of the CoinGecko v3 API.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--coins", type=int, default=100, help="catalog size (default 100)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--base", help="JSON file of identities (id, symbol, name, market_cap_rank) to start from")
    p.add_argument("--tick", type=float, default=0.0, metavar="SECONDS",
                   help="move all prices every SECONDS (0 = never)")
    p.add_argument("--require-key", help="answer 401 unless this API key is sent")
    p.add_argument("--binance-port", type=int, default=0, metavar="PORT",
                   help="also serve a FakeBinance of these coins on PORT (0 = off)")
    args = p.parse_args(argv)

    base = None
    if args.base:
        with open(args.base, encoding="utf-8") as fh:
            base = json.load(fh)
    fake = FakeCoinGecko(generate_catalog(args.coins, seed=args.seed, base=base),
                         host=args.host, port=args.port)
    fake.require_key = args.require_key
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    binance = None
    if args.binance_port:
        from .binance import FakeBinance
        binance = FakeBinance(fake, host=args.host, port=args.binance_port)
    fake.start()
    print(f"FakeCoinGecko serving {len(fake.coins)} coins at {fake.url}", flush=True)
    if binance is not None:
        binance.start()
        print(f"FakeBinance serving {len(binance.listings)} pairs at {binance.url}", flush=True)
    try:
        wait = args.tick if args.tick > 0 else 0.5
        while not stop.wait(wait):
            if args.tick > 0:
                fake.tick()
    finally:
        if binance is not None:
            binance.stop()
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
