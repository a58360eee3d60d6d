"""The category taxonomy: its slugs, the CoinGecko categories they map from, the primary rule,
per-category aggregates over a catalog. No I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal

from .models import UNCATEGORIZED, Asset, AssetStatus

# Taxonomy slug -> the CoinGecko category ids (`/coins/categories/list`) whose
# members carry it. The ORDER IS THE PRIMARY-CATEGORY PRECEDENCE: an asset's
# primary category is its first slug in this order. The most specific
# description of what a token *is* wins over what it runs on or is used for:
# USDe (stablecoin, defi) is a stablecoin, wstETH (wrapped, liquid-staking,
# defi) is wrapped, BNB (exchange-token, layer-1) is an exchange token; chains
# come last because almost every token also sits in some ecosystem.
# `other` maps from nothing: only operators set it.
SOURCE_CATEGORIES: dict[str, tuple[str, ...]] = {
    "stablecoin": ("stablecoins",),
    "wrapped": ("wrapped-tokens",),
    "liquid-staking": ("liquid-staking-tokens", "liquid-restaking-tokens"),
    "rwa": ("real-world-assets-rwa", "tokenized-gold"),
    "exchange-token": ("exchange-based-tokens",),
    "meme": ("meme-token",),
    "privacy": ("privacy-coins",),
    "oracle": ("oracle",),
    "ai": ("artificial-intelligence",),
    "gaming": ("gaming",),
    "defi": ("decentralized-finance-defi",),
    "layer-2": ("layer-2",),
    "layer-1": ("layer-1",),
    "other": (),
}
TAXONOMY: tuple[str, ...] = tuple(SOURCE_CATEGORIES)
# Every slug an asset may carry (the taxonomy, and `uncategorized`).
SLUGS: tuple[str, ...] = (*TAXONOMY, UNCATEGORIZED)
_PRECEDENCE = {slug: i for i, slug in enumerate(SLUGS)}

# The weighted 24h change is rounded to this many decimal places (half-even),
# after summing and dividing in a context wide enough that nothing before the
# rounding is lost (20 digits of USD market cap times a 10-digit percent).
CHANGE_PLACES = Decimal("1e-8")
_WIDE = Context(prec=60)


def ordered(slugs: Iterable[str]) -> tuple[str, ...]:
    """The slugs without repeats, in precedence order (so the primary first); `uncategorized` when none."""
    known = sorted({s for s in slugs if s in _PRECEDENCE and s != UNCATEGORIZED}, key=_PRECEDENCE.__getitem__)
    return tuple(known) or (UNCATEGORIZED,)


def primary(slugs: Iterable[str]) -> str:
    """The primary category: the first slug in precedence order, `uncategorized` when none."""
    return ordered(slugs)[0]


def classify(coingecko_id: str | None, members: Mapping[str, set[str]]) -> tuple[str, ...]:
    """An asset's categories from the source's membership (slug -> CoinGecko ids), primary first."""
    if not coingecko_id:
        return (UNCATEGORIZED,)
    return ordered(slug for slug, ids in members.items() if coingecko_id in ids)


def members_of(asset: Asset) -> tuple[str, ...]:
    """The slugs an asset counts under (an item written before categories existed: its one label)."""
    return asset.categories or (asset.category or UNCATEGORIZED,)


# -- aggregates ----------------------------------------------------------------


@dataclass(frozen=True)
class CategorySummary:
    """One category's figures over the assets carrying it (any of their categories, not only the primary)."""

    slug: str
    asset_count: int
    tradable_count: int
    market_cap: Decimal
    volume_24h: Decimal
    market_cap_change_24h: Decimal | None  # market-cap-weighted 24h price change, percent
    top_assets: list[Asset] = field(default_factory=list)


@dataclass
class _Totals:
    assets: list[Asset] = field(default_factory=list)  # largest market cap first
    market_cap: Decimal = Decimal(0)
    volume_24h: Decimal = Decimal(0)
    weighted: Decimal = Decimal(0)  # sum of market_cap * change over assets having both
    weight: Decimal = Decimal(0)  # sum of those market caps
    tradable_until: list = field(default_factory=list)  # per ACTIVE priced asset, when its price turns stale


class CategoryBoard:
    """Every category's totals, computed once from one catalog snapshot.

    Sums are exact Decimal additions of the stored values, so they equal what a
    client adds up from the asset list rows. Only the tradable count depends on
    the time of asking: each priced ACTIVE asset's deadline is kept and counted
    against `now` per request.
    """

    def __init__(self, assets: Iterable[Asset], max_age_seconds: int):
        self.max_age_seconds = max_age_seconds
        age = timedelta(seconds=max_age_seconds)
        self._totals: dict[str, _Totals] = {slug: _Totals() for slug in SLUGS}
        for asset in sorted(assets, key=_by_market_cap):
            deadline = (
                asset.last_price_update + age
                if asset.status is AssetStatus.ACTIVE and asset.current_price is not None and asset.last_price_update
                else None
            )
            for slug in members_of(asset):
                totals = self._totals.get(slug)
                if totals is None:
                    continue  # a slug the taxonomy no longer has
                totals.assets.append(asset)
                if asset.market_cap is not None:
                    totals.market_cap = _WIDE.add(totals.market_cap, asset.market_cap)
                if asset.volume_24h is not None:
                    totals.volume_24h = _WIDE.add(totals.volume_24h, asset.volume_24h)
                change = asset.price_change_percentage_24h
                if asset.market_cap and change is not None:
                    totals.weighted = _WIDE.add(totals.weighted, _WIDE.multiply(asset.market_cap, change))
                    totals.weight = _WIDE.add(totals.weight, asset.market_cap)
                if deadline is not None:
                    totals.tradable_until.append(deadline)

    def summary(self, slug: str, now: datetime, top: int = 0) -> CategorySummary:
        """:raises KeyError: not a slug of the taxonomy."""
        totals = self._totals[slug]
        change = None
        if totals.weight:
            change = _WIDE.divide(totals.weighted, totals.weight).quantize(CHANGE_PLACES, ROUND_HALF_EVEN)
        return CategorySummary(
            slug=slug,
            asset_count=len(totals.assets),
            tradable_count=sum(1 for until in totals.tradable_until if now <= until),
            market_cap=totals.market_cap,
            volume_24h=totals.volume_24h,
            market_cap_change_24h=change,
            top_assets=totals.assets[:top],
        )

    def summaries(self, now: datetime) -> list[CategorySummary]:
        return [self.summary(slug, now) for slug in SLUGS]


def _by_market_cap(asset: Asset):
    # Largest first, assets without a market cap last, ties by asset_id.
    return (asset.market_cap is None, -(asset.market_cap or 0), asset.asset_id)
