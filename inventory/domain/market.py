"""Market overview and movers, computed once per catalog snapshot (search.SearchIndex) and read per request in O(log n)."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from . import Asset, AssetStatus
from .search import SearchIndex

# Dominance is a share of the total in percent, to this many places (half-even).
PERCENT_PLACES = Decimal("0.0001")
# Enough digits that sums of 10^5 market caps with 18 decimals never round.
_EXACT_PRECISION = 200
TOP_N = 10
WINDOWS = {"24h": "price_change_percentage_24h", "7d": "price_change_percentage_7d"}


def _exact_sum(values) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = _EXACT_PRECISION
        return sum(values, Decimal(0))


def _share(part: Decimal | None, total: Decimal) -> Decimal | None:
    if part is None or not total:
        return None
    with localcontext() as ctx:
        ctx.prec = _EXACT_PRECISION
        return (part * 100 / total).quantize(PERCENT_PLACES, rounding=ROUND_HALF_EVEN)


def _median(values: list[Decimal]) -> Decimal | None:
    if not values:
        return None
    values = sorted(values)
    middle = len(values) // 2
    if len(values) % 2:
        return values[middle]
    with localcontext() as ctx:
        ctx.prec = _EXACT_PRECISION
        return (values[middle - 1] + values[middle]) / 2


@dataclass(frozen=True)
class Overview:
    """The market picture of one snapshot; the time-dependent counts are read with `at`."""

    asset_count: int
    total_market_cap: Decimal
    total_volume_24h: Decimal
    btc_dominance: Decimal | None
    eth_dominance: Decimal | None
    top10_dominance: Decimal | None
    advancers: int
    decliners: int
    unchanged: int
    median_change_24h: Decimal | None
    suspended_count: int
    inactive_count: int
    as_of: datetime | None
    # Sorted, for counting at any moment by bisection.
    _tradable_until: tuple[datetime, ...]
    _price_times: tuple[datetime, ...]
    _priced_without_time: int

    @classmethod
    def of(cls, index: SearchIndex, max_age_seconds: int) -> "Overview":
        assets = index.assets
        caps = [a.market_cap for a in assets if a.market_cap is not None]
        total_cap = _exact_sum(caps)
        by_id = {a.asset_id: a for a in assets}
        top = sorted(caps, reverse=True)[:TOP_N]
        changes = [a.price_change_percentage_24h for a in assets if a.price_change_percentage_24h is not None]
        priced = [a for a in assets if a.current_price is not None]
        return cls(
            asset_count=len(assets),
            total_market_cap=total_cap,
            total_volume_24h=_exact_sum(a.volume_24h for a in assets if a.volume_24h is not None),
            btc_dominance=_share(getattr(by_id.get("BTC"), "market_cap", None), total_cap),
            eth_dominance=_share(getattr(by_id.get("ETH"), "market_cap", None), total_cap),
            top10_dominance=_share(_exact_sum(top), total_cap) if top else None,
            advancers=sum(1 for c in changes if c > 0),
            decliners=sum(1 for c in changes if c < 0),
            unchanged=sum(1 for c in changes if c == 0),
            median_change_24h=_median(changes),
            suspended_count=sum(1 for a in assets if a.status is AssetStatus.SUSPENDED),
            inactive_count=sum(1 for a in assets if a.status is AssetStatus.INACTIVE),
            as_of=max((a.last_price_update for a in priced if a.last_price_update), default=None),
            _tradable_until=tuple(sorted(d for d in index._tradable_until(max_age_seconds) if d is not None)),
            _price_times=tuple(sorted(a.last_price_update for a in priced if a.last_price_update)),
            _priced_without_time=sum(1 for a in priced if a.last_price_update is None),
        )

    def tradable_count(self, now: datetime) -> int:
        """Assets tradable at `now` (Asset.is_tradable)."""
        return len(self._tradable_until) - bisect_left(self._tradable_until, now)

    def stale_count(self, now: datetime, max_age_seconds: int) -> int:
        """Priced assets whose price is older than the allowed age at `now` (Asset.price_stale)."""
        oldest = now - timedelta(seconds=max_age_seconds)
        return bisect_left(self._price_times, oldest) + self._priced_without_time


class Movers:
    """Per window, the assets with a change for it, by change both ways (ties: asset_id)."""

    def __init__(self, index: SearchIndex, max_age_seconds: int):
        self._assets = index.assets
        self._until = index._tradable_until(max_age_seconds)
        self._orders = {}
        for window, attribute in WINDOWS.items():
            changed = [i for i, a in enumerate(self._assets) if getattr(a, attribute) is not None]
            changed.sort(key=lambda i: self._assets[i].asset_id)
            change = [getattr(self._assets[i], attribute) for i in range(len(self._assets))]
            # Stable sorts: ties stay by asset_id in both directions.
            self._orders[window] = (sorted(changed, key=change.__getitem__, reverse=True),
                                    sorted(changed, key=change.__getitem__))

    def top(
        self, window: str, limit: int, now: datetime, min_market_cap: Decimal, min_volume_24h: Decimal
    ) -> tuple[list[Asset], list[Asset]]:
        """(gainers, highest first; losers, lowest first) among tradable assets above both minimums."""
        attribute, (falling, rising) = WINDOWS[window], self._orders[window]

        def eligible(i: int) -> bool:
            a, until = self._assets[i], self._until[i]
            return (
                until is not None and now <= until
                and a.market_cap is not None and a.market_cap >= min_market_cap
                and a.volume_24h is not None and a.volume_24h >= min_volume_24h
            )

        gainers = self._take(falling, lambda i: getattr(self._assets[i], attribute) > 0, eligible, limit)
        losers = self._take(rising, lambda i: getattr(self._assets[i], attribute) < 0, eligible, limit)
        return gainers, losers

    def _take(self, order, moved, eligible, limit: int) -> list[Asset]:
        found = []
        for i in order:
            if not moved(i):
                break  # the order is by change: no further asset moved this way
            if eligible(i):
                found.append(self._assets[i])
                if len(found) == limit:
                    break
        return found


def overview(index: SearchIndex, max_age_seconds: int) -> Overview:
    """The snapshot's overview, computed on first use and kept with the snapshot."""
    return index.derived(f"overview:{max_age_seconds}", lambda i: Overview.of(i, max_age_seconds))


def movers(index: SearchIndex, max_age_seconds: int) -> Movers:
    """The snapshot's movers orderings, computed on first use and kept with the snapshot."""
    return index.derived(f"movers:{max_age_seconds}", lambda i: Movers(i, max_age_seconds))
