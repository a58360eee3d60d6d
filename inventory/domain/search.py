"""Catalog search over the read model's versions: filters, multi-key keyset ordering, and pinned walks for cursors.

DynamoDB cannot match a name substring without a Scan, so search runs over the
catalog each process holds in memory (readmodel.py: loaded once, then kept
current from the feed). The catalog is small (tens of thousands of assets at
most), which is what makes this the right trade.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import operator
import threading
import time
import unicodedata
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation

from cachetools import LRUCache, TTLCache

from . import Asset, AssetStatus

# Range filters (`min_<name>`/`max_<name>`) and numeric sort keys -> the Asset attribute.
RANGE_ATTRIBUTE = {
    "rank": "market_cap_rank",
    "price": "current_price",
    "market_cap": "market_cap",
    "volume_24h": "volume_24h",
    "price_change_percentage_24h": "price_change_percentage_24h",
    "price_change_percentage_7d": "price_change_percentage_7d",
    "price_change_percentage_30d": "price_change_percentage_30d",
}
_SORT_ATTRIBUTE = {**RANGE_ATTRIBUTE, "name": "name"}
SORT_KEYS = tuple(_SORT_ATTRIBUTE)
DEFAULT_SORT = (("rank", False),)
# Queries whose matches a snapshot keeps (SearchIndex._queries).
MEMO_QUERIES = 32


def fold(text: str) -> str:
    """Case- and width-insensitive form for matching (NFKC + casefold)."""
    return unicodedata.normalize("NFKC", text).casefold()


def _folded(text: str) -> str:
    # The text itself when folding changes nothing: one string in memory, not two.
    folded = fold(text)
    return text if folded == text else folded


@dataclass(frozen=True)
class SearchQuery:
    """Every filter of list, search and export; all of them compose (AND), `categories` match any."""

    q: str | None = None
    categories: tuple[str, ...] = ()
    status: AssetStatus | None = None
    tradable: bool = False
    # (range name, low, high), inclusive, in RANGE_ATTRIBUTE order; an asset without the value never matches.
    ranges: tuple[tuple[str, Decimal | None, Decimal | None], ...] = ()
    # (sort key, descending) pairs, most significant first; asset_id breaks the last tie.
    sort: tuple[tuple[str, bool], ...] = DEFAULT_SORT

    @property
    def directions(self) -> tuple[bool, ...]:
        return tuple(descending for _, descending in self.sort)


# A position in the ordering: (0 for an exact ticker match else 1, the sort values, asset_id).
SortKey = tuple[int, tuple, str]


def _sort_value(asset: Asset, sort: str):
    value = getattr(asset, _SORT_ATTRIBUTE[sort])
    return fold(value) if sort == "name" and value is not None else value


def _compare(a: SortKey, b: SortKey, directions: tuple[bool, ...]) -> int:
    if a[0] != b[0]:
        return -1 if a[0] < b[0] else 1
    for x, y, descending in zip(a[1], b[1], directions):
        if x != y:
            # Missing values sort last in either direction.
            if x is None:
                return 1
            if y is None:
                return -1
            smaller = x < y
            return (1 if smaller else -1) if descending else (-1 if smaller else 1)
    return (a[2] > b[2]) - (a[2] < b[2])


@dataclass(frozen=True)
class SearchResult:
    page: list[Asset]
    next_key: SortKey | None  # resume after this key; None on the last page
    total: int  # every match, not just the page
    active: int  # matches tradable now
    # Every match, in order (positions in the index; the memo's own: read-only).
    order: Sequence[int] = field(default_factory=tuple, repr=False)


@dataclass(frozen=True)
class _Timed:
    """A query's tradable matches at some moment, valid for every `now` with after < now <= until."""

    order: array  # positions tradable then, in query order (filled for a tradable query only)
    lead: int  # how many of them lead as exact ticker matches
    count: int
    after: object  # the latest deadline of a match that was already past (None: none was)
    until: object  # the earliest deadline of a match still tradable (None: none was)


@dataclass
class _Matches:
    """A query's matches in one snapshot, tradability left out."""

    order: array
    lead: int
    timed: _Timed | None = None


