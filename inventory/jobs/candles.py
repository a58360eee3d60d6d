"""roll_up_days: each finished UTC day's price points become stored daily candles and market totals.

roll_up_backfilled: the same for the days a backfill wrote points on, whatever their age."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from ..domain import Fence
from ..domain.history import Candle, DayTotals, day_bounds, day_start
from ..store import AssetStore, CandleStore, PriceStore

log = logging.getLogger(__name__)

# One day of one-minute refreshes is 1,440 points; backfilled hourly points far fewer.
MAX_POINTS_PER_DAY = 20_000


@dataclass
class RollupReport:
    days: list[date] = field(default_factory=list)  # rolled up by this run
    candles: int = 0


def roll_up_day(assets: list[str], prices: PriceStore, day: date) -> dict[str, Candle]:
    """Every listed asset's candle of one day from its stored points (assets without points are left out)."""
    start, end = day_bounds(day)
    candles = {}
    for asset_id in assets:
        points = prices.history(asset_id, start, end, MAX_POINTS_PER_DAY)
        if points:
            candles[asset_id] = Candle.of(day_start(day), points)
    return candles


def day_totals(day: date, candles: dict[str, Candle], now: datetime) -> DayTotals:
    """The market at the day's close: sums of each asset's market cap and volume at its last point."""
    return DayTotals(
        day=day,
        assets=len(candles),
        market_cap=sum((c.market_cap for c in candles.values() if c.market_cap is not None), Decimal(0)),
        volume_24h=sum((c.volume_24h for c in candles.values() if c.volume_24h is not None), Decimal(0)),
        rolled_at=now,
    )


def roll_up_days(
    assets: AssetStore, prices: PriceStore, candles: CandleStore, now: datetime, catchup_days: int,
    fence: Fence | None = None,
) -> RollupReport:
    """Roll up every finished day of the last `catchup_days` that has no stored totals yet, oldest first.

    A day with no points at all (the service was not running) stays without a
    report. Fine points keep their own TTL; only candles are kept a year.

    :raises LeaseLost: the fence's lease has moved on.
    """
    report = RollupReport()
    today = now.date()
    pending = [today - timedelta(days=n) for n in range(catchup_days, 0, -1)]
    pending = [day for day in pending if candles.totals(day) is None]
    if not pending:
        return report
    asset_ids = sorted(a.asset_id for a in assets.iter_all())
    for day in pending:
        day_candles = roll_up_day(asset_ids, prices, day)
        if not day_candles:
            continue
        candles.put_day(day_candles, day_totals(day, day_candles, now), fence)
        report.days.append(day)
        report.candles += len(day_candles)
        log.info("rolled up %s: %s daily candles", day.isoformat(), len(day_candles))
    return report


def finished_days(since: datetime, now: datetime) -> list[date]:
    """The finished UTC days wholly from `since` on (a day `since` cuts into is left out), oldest first."""
    first = since.date() if since == day_start(since.date()) else since.date() + timedelta(days=1)
    return [first + timedelta(days=n) for n in range((now.date() - first).days)]


def roll_up_backfilled(
    assets: AssetStore, prices: PriceStore, candles: CandleStore, asset_id: str, days: list[date], now: datetime,
    history_days: int,
) -> RollupReport:
    """Roll up `days` again after `asset_id`'s history was backfilled; idempotent.

    A day already rolled up keeps the other assets' stored candles (their points
    may have expired since) and gets this asset's candle, from all its points that
    day, and totals over them all. A day not rolled up yet is rolled up whole, as
    `roll_up_days` would, when other assets' refreshed points may still exist (the
    last `history_days`); so the refresher never finds it done with only this
    asset in it. A day without this asset's points is left alone.
    """
    report = RollupReport()
    catalog: list[str] | None = None
    for day in days:
        day_candles = roll_up_day([asset_id], prices, day)
        if not day_candles:
            continue
        stored, totals = candles.day(day)
        if totals is None and day >= now.date() - timedelta(days=history_days):
            if catalog is None:
                catalog = sorted(a.asset_id for a in assets.iter_all() if a.asset_id != asset_id)
            day_candles.update(roll_up_day(catalog, prices, day))
        candles.put_day(day_candles, day_totals(day, {**stored, **day_candles}, now))
        report.days.append(day)
        report.candles += len(day_candles)
    if report.days:
        log.info("rolled up %s backfilled days of %s: %s daily candles", len(report.days), asset_id, report.candles)
    return report
