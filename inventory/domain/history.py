"""Candles, daily market totals and recommendation profiles: the history capability's entities and errors."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from functools import cached_property

from .errors import InventoryError
from .models import UNCATEGORIZED, Asset, PricePoint

# Daily candles (and the day reports built from them) are kept this long.
CANDLE_RETENTION_DAYS = 366


@dataclass(frozen=True)
class Candle:
    """Open/high/low/close of one asset over one bucket (`start` .. `start + width`)."""

    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    count: int
    market_cap: Decimal | None = None  # at the close
    volume_24h: Decimal | None = None  # at the close

    @classmethod
    def of(cls, start: datetime, points: list[PricePoint]) -> "Candle":
        """The candle of points given oldest first (at least one)."""
        prices = [p.price for p in points]
        last = points[-1]
        return cls(start, prices[0], max(prices), min(prices), prices[-1], len(points), last.market_cap, last.volume_24h)

    @property
    def change(self) -> Decimal:
        return self.close - self.open


@dataclass(frozen=True)
class DayTotals:
    """The market at the close of one UTC day: sums over the assets rolled up that day."""

    day: date
    assets: int
    market_cap: Decimal
    volume_24h: Decimal
    rolled_at: datetime


@dataclass(frozen=True)
class Similar:
    """One recommended asset with its score (0..1) and the reasons behind it."""

    asset_id: str
    score: Decimal
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class ReturnSeries:
    """Daily returns prepared once for many correlations: days, values minus their mean, and their norm."""

    days: tuple[str, ...]
    centred: tuple[float, ...]
    norm: float

    @classmethod
    def of(cls, returns: dict[str, Decimal]) -> "ReturnSeries":
        days = tuple(sorted(returns))
        values = [float(returns[d]) for d in days]
        mean = math.fsum(values) / len(values) if values else 0.0
        centred = tuple(v - mean for v in values)
        return cls(days, centred, math.sqrt(math.fsum(c * c for c in centred)))


@dataclass(frozen=True)
class Profile:
    """What recommendations know of one tradable asset: categories, size and daily returns."""

    asset_id: str
    categories: tuple[str, ...]
    market_cap: Decimal | None
    returns: dict[str, Decimal]  # ISO day -> that day's close-to-close return
    similar: tuple[Similar, ...] = field(default=())

    @cached_property
    def series(self) -> ReturnSeries:
        # Computed once per profile, not once per pair: a run correlates every pair of assets.
        return ReturnSeries.of(self.returns)


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The first and the last millisecond of a UTC day (history reads are inclusive)."""
    start = day_start(day)
    return start, start + timedelta(days=1) - timedelta(milliseconds=1)


def categories_of(asset: Asset) -> tuple[str, ...]:
    """An asset's category slugs, the primary first (an item older than `categories`: its one category)."""
    slugs = asset.categories or ((asset.category,) if asset.category else ())
    # "uncategorized" is the absence of a category: two such assets share nothing.
    return tuple(s for s in slugs if s != UNCATEGORIZED)


class ReportNotFound(InventoryError):
    http_status = 404
    message = "No daily report is stored for that date."


class DayNotFinished(InventoryError):
    """A day that has not ended yet has no report."""

    http_status = 422
    message = "That day has not finished yet (dates are UTC)."


class NoRecommendations(InventoryError):
    http_status = 404
    message = "No recommendations are computed for this asset yet (it needs daily history and a fresh price)."


class ReportExpired(InventoryError):
    http_status = 404
    message = f"Daily reports are kept {CANDLE_RETENTION_DAYS} days; that date is older."


def candles_of(points, width_seconds: int) -> list[Candle]:
    """Points (oldest first) grouped into buckets of `width_seconds` from the epoch; one candle per non-empty bucket."""
    buckets: dict[int, list] = {}
    for point in points:
        buckets.setdefault(int(point.at.timestamp()) // width_seconds, []).append(point)
    return [
        Candle.of(datetime.fromtimestamp(slot * width_seconds, tz=timezone.utc), group)
        for slot, group in buckets.items()
    ]
