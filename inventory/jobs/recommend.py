"""recommend: every ACTIVE priced asset's profile and most similar peers, recomputed from the daily candles
(the maths: domain/similarity.py)."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from decimal import Decimal

from ..domain import Fence
from ..domain.similarity import build_profiles
from ..store import AssetStore, CandleStore, ProfileStore

log = logging.getLogger(__name__)


def recommend(
    assets: AssetStore, candles: CandleStore, profiles: ProfileStore, now: datetime, window_days: int, top_k: int,
    fence: Fence | None = None, max_assets: int | None = None,
) -> int:
    """Recompute and store every ACTIVE priced asset's profile from the last `window_days` daily closes; return the count.

    Reads: one Query per day of the window, the catalog, the stored profiles.
    :raises LeaseLost: the fence's lease has moved on.
    """
    closes: dict[str, dict[date, Decimal]] = {}
    today = now.date()
    for n in range(window_days, 0, -1):
        day = today - timedelta(days=n)
        for asset_id, candle in candles.day(day)[0].items():
            closes.setdefault(asset_id, {})[day] = candle.close
    fresh = build_profiles(list(assets.iter_all()), closes, top_k, max_assets)
    kept = {p.asset_id for p in fresh}
    gone = sorted(p.asset_id for p in profiles.all() if p.asset_id not in kept)
    profiles.put_all(fresh, gone, now, fence)
    log.info("recommendations: %s profiles stored, %s retired", len(fresh), len(gone))
    return len(fresh)