class SearchIndex:
    """One version of the catalog, indexed for search: folded names, and orderings built once each.

    A query is then one pass of cheap filters over a presorted order (for the
    counts) and a binary search for the cursor, instead of a sort per request.
    Secondary sort keys only reorder runs of ties on the first key, ranked by
    dense ranks. An ordering is built on its first use in this version and
    shared with the next version (`updated`) while no changed row moves it: a
    price refresh rebuilds the price orderings once, never the name ordering.
    """

    def __init__(self, assets, seq: int = 0, fingerprint: str | None = None):
        self.assets = list(assets)
        # The feed position this version reflects (ReadModel), and what identifies its
        # content across workers: a cursor pins the version its walk began in by it.
        self.seq = seq
        self.fingerprint = fingerprint or str(seq)
        self._symbols = [_folded(a.symbol) for a in self.assets]
        self._ids = [_folded(a.asset_id) for a in self.assets]
        self._names = [_folded(a.name) for a in self.assets]
        self._by_symbol: dict[str, tuple[int, ...]] = {}
        for i, symbol in enumerate(self._symbols):
            self._by_symbol[symbol] = (*self._by_symbol.get(symbol, ()), i)
        self._by_id = {a.asset_id: i for i, a in enumerate(self.assets)}
        self.by_coingecko_id = {a.coingecko_id: a for a in self.assets if a.coingecko_id}
        self._fresh_state()

    def _fresh_state(self) -> None:
        self._deadlines: tuple[int, list] | None = None
        # Per sort key, built on first use: its values, both orderings and its dense ranks.
        self._values: dict[str, list] = {}
        self._orders: dict[tuple[str, bool], array] = {}
        self._ranks: dict[str, array] = {}
        self._memo: dict[str, object] = {}
        self._memo_lock = threading.RLock()
        # Per query, its matches in order (issue 12: a repeated filtered, sorted page
        # costs O(page), not a pass over the catalog). Bounded: an entry holds 4 bytes
        # per match, so at most ~1.3 MB at 10,000 assets.
        self._queries: LRUCache = LRUCache(maxsize=MEMO_QUERIES)

    def updated(self, rows: dict[str, Asset], seq: int, fingerprint: str | None = None) -> "SearchIndex":
        """A new version with these rows replaced (or added); what they leave unchanged is shared.

        O(catalog) list copies and O(changed rows) work; orderings whose values
        no row changed are shared, the others are rebuilt on their first use.
        """
        new = object.__new__(SearchIndex)
        new.seq, new.fingerprint = seq, fingerprint or str(seq)
        new.assets = list(self.assets)
        new._symbols, new._ids, new._names = self._symbols, self._ids, self._names
        new._by_symbol, new._by_id = self._by_symbol, self._by_id
        new.by_coingecko_id = dict(self.by_coingecko_id)
        new._fresh_state()
        changed: list[int] = []
        copied = False
        for asset_id, row in rows.items():
            i = new._by_id.get(asset_id)
            old = None if i is None else new.assets[i]
            if old is not None and old.symbol == row.symbol and old.name == row.name:
                new.assets[i] = row
            else:
                if not copied:  # names or the set of assets change: rare (creates, imports)
                    new._symbols, new._ids, new._names = list(new._symbols), list(new._ids), list(new._names)
                    new._by_symbol, new._by_id = dict(new._by_symbol), dict(new._by_id)
                    copied = True
                if i is None:
                    i = len(new.assets)
                    new.assets.append(row)
                    new._by_id[asset_id] = i
                    new._symbols.append(None)
                    new._ids.append(_folded(asset_id))
                    new._names.append(None)
                else:
                    new.assets[i] = row
                    new._by_symbol[new._symbols[i]] = tuple(p for p in new._by_symbol[new._symbols[i]] if p != i)
                new._symbols[i], new._names[i] = _folded(row.symbol), _folded(row.name)
                new._by_symbol[new._symbols[i]] = (*new._by_symbol.get(new._symbols[i], ()), i)
            if old is not None and old.coingecko_id and old.coingecko_id != row.coingecko_id:
                new.by_coingecko_id.pop(old.coingecko_id, None)
            if row.coingecko_id:
                new.by_coingecko_id[row.coingecko_id] = row
            changed.append(i)
        grown = len(new.assets) != len(self.assets)
        with self._memo_lock:
            built = dict(self._values)
            orders, ranks = dict(self._orders), dict(self._ranks)
        for sort, values in built.items():
            if grown or any(
                i >= len(values) or values[i] != _sort_value(new.assets[i], sort) for i in changed
            ):
                continue  # rebuilt on first use
            new._values[sort] = values
            new._ranks[sort] = ranks[sort]
            for descending in (False, True):
                new._orders[sort, descending] = orders[sort, descending]
        return new

    def _sorted(self, sort: str) -> list:
        """The values of one sort key, position by position (built on first use)."""
        with self._memo_lock:
            if sort not in self._values:
                self._build(sort)
            return self._values[sort]

    def _order(self, sort: str, descending: bool) -> array:
        with self._memo_lock:
            if sort not in self._values:
                self._build(sort)
            return self._orders[sort, descending]

    def _rank(self, sort: str) -> array:
        with self._memo_lock:
            if sort not in self._values:
                self._build(sort)
            return self._ranks[sort]

    def _build(self, sort: str) -> None:
        values = self._names if sort == "name" else [getattr(a, _SORT_ATTRIBUTE[sort]) for a in self.assets]
        assets = self.assets
        by_id = sorted(range(len(assets)), key=lambda i: assets[i].asset_id)
        present = [i for i in by_id if values[i] is not None]
        missing = [i for i in by_id if values[i] is None]
        ascending = sorted(present, key=values.__getitem__)
        # Stable sorts (reverse=True keeps ties in their order): ties stay by
        # asset_id in both directions and missing values come last. Arrays:
        # a quarter of a list's memory.
        self._orders[sort, False] = array("i", ascending + missing)
        self._orders[sort, True] = array("i", sorted(present, key=values.__getitem__, reverse=True) + missing)
        # Dense ranks order secondary keys without comparing Decimals or strings.
        ranks = array("i", bytes(4 * len(assets)))
        rank, previous = 0, None
        for position, i in enumerate(ascending):
            if position and values[i] != previous:
                rank += 1
            ranks[i], previous = rank, values[i]
        for i in missing:
            ranks[i] = -1
        self._ranks[sort] = ranks
        self._values[sort] = values

    def __len__(self) -> int:
        return len(self.assets)

    def row(self, asset_id: str) -> Asset | None:
        """The asset's row in this snapshot, or None."""
        i = self._by_id.get(asset_id)
        return None if i is None else self.assets[i]

    def derived(self, name: str, build: Callable[["SearchIndex"], object]):
        """`build(self)`, computed once per snapshot (market overview, movers)."""
        with self._memo_lock:
            if name not in self._memo:
                self._memo[name] = build(self)
            return self._memo[name]

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

    def matching(self, query: SearchQuery, now, max_age_seconds: int) -> tuple[Sequence[int], int, int]:
        """(positions of the matching assets in query order, how many lead as exact ticker matches,
        how many match when `tradable` is left out: the listing's total_count).

        The positions are the memo's own (read-only): a repeated query costs no pass over the catalog.
        """
        matches = self._matches(query, max_age_seconds)
        if not query.tradable:
            return matches.order, matches.lead, len(matches.order)
        timed = self._timed(matches, query, now, max_age_seconds)
        return timed.order, timed.lead, len(matches.order)

    def _matches(self, query: SearchQuery, max_age_seconds: int) -> "_Matches":
        key = (query, max_age_seconds)
        with self._memo_lock:
            found = self._queries.get(key)
        if found is None:
            order, lead = self._match(query)
            found = _Matches(array("i", order), lead)
            with self._memo_lock:
                self._queries[key] = found
        return found

    def _timed(self, matches: "_Matches", query: SearchQuery, now, max_age_seconds: int) -> "_Timed":
        """The time-dependent part at `now`, reused while no match crosses its tradable deadline."""
        timed = matches.timed
        if timed is not None and (timed.after is None or timed.after < now) and (timed.until is None or now <= timed.until):
            return timed
        deadlines = self._tradable_until(max_age_seconds)
        kept: list[int] = []
        lead = 0
        after = until = None
        for position, i in enumerate(matches.order):
            deadline = deadlines[i]
            if deadline is not None and now <= deadline:
                kept.append(i)
                lead += position < matches.lead
                if until is None or deadline < until:
                    until = deadline
            elif deadline is not None and (after is None or deadline > after):
                after = deadline
        # Only a tradable query needs the positions; any other needs the count alone.
        timed = _Timed(array("i", kept) if query.tradable else array("i"), lead, len(kept), after, until)
        matches.timed = timed  # one reference assignment: readers see the old or the new window
        return timed

    def _match(self, query: SearchQuery) -> tuple[list[int], int]:
        """Every match (tradability left out) in query order, and how many lead as exact ticker matches."""
        first, descending = query.sort[0]
        order = self._order(first, descending)
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
        if query.status is not None:
            status = query.status
            order = [i for i in order if assets[i].status is status]
        if query.categories:
            wanted = set(query.categories)
            order = [
                i for i in order
                if assets[i].category in wanted or not wanted.isdisjoint(assets[i].categories)
            ]
        for name, low, high in query.ranges:
            values = self._sorted(name)
            order = [
                i for i in order
                if (value := values[i]) is not None and (low is None or value >= low) and (high is None or value <= high)
            ]
        if len(query.sort) > 1:
            order = self._break_ties(order, query.sort)
        # An exact ticker match leads only in the default (rank) ordering; an
        # explicit sort is obeyed as asked. The tradable filter (applied later,
        # per moment) keeps this order: it only drops positions.
        leading = [i for i in order if i in exact] if exact and len(query.sort) == 1 and first == "rank" else []
        if leading:
            lead = set(leading)
            order = leading + [i for i in order if i not in lead]
        return list(order), len(leading)

    def _break_ties(self, order, sort) -> list[int]:
        """Reorder each run of equal first-key values by the other keys (stable: asset_id stays last)."""
        first = self._rank(sort[0][0])
        rest = [(self._rank(name), descending) for name, descending in sort[1:]]
        big = len(self.assets) + 1

        def key(i: int) -> tuple:
            # Missing values (-1) last in either direction.
            return tuple(
                big if (r := ranks[i]) < 0 else (-r if descending else r) for ranks, descending in rest
            )

        result: list[int] = []
        run: list[int] = []
        for i in order:
            if run and first[i] != first[run[0]]:
                result.extend(sorted(run, key=key) if len(run) > 1 else run)
                run = []
            run.append(i)
        result.extend(sorted(run, key=key) if len(run) > 1 else run)
        return result

    def key(self, i: int, query: SearchQuery, leading: bool) -> SortKey:
        return (0 if leading else 1, tuple(self._sorted(name)[i] for name, _ in query.sort), self.assets[i].asset_id)

    def search(self, query: SearchQuery, limit: int, after: SortKey | None, now, max_age_seconds: int) -> SearchResult:
        matches = self._matches(query, max_age_seconds)
        timed = self._timed(matches, query, now, max_age_seconds)
        if query.tradable:
            order, lead_count, active = timed.order, timed.lead, timed.count
        else:
            order, lead_count, active = matches.order, matches.lead, timed.count
        directions = query.directions

        def key(position: int) -> SortKey:
            return self.key(order[position], query, position < lead_count)

        start = 0
        if after is not None:
            # The first position whose key sorts after the cursor's.
            low, high = 0, len(order)
            while low < high:
                middle = (low + high) // 2
                if _compare(key(middle), after, directions) > 0:
                    high = middle
                else:
                    low = middle + 1
            start = low
        page = order[start:start + limit]
        next_key = key(start + limit - 1) if start + limit < len(order) else None
        assets = self.assets
        return SearchResult([assets[i] for i in page], next_key, len(matches.order), active, order)


