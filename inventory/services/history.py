"""HistoryService: candles, daily reports and recommendations, read from what the refresher stored."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from ..domain import Asset
from ..domain.history import (
    CANDLE_RETENTION_DAYS,
    Candle,
    DayNotFinished,
    DayTotals,
    NoRecommendations,
    Profile,
    ReportExpired,
    ReportNotFound,
    Similar,
    candles_of,
    categories_of,
    day_start,
)
from ..domain.similarity import diversifiers
from ..store import Stores
from .cache import LoadingCache
from .catalog import MAX_RAW_POINTS, CatalogService, history_range

DAY_SECONDS = 86400


class HistoryService:
    def __init__(self, catalog: CatalogService, stores: Stores):
        self.catalog = catalog
        self._candles = stores.candles
        self._prices = stores.prices
        self._profiles = stores.profiles
        config = catalog.config
        # Every profile, for POST /recommendations: one Query per generation and ttl, not per request.
        self._all_profiles = LoadingCache(
            "recommend_profiles", 1, config.CACHE_TTL_SECONDS * 12, config.CACHE_STALE_GRACE_SECONDS,
        )

    @property
    def clock(self):
        return self.catalog.clock

    def candles(self, asset_id: str, start: datetime | None, end: datetime | None, interval: int) -> list[Candle]:
        """Open/high/low/close per interval between start and end, oldest first.

        Daily candles come from the stored roll-ups; days not rolled up yet
        (today, and any the refresher has not reached) from the points.

        :raises AssetNotFound: no such asset.
        :raises InvalidRequest: an empty or too long range for the interval.
        """
        start, end = history_range(start, end, interval, self.clock())
        self.catalog.get_asset(asset_id)
        if interval != DAY_SECONDS:
            return candles_of(self._prices.history(asset_id, start, end, MAX_RAW_POINTS), interval)
        stored = self._candles.asset_days(asset_id, start.date(), end.date())
        points_from = start
        if stored:
            points_from = max(start, stored[-1].start + timedelta(days=1))
        # Fine points older than their retention are gone; never read more than that.
        points_from = max(points_from, day_start(self.clock().date()) - timedelta(days=self.catalog.config.PRICE_HISTORY_DAYS))
        recent = (candles_of(self._prices.history(asset_id, points_from, end, MAX_RAW_POINTS), DAY_SECONDS)
                  if points_from <= end else [])
        return stored + recent

    def daily_report(self, day: date) -> tuple[dict[str, Candle], DayTotals]:
        """Every asset's candle of a finished UTC day and the market totals at its close.

        :raises DayNotFinished: today or later.
        :raises ReportExpired: older than the candle retention.
        :raises ReportNotFound: the day was not rolled up (the service was not running, or not yet).
        """
        today = self.clock().date()
        if day >= today:
            raise DayNotFinished(errors={"query": {"date": [f"Must be before {today.isoformat()} (UTC)."]}})
        if day < today - timedelta(days=CANDLE_RETENTION_DAYS - 1):
            raise ReportExpired()
        candles, totals = self._candles.day(day)
        if totals is None:
            raise ReportNotFound()
        return candles, totals

    def similar(self, asset_id: str, limit: int) -> tuple[Asset, list[tuple[Similar, Asset]]]:
        """The stored most-similar assets that are tradable now, best first.

        :raises AssetNotFound: no such asset.
        :raises NoRecommendations: none computed for it (not tradable, or no run yet).
        """
        asset = self.catalog.get_asset(asset_id)
        profile = self._profiles.get(asset.asset_id)
        if profile is None:
            raise NoRecommendations()
        return asset, self._tradable(list(profile.similar), limit)

    def diversify(self, asset_ids: list[str], limit: int) -> tuple[list[tuple[Similar, Asset]], list[str], list[str]]:
        """Tradable assets that would diversify these holdings, best first; and the unknown and history-less ids.

        Computed at request time from the stored profiles (one cached Query; a
        few hundred dicts of 30 returns each): the holdings are the caller's, so
        they cannot be precomputed, and the work is linear in the catalog.
        """
        found, unknown = self.catalog.batch_get(asset_ids)
        profiles = {p.asset_id: p for p in self._all_profiles.get("all", self._profiles.all).value}
        holdings, without_history = [], []
        for asset in found:
            stored = profiles.get(asset.asset_id)
            if stored is None or not stored.returns:
                without_history.append(asset.asset_id)
            holdings.append(Profile(asset.asset_id, categories_of(asset), asset.market_cap,
                                    stored.returns if stored else {}))
        ranked = diversifiers(holdings, [profiles[k] for k in sorted(profiles)])
        return self._tradable(ranked, limit), unknown, without_history

    def _tradable(self, ranked: list[Similar], limit: int) -> list[tuple[Similar, Asset]]:
        """The first `limit` of `ranked` whose asset is tradable now (read in small batches)."""
        now, max_age = self.clock(), self.catalog.max_age
        chosen, position, batch = [], 0, max(limit * 2, 10)
        while len(chosen) < limit and position < len(ranked):
            window = ranked[position:position + batch]
            position += batch
            found, _ = self.catalog.batch_get([s.asset_id for s in window])
            by_id = {a.asset_id: a for a in found}
            for item in window:
                asset = by_id.get(item.asset_id)
                if asset is not None and asset.is_tradable(now, max_age) and len(chosen) < limit:
                    chosen.append((item, asset))
        return chosen
