"""The second price source: an exchange's public market data, behind the same client contract as CoinGecko.

Binance's spot API first: `GET /api/v3/ticker/price` with no symbol returns every
pair's last price in one call, at request weight 4 of the 6,000 a minute Binance
publishes per IP. Binance.US (`https://api.binance.us`) serves the same paths
where binance.com answers 451 (a restricted location).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from ..domain import utcnow
from .client import JsonSource, MalformedResponse

# Binance's published budget and what one call of ours spends (docs/configuration.md "Cross-checked prices").
BINANCE_WEIGHT_PER_MINUTE = 6000
TICKER_PRICE_WEIGHT = 4


@dataclass
class Tickers:
    """Every pair's last price (pair symbol -> price in its quote currency), as of `fetched_at`."""

    prices: dict[str, Decimal]
    fetched_at: datetime
    skipped: int = 0  # rows that were not a symbol with a positive price
    calls: int = 1


class BinanceClient(JsonSource):
    name = "binance"
    # Binance asks clients not to retry a 429 or a 418 (an IP ban follows a repeated 429):
    # both pause the breaker for their Retry-After instead. Server errors are retried.
    retry_statuses = (500, 502, 503, 504)
    throttled_statuses = (418, 429)
    rejected_statuses = (400, 401, 403, 451)

    def rejected_hint(self, status: int) -> str:
        if status == 451:
            return ("binance.com refuses this location: set BINANCE_API_URL=https://api.binance.us and "
                    "CROSSCHECK_EXCHANGE=binance_us (docs/configuration.md)")
        return "check BINANCE_API_URL"

    def ticker_prices(self, clock=utcnow) -> Tickers:
        """Every pair's last price in one call.

        :raises PriceSourceError: the call failed, or the body is not Binance's list of tickers.
        """
        body = self.get_json("/api/v3/ticker/price")
        fetched_at = clock()
        if not isinstance(body, list):
            raise MalformedResponse("binance /ticker/price did not return a list")
        prices, skipped = {}, 0
        for row in body:
            symbol, price = (row.get("symbol"), row.get("price")) if isinstance(row, dict) else (None, None)
            try:
                # Binance sends prices as strings ("87012.34000000"): exact as they are.
                price = Decimal(price) if isinstance(price, str) else None
            except InvalidOperation:
                price = None
            if not isinstance(symbol, str) or price is None or not price.is_finite() or price <= 0:
                skipped += 1
                continue
            prices[symbol] = price
        return Tickers(prices, fetched_at, skipped)
