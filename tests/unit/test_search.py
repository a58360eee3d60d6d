"""SearchIndex answers exactly what a linear filter-and-sort over the snapshot answers."""

from __future__ import annotations

import functools
import random
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from inventory.domain import AssetStatus
from inventory.search import SearchIndex, SearchQuery, _compare, _sort_value, fold
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
            exact = asset.asset_id == needle.upper() or symbol == needle
            if not (exact or symbol.startswith(needle) or fold(asset.asset_id).startswith(needle)
                    or needle in fold(asset.name)):
                continue
        lead = 0 if (exact and query.sort == "rank") else 1
        matches.append(((lead, _sort_value(asset, query.sort), asset.asset_id), asset))
    compare = functools.partial(_compare, descending=query.order == "desc")
    matches.sort(key=functools.cmp_to_key(lambda x, y: compare(x[0], y[0])))
    remaining = matches if after is None else [m for m in matches if compare(m[0], after) > 0]
    page = remaining[:limit]
    next_key = page[-1][0] if len(remaining) > limit else None
    active = sum(1 for _, a in matches if a.is_tradable(NOW, MAX_AGE))
    return [a.asset_id for _, a in page], next_key, len(matches), active


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
        ).replace(symbol=rng.choice(["co", asset_id.lower(), "usd"])))
    return assets


@pytest.mark.parametrize("seed", range(12))
def test_index_matches_the_linear_search_page_by_page(seed):
    rng = random.Random(seed)
    assets = random_catalog(rng, 120)
    index = SearchIndex(assets)
    for _ in range(25):
        query = SearchQuery(
            q=rng.choice([None, "co", "CO", "usd", "b1", "ss", " ether ", "", "ｃｏ", "x3"]),
            category=rng.choice([None, None, "defi"]),
            status=rng.choice([None, None, AssetStatus.ACTIVE]),
            min_price=rng.choice([None, Decimal("1")]),
            max_price=rng.choice([None, Decimal("99")]),
            sort=rng.choice(["rank", "price", "market_cap", "name", "volume_24h"]),
            order=rng.choice(["asc", "desc"]),
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
    by_name = index.search(SearchQuery(q="co", sort="name"), 10, None, NOW, MAX_AGE)
    assert [a.asset_id for a in by_rank.page] == ["CO", "COMP"]
    assert [a.asset_id for a in by_name.page] == ["CO", "COMP"] and by_name.next_key is None
    assert [a.asset_id for a in index.search(SearchQuery(q="co", sort="rank", order="desc"), 10, None, NOW,
                                             MAX_AGE).page] == ["CO", "COMP"]
