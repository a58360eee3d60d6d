"""SearchIndex answers exactly what a linear filter-and-sort over the snapshot answers."""

from __future__ import annotations

import functools
import random
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from inventory.domain import AssetStatus
from inventory.search import PinnedSnapshots, SearchIndex, SearchQuery, _compare, _sort_value, fold, key_from_cursor, key_to_cursor
from tests.conftest import build_asset

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
MAX_AGE = 300


def reference_search(assets, query, limit, after):
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
        matches = [m for m in matches if m[1].is_tradable(NOW, MAX_AGE)]
    matches.sort(key=functools.cmp_to_key(lambda x, y: compare(x[0], y[0])))
    remaining = matches if after is None else [m for m in matches if compare(m[0], after) > 0]
    page = remaining[:limit]
    next_key = page[-1][0] if len(remaining) > limit else None
    active = sum(1 for _, a in matches if a.is_tradable(NOW, MAX_AGE))
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


def test_pinned_snapshot_is_kept_for_a_while_after_it_is_replaced():
    clock = Clock()
    walks = PinnedSnapshots(keep_seconds=60, max_kept=1, timer=clock)
    first = SearchIndex([build_asset("A", 1, price="1", now=NOW)])
    second = SearchIndex([build_asset("A", 1, price="2", now=NOW.replace(minute=1))])
    third = SearchIndex([build_asset("A", 1, price="3", now=NOW.replace(minute=2))])
    assert walks.resolve(first, None) is first
    assert walks.resolve(second, first.fingerprint) is first  # replaced just now: still kept
    clock.now = 61
    assert walks.resolve(second, first.fingerprint) is second  # gone: the walk resumes by key
    assert walks.resolve(third, second.fingerprint) is second
    # The same content loaded again (another reload in one generation) is the same snapshot.
    again = SearchIndex([build_asset("A", 1, price="3", now=NOW.replace(minute=2))])
    assert again.fingerprint == third.fingerprint and walks.resolve(again, third.fingerprint) is again


def test_walk_in_a_pinned_snapshot_never_repeats_or_skips_while_prices_move():
    # GIVEN a walk by market cap that read its first page
    assets = [build_asset(f"A{n}", n + 1, price="1", now=NOW, market_cap=Decimal(100 - n)) for n in range(30)]
    walks = PinnedSnapshots(keep_seconds=60)
    query = SearchQuery(sort=(("market_cap", True), ("name", False)))
    index = walks.resolve(SearchIndex(assets), None)
    first = index.search(query, 10, None, NOW, MAX_AGE)
    seen = [a.asset_id for a in first.page]
    # WHEN the caps reverse before the next pages are read
    moved = SearchIndex([a.replace(market_cap=Decimal(n), version=2) for n, a in enumerate(assets)])
    after, pin = first.next_key, index.fingerprint
    while after is not None:
        result = walks.resolve(moved, pin).search(query, 10, after, NOW, MAX_AGE)
        seen += [a.asset_id for a in result.page]
        after = result.next_key
    # THEN every asset came exactly once, in the order the walk started in
    assert seen == [a.asset_id for a in assets]
    # while resuming by key in the moved snapshot would have repeated the first page
    unpinned, after = [], first.next_key
    while after is not None:
        result = moved.search(query, 10, after, NOW, MAX_AGE)
        unpinned += [a.asset_id for a in result.page]
        after = result.next_key
    assert set(unpinned) & set(seen[:10])
