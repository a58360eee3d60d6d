"""Catalog search over an in-process snapshot: matching, filtering and keyset ordering.

DynamoDB cannot match a name substring without a Scan, so search runs over a
snapshot of the catalog that each worker reloads (by a Query on the by_rank
index) at most every CATALOG_SNAPSHOT_TTL_SECONDS. The catalog is small (tens
of thousands of assets at most), which is what makes this the right trade.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from .domain import Asset, AssetStatus

_SORT_ATTRIBUTE = {
    "rank": "market_cap_rank",
    "price": "current_price",
    "market_cap": "market_cap",
    "volume_24h": "volume_24h",
    "price_change_percentage_24h": "price_change_percentage_24h",
    "name": "name",
}


def fold(text: str) -> str:
    """Case- and width-insensitive form for matching (NFKC + casefold)."""
    return unicodedata.normalize("NFKC", text).casefold()


@dataclass(frozen=True)
class SearchQuery:
    q: str | None = None
    category: str | None = None
    status: AssetStatus | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    sort: str = "rank"
    order: str = "asc"


# A position in the ordering: (0 for an exact ticker match else 1, sort value or None, asset_id).
SortKey = tuple[int, object, str]


def _sort_value(asset: Asset, sort: str):
    value = getattr(asset, _SORT_ATTRIBUTE[sort])
    return fold(value) if sort == "name" and value is not None else value


def _compare(a: SortKey, b: SortKey, descending: bool) -> int:
    if a[0] != b[0]:
        return -1 if a[0] < b[0] else 1
    if a[1] != b[1]:
        # Missing values sort last in either direction.
        if a[1] is None:
            return 1
        if b[1] is None:
            return -1
        smaller = a[1] < b[1]
        return (1 if smaller else -1) if descending else (-1 if smaller else 1)
    return (a[2] > b[2]) - (a[2] < b[2])


def search(
    assets: list[Asset], query: SearchQuery, limit: int, after: SortKey | None = None
) -> tuple[list[Asset], SortKey | None, list[Asset]]:
    """Return (page, key to resume after it or None on the last page, every match)."""
    needle = fold(query.q.strip()) if query.q and query.q.strip() else None
    exact_id = needle.upper() if needle else None
    matches: list[tuple[SortKey, Asset]] = []
    for asset in assets:
        if query.status is not None and asset.status is not query.status:
            continue
        if query.category is not None and asset.category != query.category:
            continue
        price = asset.current_price
        if query.min_price is not None and (price is None or price < query.min_price):
            continue
        if query.max_price is not None and (price is None or price > query.max_price):
            continue
        exact = False
        if needle is not None:
            symbol = fold(asset.symbol)
            exact = asset.asset_id == exact_id or symbol == needle
            if not (exact or symbol.startswith(needle) or fold(asset.asset_id).startswith(needle)
                    or needle in fold(asset.name)):
                continue
        # An exact ticker match leads only in the default (rank) ordering; an
        # explicit sort is obeyed as asked.
        lead = 0 if (exact and query.sort == "rank") else 1
        matches.append(((lead, _sort_value(asset, query.sort), asset.asset_id), asset))

    descending = query.order == "desc"
    compare = functools.partial(_compare, descending=descending)
    matches.sort(key=functools.cmp_to_key(lambda x, y: compare(x[0], y[0])))
    remaining = matches if after is None else [m for m in matches if compare(m[0], after) > 0]
    page = remaining[:limit]
    next_key = page[-1][0] if len(remaining) > limit else None
    return [asset for _, asset in page], next_key, [asset for _, asset in matches]


def key_to_cursor(key: SortKey) -> list:
    lead, value, asset_id = key
    return [lead, None if value is None else str(value), asset_id]


def key_from_cursor(position: list, sort: str) -> SortKey:
    """Rebuild a SortKey from a decoded cursor; ValueError when it does not fit `sort`."""
    lead, value, asset_id = position
    if lead not in (0, 1) or not isinstance(asset_id, str) or not (value is None or isinstance(value, str)):
        raise ValueError("malformed cursor position")
    if value is not None and sort != "name":
        try:
            value = int(value) if sort == "rank" else Decimal(value)
        except (ValueError, InvalidOperation):
            raise ValueError("malformed cursor value") from None
    return (lead, value, asset_id)
