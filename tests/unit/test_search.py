"""SearchIndex answers exactly what a linear filter-and-sort over the snapshot answers."""

from __future__ import annotations

import functools
import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from inventory.domain import AssetStatus
from inventory.domain.search import (
    SearchIndex,
    SearchQuery,
    WalkOrders,
    _compare,
    _sort_value,
    fold,
    key_from_cursor,
    key_to_cursor,
)
from tests.conftest import build_asset

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
MAX_AGE = 300


def reference_search(assets, query, limit, after, now=NOW):
    """The linear search the index replaced: filter every asset, sort every match."""
    needle = fold(query.q.strip()) if query.q and query.q.strip() else None
    matches = []
    for asset in assets:
        if query.status is not None and asset.status is not query.status:
            continue
        if query.categories and not (asset.category in query.categories or set(asset.categories) & set(query.categories)):
            continue
        if any((v := _sort_value(asset, name)) is None or (low is not None and v < low) or (high is not None and v > high)
               for name, low, high in query.ranges):
            continue
        exact = False
        if needle is not None:
            symbol = fold(asset.symbol)
            exact = asset.asset_id == needle.upper() or symbol == needle
            if not (exact or symbol.startswith(needle) or fold(asset.asset_id).startswith(needle)
                    or needle in fold(asset.name)):
                continue
        lead = 0 if (exact and len(query.sort) == 1 and query.sort[0][0] == "rank") else 1
        matches.append(((lead, tuple(_sort_value(asset, name) for name, _ in query.sort), asset.asset_id), asset))
    compare = functools.partial(_compare, directions=query.directions)
    total = len(matches)
    if query.tradable:
        matches = [m for m in matches if m[1].is_tradable(now, MAX_AGE)]
    matches.sort(key=functools.cmp_to_key(lambda x, y: compare(x[0], y[0])))
    remaining = matches if after is None else [m for m in matches if compare(m[0], after) > 0]
    page = remaining[:limit]
    next_key = page[-1][0] if len(remaining) > limit else None
    active = sum(1 for _, a in matches if a.is_tradable(now, MAX_AGE))
    return [a.asset_id for _, a in page], next_key, total, active


def random_catalog(rng: random.Random, size: int):
    words = ["coin", "Bitcoin", "USD", "Ether", "CO", "Straße", "ＣＯ", "token", "cash"]
    assets = []
    for n in range(size):
        asset_id = rng.choice(["CO", "B", "ETH", "USD", "X"]) + str(n)
        assets.append(build_asset(
            asset_id,
            rng.choice([None, rng.randint(1, 40)]),  # rank ties and unranked assets
            price=rng.choice([None, "0.5", "1", "97000", str(rng.randint(1, 99))]),
            age_seconds=rng.choice([0, 1000]),
            status=rng.choice(list(AssetStatus)),
            category=rng.choice([None, "defi", "layer-1"]),
            name=" ".join(rng.sample(words, 2)),
            now=NOW,
            market_cap=rng.choice([None, Decimal(rng.randint(1, 5))]),
            volume_24h=rng.choice([None, Decimal(rng.randint(1, 3))]),
            price_change_percentage_24h=rng.choice([None, Decimal(rng.randint(-3, 3))]),
            price_change_percentage_7d=rng.choice([None, Decimal("-1.5"), Decimal("2")]),
            categories=tuple(rng.sample(["ai", "meme", "defi"], rng.randint(0, 2))),
        ).replace(symbol=rng.choice(["co", asset_id.lower(), "usd"])))
    return assets