# Market fields no filter, sort or market figure reads. In a snapshot row they are
# kept as one string per asset and become Decimals only when read (a page being
# rendered): at 10,000 assets that is ~2 MB of strings instead of 120,000 Decimal
# objects (~12 MB) per worker (issue 11, worker RSS).
COLD_FIELDS = (
    "fully_diluted_valuation", "high_24h", "low_24h", "price_change_24h", "price_change_percentage_1h",
    "circulating_supply", "total_supply", "max_supply", "ath", "ath_change_percentage", "atl",
    "atl_change_percentage",
)
_SEPARATOR = "\x1f"  # never in a Decimal's str
_PACKED = object()  # what a packed row's own slot holds for a field kept in `_cold`
_SLOTS = {f.name: Asset.__dict__[f.name] for f in dataclasses.fields(Asset)}
_HOT_SLOTS = [slot for name, slot in _SLOTS.items() if name not in COLD_FIELDS]
_HOT = operator.attrgetter(*(name for name in _SLOTS if name not in COLD_FIELDS))
_COLD = operator.attrgetter(*COLD_FIELDS)
_ALL = operator.attrgetter(*_SLOTS)


class SnapshotAsset(Asset):
    """An Asset as a snapshot keeps it: COLD_FIELDS packed as text, rebuilt exactly (str <-> Decimal) on read.

    It is an Asset in every other respect: equal to an Asset with the same
    fields; `replace` and assignment work (assigning a cold field unpacks the row).
    """

    __slots__ = ("_cold",)

    @classmethod
    def of(cls, asset: Asset, like: "SnapshotAsset | None" = None) -> "SnapshotAsset":
        """`asset` as a snapshot row; `like` (its row in the previous snapshot) lends every
        value that is unchanged, or is returned itself when nothing changed.

        A price refresh changes a few fields of every asset: sharing the rest means a
        reload allocates a small row per asset instead of a second catalog while the
        previous one is still served (issue 11: that doubled a worker's snapshot memory).
        """
        if type(asset) is cls:
            return asset
        cold = _SEPARATOR.join("" if v is None else str(v) for v in _COLD(asset))
        hot = _HOT(asset)
        previous_cold = getattr(like, "_cold", None)  # None: no row, or one unpacked by an assignment
        if previous_cold is not None:
            old = _HOT(like)
            hot = tuple(o if _same(v, o) else v for v, o in zip(hot, old))
            if previous_cold == cold:
                if all(v is o for v, o in zip(hot, old)):
                    return like
                cold = previous_cold
        row = object.__new__(cls)
        for slot, value in zip(_HOT_SLOTS, hot):
            slot.__set__(row, value)
        for name in COLD_FIELDS:
            _SLOTS[name].__set__(row, _PACKED)
        row._cold = cold
        return row

    def __eq__(self, other):
        if not isinstance(other, Asset):
            return NotImplemented
        if type(other) is SnapshotAsset:
            mine = getattr(self, "_cold", None)
            if mine is not None and mine == getattr(other, "_cold", None):
                # Equal packed text is equal Decimals, digit for digit: no need to rebuild them.
                return _HOT(self) == _HOT(other)
        return _ALL(self) == _ALL(other)

    __hash__ = None


