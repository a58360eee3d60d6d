"""Cross-checked prices: how far a second source's price is from the primary's, and what that means.

We flag; we do not average. The price we serve stays the primary's exact
number (CoinGecko's), and `PriceCheck` says how sure we are of it: both
sources' prices, their distance in basis points, and the band that distance
is judged against (docs/design.md "Cross-checked prices").
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal

from .numbers import plain_number

PRIMARY_SOURCE = "coingecko"
OPERATOR_SOURCE = "operator"

# Bands in basis points, by what the asset is. Chainlink's own deviation thresholds
# are 25 bps for USDC/USDT and 50 for WBTC/BTC; two venues read up to a check
# interval apart need more room than one aggregator's heartbeat.
STABLECOIN_BAND_BPS = 50
TOP_BAND_BPS = 100
TOP_RANK = 20
DEFAULT_BAND_BPS = 300
STABLECOIN = "stablecoin"
# Operators may set a band in this range (bps) on one asset.
MIN_BAND_BPS, MAX_BAND_BPS = 1, 5000

# divergence_bps is written with 4 decimals (0.0001 bp), rounded half-even from a
# 34-digit quotient: exact to the digit shown, and the same on every path.
BPS_PLACES = Decimal("0.0001")
_CONTEXT = Context(prec=34)


class CheckStatus(str, enum.Enum):
    OK = "ok"  # both sources agree within the band
    DIVERGED = "diverged"  # they disagree by more than the band: quotes refuse the asset
    SINGLE_SOURCE = "single_source"  # no second price for this asset: never guessed
    SECONDARY_STALE = "secondary_stale"  # the second source has not answered within its bound


@dataclass(frozen=True)
class SourcePrice:
    """One source's USD price for an asset, and how it was obtained."""

    source: str  # coingecko | binance | operator
    price: Decimal
    as_of: datetime
    pair: str | None = None  # the exchange's symbol, e.g. ETHUSDT
    quote: str | None = None  # the pair's quote currency when it is not USD (USDT, USDC)
    # The quote coin's own USD price the pair's price was converted with (the primary's).
    quote_price: Decimal | None = None


@dataclass(frozen=True)
class PriceCheck:
    status: CheckStatus
    sources: tuple[SourcePrice, ...]
    divergence_bps: Decimal | None = None
    band_bps: int | None = None
    checked_at: datetime | None = None
    diverged_checks: int = 0  # consecutive checks that found it diverged (the alert waits for 2)

    @property
    def secondary(self) -> SourcePrice | None:
        """The second source's price this check used, if any."""
        return next((s for s in self.sources if s.source not in (PRIMARY_SOURCE, OPERATOR_SOURCE)), None)


@dataclass(frozen=True)
class Pair:
    """The exchange pair that prices one CoinGecko coin, found by identity (CoinGecko's own
    tickers name each pair's coin_id), never by ticker."""

    symbol: str  # the exchange's pair symbol: ETHUSDT
    base: str
    quote: str  # USD, USDT or USDC
    quote_coin_id: str | None = None  # the quote coin's CoinGecko id; None for USD


@dataclass(frozen=True)
class CrossCheckState:
    """What the last cross-checks did, for /health/detailed and metrics."""

    source: str
    last_success_at: datetime | None = None
    last_attempt_at: datetime | None = None
    last_error: str | None = None
    breaker_state: str | None = None
    counts: dict = field(default_factory=dict)  # status -> assets, at the last check
    diverged: tuple[str, ...] = ()  # the assets found diverged at the last check
    mapping_refreshed_at: datetime | None = None
    pairs: int = 0


def divergence_bps(primary: Decimal, secondary: Decimal) -> Decimal:
    """|primary - secondary| / primary x 10,000, to 4 decimals (half-even)."""
    quotient = _CONTEXT.divide(_CONTEXT.multiply(abs(_CONTEXT.subtract(primary, secondary)), 10_000), primary)
    return quotient.quantize(BPS_PLACES, rounding=ROUND_HALF_EVEN, context=_CONTEXT)


def default_band(categories, rank: int | None) -> int:
    """Stablecoins 50 bps, the top 20 by market cap 100, the rest 300."""
    if STABLECOIN in categories:
        return STABLECOIN_BAND_BPS
    if rank is not None and rank <= TOP_RANK:
        return TOP_BAND_BPS
    return DEFAULT_BAND_BPS


def compare(
    primary: SourcePrice,
    secondary: SourcePrice | None,
    band_bps: int,
    now: datetime,
    max_age_seconds: float,
    previous: PriceCheck | None = None,
) -> PriceCheck:
    """The check of `primary` against `secondary` (None: there is no second price for this asset).

    A second price older than `max_age_seconds` is not compared: the check says
    the second source is stale, and names the price it last had.
    """
    if secondary is None:
        return PriceCheck(CheckStatus.SINGLE_SOURCE, (primary,), None, band_bps, now)
    if (now - secondary.as_of).total_seconds() > max_age_seconds:
        return PriceCheck(CheckStatus.SECONDARY_STALE, (primary, secondary), None, band_bps, now)
    bps = divergence_bps(primary.price, secondary.price)
    if bps <= band_bps:
        return PriceCheck(CheckStatus.OK, (primary, secondary), bps, band_bps, now)
    streak = previous.diverged_checks + 1 if previous and previous.status is CheckStatus.DIVERGED else 1
    return PriceCheck(CheckStatus.DIVERGED, (primary, secondary), bps, band_bps, now, streak)


def rebanded(check: PriceCheck, band_bps: int) -> PriceCheck:
    """The same check judged against another band (an operator's override), without new prices."""
    if check.divergence_bps is None:
        return replace(check, band_bps=band_bps)
    diverged = check.divergence_bps > band_bps
    return replace(
        check,
        status=CheckStatus.DIVERGED if diverged else CheckStatus.OK,
        band_bps=band_bps,
        diverged_checks=max(check.diverged_checks, 1) if diverged else 0,
    )


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat(timespec="milliseconds")


def _number(value: Decimal | None) -> str | None:
    return None if value is None else plain_number(value)


def source_plain(source: SourcePrice) -> dict:
    out = {"source": source.source, "price": _number(source.price), "as_of": _iso(source.as_of)}
    if source.pair:
        out["pair"] = source.pair
    if source.quote:
        out.update(quote=source.quote, quote_price=_number(source.quote_price))
    return out


def check_plain(check: PriceCheck) -> dict:
    """The check as the stream and the feed carry it: numbers as exact strings (like the stream's prices)."""
    return {
        "status": check.status.value,
        "sources": [source_plain(s) for s in check.sources],
        "divergence_bps": _number(check.divergence_bps),
        "band_bps": check.band_bps,
        "checked_at": _iso(check.checked_at),
    }
