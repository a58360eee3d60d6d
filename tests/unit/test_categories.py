"""Categories: the taxonomy, the primary rule, the seed's hand labels and the `categories` field in bodies."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from inventory.data import __file__ as data_init
from inventory.devtools.build_seed_catalog import build
from inventory.domain import CATEGORY_RE, AssetStatus
from inventory.domain.taxonomy import (
    SLUGS,
    SOURCE_CATEGORIES,
    TAXONOMY,
    UNCATEGORIZED,
    CategoryBoard,
    classify,
    ordered,
    primary,
)
from inventory.store.mapping import asset_to_item, item_to_asset
from tests.conftest import build_asset

NOW = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)


def test_every_slug_is_a_valid_category_and_the_source_ids_map_to_one_slug_each():
    assert all(CATEGORY_RE.match(slug) for slug in SLUGS)
    source_ids = [cg for ids in SOURCE_CATEGORIES.values() for cg in ids]
    assert len(source_ids) == len(set(source_ids))
    assert UNCATEGORIZED not in TAXONOMY


@pytest.mark.parametrize(
    ("slugs", "expected"),
    [
        ({"defi", "stablecoin"}, ("stablecoin", "defi")),
        (["layer-1", "exchange-token", "layer-1"], ("exchange-token", "layer-1")),
        (["liquid-staking", "wrapped", "defi"], ("wrapped", "liquid-staking", "defi")),
        ([], (UNCATEGORIZED,)),
        ([UNCATEGORIZED, "meme"], ("meme",)),
        (["not-a-slug"], (UNCATEGORIZED,)),
    ],
)
def test_ordered_puts_the_primary_first_by_precedence(slugs, expected):
    assert ordered(slugs) == expected
    assert primary(slugs) == expected[0]


def test_classify_uses_membership_and_never_guesses():
    members = {"stablecoin": {"tether"}, "defi": {"tether", "aave"}, "layer-1": {"bitcoin"}}
    assert classify("tether", members) == ("stablecoin", "defi")
    assert classify("aave", members) == ("defi",)
    assert classify("unknown-coin", members) == (UNCATEGORIZED,)
    assert classify(None, members) == (UNCATEGORIZED,)


def test_the_seed_labels_are_taxonomy_slugs_with_the_primary_first_and_no_fallback():
    rows = json.loads((Path(data_init).parent / "seed_catalog.json").read_text())
    for row in rows:
        assert row["categories"] == list(ordered(row["categories"])), row["id"]
        assert row["category"] == row["categories"][0]
        assert set(row["categories"]) <= set(SLUGS)
    by_id = {row["id"]: row for row in rows}
    assert by_id["binancecoin"]["categories"] == ["exchange-token", "layer-1"]
    # A coin nobody labelled is uncategorized, not layer-1.
    assert build([{"id": "brand-new", "symbol": "bn", "name": "Brand New", "market_cap_rank": 1}])[0][
        "categories"
    ] == [UNCATEGORIZED]


def test_an_item_written_before_categories_reads_its_one_label():
    item = asset_to_item(build_asset("OLD", 1, category="meme"))
    item.pop("categories", None)
    assert item_to_asset(item).categories == ("meme",)
    both = build_asset("NEW", 1, category="stablecoin", categories=("stablecoin", "defi"))
    assert item_to_asset(asset_to_item(both)).categories == ("stablecoin", "defi")


def test_bodies_carry_categories_next_to_category(client, add_assets):
    add_assets(
        build_asset("USDE", 1, price="1", category="stablecoin", categories=("stablecoin", "defi")),
        build_asset("BARE", None),
    )
    usde = client.get("/inventory/assets/USDE").get_json()["data"]
    assert (usde["category"], usde["categories"]) == ("stablecoin", ["stablecoin", "defi"])
    bare = client.get("/inventory/assets/BARE").get_json()["data"]
    assert (bare["category"], bare["categories"]) == (UNCATEGORIZED, [UNCATEGORIZED])
    listed = client.get("/inventory/assets?active_only=false").get_json()["data"]
    assert {a["asset_id"]: a["categories"] for a in listed} == {"USDE": ["stablecoin", "defi"], "BARE": [UNCATEGORIZED]}


def test_board_sums_exactly_and_weights_the_change_by_market_cap():
    assets = [
        build_asset("A", 1, price="1", now=NOW, category="defi", categories=("defi", "layer-1"),
                    market_cap=Decimal("300.10"), volume_24h=Decimal("5.5"), price_change_percentage_24h=Decimal("2")),
        build_asset("B", 2, price="1", now=NOW, category="defi", market_cap=Decimal("100.20"),
                    volume_24h=Decimal("0.25"), price_change_percentage_24h=Decimal("-4")),
        build_asset("C", 3, price="1", now=NOW, age_seconds=3600, category="defi", market_cap=None),
        build_asset("D", 4, price="1", now=NOW, status=AssetStatus.SUSPENDED, category="defi",
                    market_cap=Decimal("0.7")),
    ]
    board = CategoryBoard(assets, max_age_seconds=300)
    defi = board.summary("defi", NOW, top=2)
    assert (defi.asset_count, defi.tradable_count) == (4, 2)
    assert defi.market_cap == Decimal("401.00") and defi.volume_24h == Decimal("5.75")
    # (300.10 * 2 + 100.20 * -4) / 400.30 = 0.498126405..., to 8 places half-even
    assert defi.market_cap_change_24h == Decimal("0.49812641")
    assert [a.asset_id for a in defi.top_assets] == ["A", "B"]
    assert board.summary("layer-1", NOW).asset_count == 1
    assert board.summary("meme", NOW).market_cap_change_24h is None
    # Tradability is counted at the time of asking.
    assert board.summary("defi", NOW + timedelta(seconds=301)).tradable_count == 0
