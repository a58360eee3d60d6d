"""Catalog search over an in-process snapshot: matching, filtering and keyset ordering.

DynamoDB cannot match a name substring without a Scan, so search runs over a
snapshot of the catalog that each worker reloads (by a Query on the by_rank
index) at most every CATALOG_SNAPSHOT_TTL_SECONDS. The catalog is small (tens
of thousands of assets at most), which is what makes this the right trade.
"""

from __future__ import annotations

import unicodedata
from array import array
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


def _folded(text: str) -> str:
    # The text itself when folding changes nothing: one string in memory, not two.
    folded = fold(text)
    return text if folded == text else folded


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


@dataclass(frozen=True)
class SearchResult:
    page: list[Asset]
    next_key: SortKey | None  # resume after this key; None on the last page
    total: int  # every match, not just the page
    active: int  # matches tradable now


class SearchIndex:
    """A catalog snapshot indexed once per load: folded names, and every ordering presorted.

    A query is then one pass of cheap filters over a presorted order (for the
    counts) and a binary search for the cursor, instead of a sort per request.
    """

    def __init__(self, assets):
        self.assets = list(assets)
        self._symbols = [_folded(a.symbol) for a in self.assets]
        self._ids = [_folded(a.asset_id) for a in self.assets]
        self._names = [_folded(a.name) for a in self.assets]
        self._by_symbol: dict[str, tuple[int, ...]] = {}
        for i, symbol in enumerate(self._symbols):
            self._by_symbol[symbol] = (*self._by_symbol.get(symbol, ()), i)
        self._by_id = {a.asset_id: i for i, a in enumerate(self.assets)}
        self.by_coingecko_id = {a.coingecko_id: a for a in self.assets if a.coingecko_id}
        self._deadlines: tuple[int, list] | None = None
        self._values = {
            sort: self._names if sort == "name" else [getattr(a, _SORT_ATTRIBUTE[sort]) for a in self.assets]
            for sort in _SORT_ATTRIBUTE
        }
        by_id = sorted(range(len(self.assets)), key=lambda i: self.assets[i].asset_id)
        self._orders: dict[tuple[str, bool], array] = {}
        for sort, values in self._values.items():
            present = [i for i in by_id if values[i] is not None]
            missing = [i for i in by_id if values[i] is None]
            # Stable sorts (reverse=True keeps ties in their order): ties stay by
            # asset_id in both directions and missing values come last. Arrays:
            # a quarter of a list's memory, twelve of them per snapshot.
            self._orders[sort, False] = array("i", sorted(present, key=values.__getitem__) + missing)
            self._orders[sort, True] = array("i", sorted(present, key=values.__getitem__, reverse=True) + missing)

    def __len__(self) -> int:
        return len(self.assets)

    def _tradable_until(self, max_age_seconds: int) -> list:
        """Per asset, the last moment it is tradable (Asset.is_tradable), or None; built once per max age."""
        if self._deadlines is None or self._deadlines[0] != max_age_seconds:
            # price_fresh_until honours an operator-priced asset's own bound.
            self._deadlines = (max_age_seconds, [
                a.price_fresh_until(max_age_seconds)
                if a.status is AssetStatus.ACTIVE and a.current_price is not None and a.last_price_update
                else None
                for a in self.assets
            ])
        return self._deadlines[1]

    def search(self, query: SearchQuery, limit: int, after: SortKey | None, now, max_age_seconds: int) -> SearchResult:
        descending = query.order == "desc"
        order = self._orders[query.sort, descending]
        needle = fold(query.q.strip()) if query.q and query.q.strip() else None
        exact: set[int] = set()
        if needle is not None:
            exact.update(self._by_symbol.get(needle, ()))
            if needle.upper() in self._by_id:
                exact.add(self._by_id[needle.upper()])
            symbols, ids, names = self._symbols, self._ids, self._names
            order = [
                i for i in order
                if i in exact or symbols[i].startswith(needle) or ids[i].startswith(needle) or needle in names[i]
            ]
        assets = self.assets
        if query.status is not None or query.category is not None:
            status, category = query.status, query.category
            order = [
                i for i in order
                if (status is None or assets[i].status is status)
                and (category is None or assets[i].category == category)
            ]
        if query.min_price is not None or query.max_price is not None:
            low, high = query.min_price, query.max_price
            order = [
                i for i in order
                if (price := assets[i].current_price) is not None
                and (low is None or price >= low) and (high is None or price <= high)
            ]
        # An exact ticker match leads only in the default (rank) ordering; an
        # explicit sort is obeyed as asked.
        leading = [i for i in order if i in exact] if exact and query.sort == "rank" else []
        if leading:
            lead = set(leading)
            order = leading + [i for i in order if i not in lead]
        values = self._values[query.sort]
        lead_count = len(leading)

        def key(position: int) -> SortKey:
            i = order[position]
            return (0 if position < lead_count else 1, values[i], assets[i].asset_id)

        start = 0
        if after is not None:
            # The first position whose key sorts after the cursor's.
            low, high = 0, len(order)
            while low < high:
                middle = (low + high) // 2
                if _compare(key(middle), after, descending) > 0:
                    high = middle
                else:
                    low = middle + 1
            start = low
        page = order[start:start + limit]
        next_key = key(start + limit - 1) if start + limit < len(order) else None
        deadlines = self._tradable_until(max_age_seconds)
        active = sum(1 for i in order if (until := deadlines[i]) is not None and now <= until)
        return SearchResult([assets[i] for i in page], next_key, len(order), active)


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
