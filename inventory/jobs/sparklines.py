"""refresh_sparklines: each asset's 7-day sparkline, the hourly closes of its own stored price points.

Kept on the asset (`sparkline_7d`, `sparkline_until`), so the read model holds it and a detail
or list read costs no history Query. Each run reads only the hours since the last one: about
60 points per asset per hour at one refresh a minute; an asset's first run reads its 7 days once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ..domain.history import candles_of
from ..store import AssetStore, PriceStore
from .candles import MAX_POINTS_PER_DAY

HOUR = 3600
DAYS = 7
POINTS = DAYS * 24  # the sparkline's length when the service ran all week, as CoinGecko's


def hourly_closes(points) -> tuple:
    """Each hour's last price, oldest first (hours without a point are left out)."""
    return tuple(candle.close for candle in sorted(candles_of(points, HOUR), key=lambda c: c.start))


def refresh_sparklines(assets: AssetStore, prices: PriceStore, now: datetime) -> int:
    """Append the finished hours since each asset's last run to its sparkline; the assets written."""
    hour = now.replace(minute=0, second=0, microsecond=0)  # only finished hours: the current one still moves
    written = 0
    for asset in assets.iter_all():
        since = hour - timedelta(days=DAYS)
        if asset.sparkline_7d and asset.sparkline_until:
            since = max(since, asset.sparkline_until)
        if since >= hour:
            continue
        # history() includes both ends: stop short of the current hour's first instant.
        points = prices.history(asset.asset_id, since, hour - timedelta(milliseconds=1), MAX_POINTS_PER_DAY * DAYS)
        closes = hourly_closes(points)
        if not closes:
            continue
        line = (asset.sparkline_7d + closes)[-POINTS:]
        assets.update_fields(asset.asset_id, {"sparkline_7d": line, "sparkline_until": hour}, now)
        written += 1
    return written