@pytest.mark.parametrize("seed", range(12))
def test_index_matches_the_linear_search_page_by_page(seed):
    rng = random.Random(seed)
    assets = random_catalog(rng, 120)
    index = SearchIndex(assets)
    for _ in range(25):
        keys = ["rank", "price", "market_cap", "name", "volume_24h", "price_change_percentage_24h",
                "price_change_percentage_7d"]
        ranges = [("price", rng.choice([None, Decimal("1")]), rng.choice([None, Decimal("99")])),
                  ("price_change_percentage_24h", Decimal("-2"), None), ("rank", None, 30)]
        query = SearchQuery(
            q=rng.choice([None, "co", "CO", "usd", "b1", "ss", " ether ", "", "ｃｏ", "x3"]),
            categories=rng.choice([(), (), ("defi",), ("ai", "meme")]),
            status=rng.choice([None, None, AssetStatus.ACTIVE]),
            tradable=rng.choice([False, False, True]),
            ranges=tuple(r for r in ranges if rng.random() < 0.3),
            sort=tuple((name, rng.choice([False, True])) for name in rng.sample(keys, rng.choice([1, 1, 2, 3]))),
        )
        limit = rng.choice([1, 7, 50])
        after, pages = None, 0
        while True:
            expected = reference_search(assets, query, limit, after)
            result = index.search(query, limit, after, NOW, MAX_AGE)
            got = ([a.asset_id for a in result.page], result.next_key, result.total, result.active)
            assert got == expected, (query, limit, after)
            after, pages = result.next_key, pages + 1
            if after is None:
                break
        assert pages <= 120 // limit + 1


def test_a_repeated_query_follows_the_clock_across_tradable_deadlines():
    # The index keeps each query's matches and its tradable part for as long as no
    # match crosses its deadline: moments forward, back and exactly on a deadline.
    rng = random.Random(7)
    assets = [
        build_asset(f"A{n}", n + 1, price="1", age_seconds=rng.choice([0, 100, 200, 299, 300, 301, 1000]), now=NOW,
                    name=rng.choice(["co one", "two"]))
        for n in range(60)
    ]
    index = SearchIndex(assets)
    queries = [SearchQuery(), SearchQuery(tradable=True), SearchQuery(q="co", tradable=True),
               SearchQuery(q="a1", sort=(("name", True), ("rank", False)))]
    for offset in (0, 1, 0, 99, 100, 101, 300, -1, 0, 301, 5000, 200):
        now = NOW + timedelta(seconds=offset)
        for query in queries:
            after = None
            while True:
                expected = reference_search(assets, query, 7, after, now)
                result = index.search(query, 7, after, now, MAX_AGE)
                assert ([a.asset_id for a in result.page], result.next_key, result.total, result.active) == expected
                after = result.next_key
                if after is None:
                    break


def test_exact_ticker_leads_only_in_rank_order():
    assets = [build_asset("COMP", 5, price="1", now=NOW), build_asset("CO", 90, price="1", now=NOW)]
    index = SearchIndex(assets)
    by_rank = index.search(SearchQuery(q="co"), 10, None, NOW, MAX_AGE)
    by_name = index.search(SearchQuery(q="co", sort=(("name", False),)), 10, None, NOW, MAX_AGE)
    assert [a.asset_id for a in by_rank.page] == ["CO", "COMP"]
    assert [a.asset_id for a in by_name.page] == ["CO", "COMP"] and by_name.next_key is None
    assert [a.asset_id for a in index.search(SearchQuery(q="co", sort=(("rank", True),)), 10, None, NOW,
                                             MAX_AGE).page] == ["CO", "COMP"]


def test_cursor_key_round_trips_every_sort_key_exactly():
    query_sort = (("market_cap", True), ("rank", False), ("name", False))
    key = (1, (Decimal("0.00000001234"), 7, "bitcoin"), "BTC")
    assert key_from_cursor(key_to_cursor(key), query_sort) == key
    for bad in ([1, ["x", "7", "b"], "BTC"], [1, ["1", "7"], "BTC"], [2, ["1", "7", "b"], "BTC"],
                [1, ["NaN", "7", "b"], "BTC"], [1, [1, "7", "b"], "BTC"]):
        with pytest.raises(ValueError):
            key_from_cursor(bad, query_sort)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def caps_walk(walks, snapshots, query, limit=10):
    """Walk every page, the catalog replaced by the next snapshot after each page; (ids seen, last page's prices)."""
    snapshots = iter(snapshots)
    index = next(snapshots)
    result, pin = walks.page(index, query, limit, None, None, NOW, MAX_AGE)
    seen = [a.asset_id for a in result.page]
    while result.next_key is not None:
        index = next(snapshots, index)
        result, pin = walks.page(index, query, limit, result.next_key, pin, NOW, MAX_AGE)
        seen += [a.asset_id for a in result.page]
    return seen, {a.asset_id: a.market_cap for a in result.page}


def catalog(caps, seq: int = 0):
    return SearchIndex([build_asset(f"A{n:02}", n + 1, price="1", now=NOW, market_cap=Decimal(cap), version=v)
                        for n, (cap, v) in enumerate(caps)], seq)