def _same(value, old) -> bool:
    """Equal and rendered alike: Decimal("1.0") == Decimal("1.00"), and one instant in two
    time zones is equal too, but their bodies differ."""
    if value is old:
        return True
    if type(value) is not type(old) or value != old:
        return False
    if type(value) is Decimal:
        return value.as_tuple() == old.as_tuple()
    if type(value) is datetime:
        return value.utcoffset() == old.utcoffset()
    return True


def _unpack(row: SnapshotAsset) -> None:
    """Every cold field into its own slot (before one is assigned): the row is then a plain Asset."""
    for name, text in zip(COLD_FIELDS, row._cold.split(_SEPARATOR)):
        _SLOTS[name].__set__(row, Decimal(text) if text else None)
    del row._cold


def _cold_property(position: int, slot) -> property:
    def get(self):
        value = slot.__get__(self)
        if value is not _PACKED:
            return value
        text = self._cold.split(_SEPARATOR)[position]
        return Decimal(text) if text else None

    def set(self, value):
        if getattr(self, "_cold", None) is not None:
            _unpack(self)
        slot.__set__(self, value)

    return property(get, set, doc=f"{COLD_FIELDS[position]} (packed in a snapshot row)")


for _position, _name in enumerate(COLD_FIELDS):
    setattr(SnapshotAsset, _name, _cold_property(_position, _SLOTS[_name]))


