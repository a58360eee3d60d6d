"""CoinGecko's exchange tickers -> the pair that prices each coin: by identity, never by ticker.

CoinGecko names the coin behind every exchange ticker (`coin_id`) and the coin it
is quoted in (`target_coin_id`), so a pair is mapped to exactly the coin
CoinGecko says it trades; a ticker shared by two coins can never cross-check the
wrong one. Of a coin's pairs the USD one is preferred, then USDT, then USDC
(converted with that stablecoin's own price); among pairs of one quote, the
largest volume. A pair symbol CoinGecko ties to two coins is dropped: never guessed.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

from ..domain.pricecheck import Pair

# (quote symbol, the quote coin's CoinGecko id), best first.
PREFERRED_QUOTES = (("USD", None), ("USDT", "tether"), ("USDC", "usd-coin"))
_SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,20}$")


def _volume(row: dict) -> Decimal:
    volume = row.get("converted_volume")
    value = volume.get("usd") if isinstance(volume, dict) else None
    return Decimal(value) if isinstance(value, (int, Decimal)) and not isinstance(value, bool) else Decimal(0)


def pairs_from_tickers(rows: Iterable, coin_ids: set[str]) -> dict[str, Pair]:
    """coingecko id -> its pair, for the coins of `coin_ids` that the tickers price in USD, USDT or USDC."""
    best: dict[str, tuple[tuple, Pair]] = {}
    coins_of_symbol: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if not isinstance(row, dict) or row.get("is_anomaly") or row.get("is_stale"):
            continue
        coin, base, target = row.get("coin_id"), row.get("base"), row.get("target")
        if not (isinstance(coin, str) and isinstance(base, str) and isinstance(target, str)) or coin not in coin_ids:
            continue
        quote_coin = row.get("target_coin_id") or None
        preference = next(
            (rank for rank, (quote, quote_id) in enumerate(PREFERRED_QUOTES)
             if target.upper() == quote and quote_coin == quote_id),
            None,
        )
        symbol = (base + target).upper()
        if preference is None or not _SYMBOL_RE.match(symbol):
            continue
        coins_of_symbol[symbol].add(coin)
        key = (preference, -_volume(row), symbol)
        if coin not in best or key < best[coin][0]:
            best[coin] = (key, Pair(symbol, base.upper(), target.upper(), quote_coin))
    return {coin: pair for coin, (_, pair) in best.items() if len(coins_of_symbol[pair.symbol]) == 1}