QUERY = SearchQuery(sort=(("market_cap", True), ("name", False)))


def test_walk_neither_repeats_nor_skips_while_prices_move_and_shows_current_prices():
    # GIVEN a walk by market cap; WHEN the caps reverse after its first page
    before = catalog([(100 - n, 1) for n in range(30)], seq=1)
    moved = catalog([(n, 2) for n in range(30)], seq=2)
    seen, last_prices = caps_walk(WalkOrders(keep_seconds=60), [before, moved], QUERY)
    # THEN every asset came exactly once, in the order the walk began in, with today's prices
    assert seen == [f"A{n:02}" for n in range(30)]
    assert last_prices["A29"] == 29
    # while resuming by key without the kept order repeats assets
    repeated, _ = caps_walk(WalkOrders(keep_seconds=-1), [before, moved], QUERY)
    assert len(repeated) != len(set(repeated))


def test_walk_leaves_out_assets_removed_meanwhile_and_ends_cleanly():
    before = catalog([(100 - n, 1) for n in range(12)], seq=1)
    fewer = SearchIndex([a.replace(version=2) for a in before.assets if a.asset_id not in ("A05", "A11")], 2)
    seen, _ = caps_walk(WalkOrders(keep_seconds=60), [before, fewer], QUERY, limit=5)
    assert seen == [f"A{n:02}" for n in range(12) if n not in (5, 11)]


def test_walk_orders_expire_and_are_bounded():
    clock = Clock()
    walks = WalkOrders(keep_seconds=60, max_walks=1, timer=clock)
    before = catalog([(100 - n, 1) for n in range(4)], seq=1)
    moved = catalog([(n, 2) for n in range(4)], seq=2)
    first, pin = walks.page(before, QUERY, 2, None, None, NOW, MAX_AGE)
    clock.now = 61
    resumed, new_pin = walks.page(moved, QUERY, 2, first.next_key, pin, NOW, MAX_AGE)
    assert new_pin == moved.fingerprint  # expired: resumed by key, pinned afresh
    other = SearchQuery(sort=(("rank", False),))
    walks.page(before, other, 2, None, None, NOW, MAX_AGE)
    _, pin = walks.page(before, QUERY, 2, None, None, NOW, MAX_AGE)  # evicts `other`'s order
    assert len(walks._orders) == 1


def test_a_version_is_named_by_its_feed_seq_so_workers_at_one_seq_agree():
    assert catalog([(1, 1), (2, 1)], seq=7).fingerprint == catalog([(1, 1), (2, 1)], seq=7).fingerprint
    assert catalog([(1, 1), (2, 1)], seq=7).fingerprint != catalog([(1, 1), (2, 2)], seq=8).fingerprint


QUERIES = [
    SearchQuery(),
    SearchQuery(sort=(("market_cap", True), ("name", False))),
    SearchQuery(sort=(("price", False),), tradable=True),
    SearchQuery(q="a0", sort=(("name", True),)),
    SearchQuery(ranges=(("market_cap", Decimal("10"), Decimal("60")),), sort=(("volume_24h", True), ("rank", False))),
]


def test_an_updated_version_answers_like_one_built_from_scratch_and_shares_what_did_not_move():
    # GIVEN a version whose orderings were built by queries
    base = catalog([(100 - n, 1) for n in range(40)], seq=1)
    for query in QUERIES:
        base.search(query, 10, None, NOW, MAX_AGE)
    name_order = base._order("name", False)
    # WHEN a batch moves prices and caps, renames one asset and adds one
    rows = {f"A{n:02}": base.row(f"A{n:02}").replace(market_cap=Decimal(n * 3), current_price=Decimal(n))
            for n in range(0, 40, 3)}
    rows["A07"] = base.row("A07").replace(name="Zeta renamed", symbol="zz")
    rows["NEW"] = build_asset("NEW", 41, price="5", now=NOW, market_cap=Decimal(55))
    updated = base.updated(rows, seq=2)
    fresh = SearchIndex([rows.get(a.asset_id, a) for a in base.assets] + [rows["NEW"]], 2)
    # THEN every query answers exactly as a version built from scratch
    for query in QUERIES:
        a, b = updated.search(query, 50, None, NOW, MAX_AGE), fresh.search(query, 50, None, NOW, MAX_AGE)
        assert [x.asset_id for x in a.page] == [x.asset_id for x in b.page], query
        assert (a.total, a.active) == (b.total, b.active), query
    assert updated.row("NEW") is rows["NEW"] and updated.by_coingecko_id["new-cg"] is rows["NEW"]
    # AND the name ordering was rebuilt (a name moved), while the old version keeps its own
    assert updated._order("name", False) is not name_order and base._order("name", False) is name_order
    # AND the old version is untouched
    assert base.row("A03").market_cap == Decimal(97) and base.row("NEW") is None