def _malloc_trim() -> Callable[[int], int] | None:
    # glibc keeps memory freed by the allocator's arenas (response bodies, the last
    # snapshot) mapped; malloc_trim hands the free pages back. None off glibc.
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _malloc_trim()


def load_index(assets, seq: int, previous: SearchIndex | None = None) -> SearchIndex:
    """A whole catalog as a new index at `seq`, its rows packed as they stream in.

    `previous` (the version being replaced) lends every unchanged row and value,
    so a reload allocates a small row per changed asset rather than a second
    catalog while the first is still served (issue 11).
    """
    if _MALLOC_TRIM is not None:
        # Once per full load (cold start, resync): what the previous version and
        # evicted responses freed leaves the worker's RSS (issue 11). A few ms.
        _MALLOC_TRIM(0)
    if previous is None:
        rows = (SnapshotAsset.of(a) for a in assets)
    else:
        rows = (SnapshotAsset.of(a, previous.row(a.asset_id)) for a in assets)
    return SearchIndex(rows, seq)


class WalkOrders:
    """The orderings recent cursor walks began in, so a walk resumes in that order while prices move.

    Resuming by sort key in a newer snapshot would repeat an asset that moved
    back across the cursor and skip one that moved ahead. A cursor names the
    fingerprint of the snapshot its walk began in; the walk's full ordering
    (asset ids, shared strings: ~80 KB at 10,000 matches) is kept here for
    `keep_seconds`, at most `max_walks` of them, and later pages follow it while
    their rows come from the current snapshot (current prices, never an older
    generation). Without the ordering (expired, or a worker that never served
    the walk's first page) a page resumes by key in the current snapshot.
    """

    def __init__(self, keep_seconds: float, max_walks: int = 64, timer: Callable[[], float] = time.monotonic):
        self._orders: TTLCache = TTLCache(maxsize=max_walks, ttl=keep_seconds, timer=timer)
        self._lock = threading.Lock()

    def page(self, index: SearchIndex, query: SearchQuery, limit: int, after: SortKey | None, pin: str | None,
             now, max_age_seconds: int) -> tuple[SearchResult, str]:
        """A page and the fingerprint its cursor pins (the walk's first snapshot)."""
        if pin is not None and pin != index.fingerprint and after is not None:
            with self._lock:
                order = self._orders.get((pin, query))
            if order is not None:
                resumed = self._resume(index, query, order, limit, after, now, max_age_seconds)
                if resumed is not None:
                    return resumed, pin
        result = index.search(query, limit, after, now, max_age_seconds)
        if result.next_key is not None:
            key = (index.fingerprint, query)
            with self._lock:
                if key not in self._orders:
                    assets = index.assets
                    self._orders[key] = tuple(assets[i].asset_id for i in result.order)
        return result, index.fingerprint

    @staticmethod
    def _resume(index, query, order, limit, after, now, max_age_seconds) -> SearchResult | None:
        try:
            start = order.index(after[2]) + 1
        except ValueError:
            return None
        by_id, assets = index._by_id, index.assets
        page: list[int] = []
        position = start
        while position < len(order) and len(page) < limit:
            i = by_id.get(order[position])
            if i is not None:  # an asset removed since the walk began is left out
                page.append(i)
            position += 1
        more = any(asset_id in by_id for asset_id in order[position:])
        counts = index.search(query, 1, None, now, max_age_seconds)
        next_key = index.key(page[-1], query, False) if page and more else None
        return SearchResult([assets[i] for i in page], next_key, counts.total, counts.active)


def key_to_cursor(key: SortKey) -> list:
    lead, values, asset_id = key
    return [lead, [None if value is None else str(value) for value in values], asset_id]


def key_from_cursor(position: list, sort: tuple[tuple[str, bool], ...]) -> SortKey:
    """Rebuild a SortKey from a decoded cursor; ValueError when it does not fit `sort`."""
    lead, values, asset_id = position
    if lead not in (0, 1) or not isinstance(asset_id, str) or not isinstance(values, list) or len(values) != len(sort):
        raise ValueError("malformed cursor position")
    parsed = []
    for (name, _), value in zip(sort, values):
        if value is not None and not isinstance(value, str):
            raise ValueError("malformed cursor value")
        if value is not None and name != "name":
            try:
                value = int(value) if name == "rank" else Decimal(value)
            except (ValueError, InvalidOperation):
                raise ValueError("malformed cursor value") from None
            if isinstance(value, Decimal) and not value.is_finite():
                raise ValueError("malformed cursor value")
        parsed.append(value)
    return (lead, tuple(parsed), asset_id)
