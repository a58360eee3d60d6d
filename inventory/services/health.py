"""The price checks of /health/detailed: which watched assets are stale or unpriced, read from the catalog snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..domain import Asset, AssetStatus
from ..domain.search import SearchIndex, SearchQuery

_BY_RANK = SearchQuery()  # the default order: by rank


@dataclass(frozen=True)
class WatchedAssets:
    """HEALTH_TOP_ASSETS parsed: the assets ranked 1 to `count`, or these `ids`."""

    count: int = 0
    ids: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: str) -> "WatchedAssets":
        """:raises ValueError: neither a count nor a list of asset ids."""
        text = raw.strip()
        if text.isdigit():
            return cls(count=int(text))
        ids = tuple(dict.fromkeys(part.strip().upper() for part in text.split(",") if part.strip()))
        if not ids or any(not (part.isascii() and part.isalnum()) for part in ids):
            raise ValueError(f"HEALTH_TOP_ASSETS: expected a count or comma-separated asset ids, got {raw!r}")
        return cls(ids=ids)

    def describe(self) -> str:
        return f"ranks 1-{self.count}" if not self.ids else ", ".join(self.ids)


@dataclass(frozen=True)
class AssetProblem:
    asset_id: str
    # Stable codes: no_price (ACTIVE, never priced or the price was dropped),
    # stale (ACTIVE, older than PRICE_MAX_AGE_SECONDS), missing (a listed id not in the catalog).
    problem: str
    last_price_update: datetime | None = None


def watched(index: SearchIndex, which: WatchedAssets, now: datetime, max_age: int) -> tuple[list[Asset], list[str]]:
    """(the watched assets found in the snapshot, listed ids it lacks)."""
    if which.ids:
        found = {a.asset_id: a for a in index.assets if a.asset_id in set(which.ids)}
        return [found[i] for i in which.ids if i in found], [i for i in which.ids if i not in found]
    if which.count <= 0:
        return [], []
    page = index.search(_BY_RANK, which.count, None, now, max_age).page
    # Ranks 1..count as the source ranks them: a coin we never stored (no usable
    # ticker) leaves a gap rather than pulling a minor coin into the watch list.
    return [a for a in page if a.market_cap_rank is not None and a.market_cap_rank <= which.count], []


def price_problems(index: SearchIndex, which: WatchedAssets, now: datetime, max_age: int) -> tuple[int, list[AssetProblem]]:
    """(how many assets were checked, the problems among them).

    Only ACTIVE assets count: INACTIVE and SUSPENDED are an operator's choice,
    and their prices are not expected to be tradable.
    """
    assets, missing = watched(index, which, now, max_age)
    problems = [AssetProblem(asset_id, "missing") for asset_id in missing]
    for asset in assets:
        if asset.status is not AssetStatus.ACTIVE:
            continue
        if asset.current_price is None:
            problems.append(AssetProblem(asset.asset_id, "no_price", asset.last_price_update))
        elif asset.price_stale(now, max_age):
            problems.append(AssetProblem(asset.asset_id, "stale", asset.last_price_update))
    return len(assets) + len(missing), problems