def test_a_price_batch_shares_the_orderings_its_rows_do_not_move():
    base = catalog([(100 - n, 1) for n in range(10)], seq=1)
    base.search(SearchQuery(sort=(("name", False),)), 5, None, NOW, MAX_AGE)
    base.search(SearchQuery(sort=(("price", False),)), 5, None, NOW, MAX_AGE)
    moved = base.updated({"A03": base.row("A03").replace(current_price=Decimal("9"))}, seq=2)
    assert moved._order("name", False) is base._order("name", False)  # names did not move: shared
    assert "price" not in moved._values  # rebuilt on its first use in the new version
    assert [a.asset_id for a in moved.search(SearchQuery(sort=(("price", True),)), 1, None, NOW, MAX_AGE).page] == ["A03"]


def test_a_reload_keeps_unchanged_rows_and_shares_the_unchanged_values_of_changed_ones():
    from inventory.domain.search import load_index

    def read(asset, **changes):
        # What a store read gives: equal values in new objects.
        return asset.replace(name=(asset.name + " ")[:-1], last_price_update=asset.last_price_update + timedelta(0),
                             **changes)

    stored = list(catalog([(100 - n, 1) for n in range(5)]).assets)
    first = load_index([read(a) for a in stored], 1)
    # A refresh moved A02's price; A03's price is re-read with other digits (same value).
    moved = [read(a, current_price=Decimal("2.5"), high_24h=Decimal("3")) if a.asset_id == "A02"
             else read(a, current_price=Decimal("1.000")) if a.asset_id == "A03" else read(a) for a in stored]
    again = load_index(moved, 2, first)
    assert [a is b for a, b in zip(first.assets, again.assets)] == [True, True, False, False, True]
    changed, old = again.assets[2], first.assets[2]
    assert changed == moved[2] and (changed.current_price, changed.high_24h) == (Decimal("2.5"), Decimal("3"))
    assert changed.name is old.name and changed.last_price_update is old.last_price_update
    # Equal Decimals with other digits render differently: never taken from the old row.
    assert str(again.assets[3].current_price) == "1.000" and str(first.assets[3].current_price) != "1.000"
    # Nor one instant written in another time zone.
    plus_one = timezone(timedelta(hours=1))
    shifted = load_index([a.replace(last_price_update=a.last_price_update.astimezone(plus_one)) for a in moved], 3,
                         again)
    assert all(a.last_price_update.tzinfo is plus_one for a in shifted.assets)


def test_snapshot_rows_pack_cold_fields_and_give_back_exactly_the_same_decimals():
    from inventory.domain.search import COLD_FIELDS, SnapshotAsset, load_index

    values = [Decimal("1.2300E+5"), Decimal("-0"), None, Decimal("0.000000001"), Decimal("97000.10"), Decimal("7"),
              Decimal("-12.500"), Decimal("1E+3"), None, Decimal("0.0"), Decimal("123456789012345678.123456789"),
              Decimal("-0.00001")]
    asset = build_asset("BTC", 1, price="97000.10", now=NOW, **dict(zip(COLD_FIELDS, values)))
    (row,) = load_index([asset], 1).assets
    assert type(row) is SnapshotAsset
    for name, value in zip(COLD_FIELDS, values):
        got = getattr(row, name)
        # Same value, and the same digits and exponent (what a body renders).
        assert got == value and (got is None or got.as_tuple() == value.as_tuple()), name
    assert row == asset and asset == row and not row != asset
    assert row.replace(ath=Decimal("2")) != asset and row.replace(ath=Decimal("2")).ath == Decimal("2")
    row.high_24h = Decimal("5")
    assert row.high_24h == Decimal("5") and row != asset
