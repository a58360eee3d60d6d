"""The live stream's feed: one entry per committed transaction, none for a change that did not commit."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from inventory.domain import AssetStatus, VersionConflict, utcnow
from inventory.store import FeedStore, PlannedChange, PriceStore, StatusStore
from inventory.store.prices import PriceUpdate
from tests.conftest import build_asset


@pytest.fixture
def feed(moto_client, config):
    return FeedStore(moto_client, config.DYNAMODB_TABLE_NAME, retention_seconds=3600)


@pytest.fixture
def prices(moto_client, config, feed):
    return PriceStore(moto_client, config.DYNAMODB_TABLE_NAME, 30, 1, feed)


@pytest.fixture
def changes(moto_client, config, feed):
    return StatusStore(moto_client, config.DYNAMODB_TABLE_NAME, feed)


def price_update(asset, price: str, seconds_later: int = 60) -> PriceUpdate:
    at = asset.last_price_update + timedelta(seconds=seconds_later)
    return PriceUpdate(
        asset_id=asset.asset_id,
        changes={"current_price": Decimal(price), "last_price_update": at},
        last_price_update=at,
        point={"price": Decimal(price)},
        stream_seq=asset.stream_seq,
        day_change={"price_change_24h": Decimal("1.5")},
    )


def test_one_refresh_transaction_is_one_feed_entry_with_per_asset_sequences(add_assets, store, prices, feed):
    btc, eth = add_assets(build_asset("BTC", 1, price="100"), build_asset("ETH", 2, price="10"))
    start = feed.head()  # the creates' own entries

    result = prices.apply([price_update(btc, "101.25"), price_update(eth, "10.5")])

    assert sorted(result.applied) == ["BTC", "ETH"]
    [entry] = feed.read(after=start)
    assert entry.seq == start + 1 and feed.head() == start + 1
    by_asset = {e["asset_id"]: e for e in entry.events}
    assert by_asset["BTC"]["asset_seq"] == 1 and by_asset["BTC"]["price"] == "101.25"
    assert by_asset["BTC"]["price_change_24h"] == "1.5"
    assert store.get("BTC").stream_seq == 1


def test_a_status_change_continues_the_asset_sequence_after_a_price(add_assets, store, prices, changes, feed):
    (btc,) = add_assets(build_asset("BTC", 1, price="100"))
    start = feed.head()
    prices.apply([price_update(btc, "101")])
    btc = store.get("BTC")

    changes.apply([PlannedChange(btc, AssetStatus.SUSPENDED, "audit")], "ops", "req-1", utcnow())

    entries = feed.read(after=start)
    assert [e.seq for e in entries] == [start + 1, start + 2]
    [event] = entries[1].events
    assert {k: v for k, v in event.items() if k != "fields"} == {
        "type": "status", "asset_id": "BTC", "asset_seq": 2, "status": "SUSPENDED", "from_status": "ACTIVE"}
    assert store.get("BTC").stream_seq == 2


def test_a_change_that_does_not_commit_leaves_a_void_entry_and_no_asset_change(add_assets, store, changes, feed):
    (btc,) = add_assets(build_asset("BTC", 1, price="100"))
    start = feed.head()
    changes.apply([PlannedChange(btc, AssetStatus.SUSPENDED, "")], "ops", "req-1", utcnow())

    # GIVEN an operator who still holds the old version
    with pytest.raises(VersionConflict):
        changes.apply([PlannedChange(btc, AssetStatus.INACTIVE, "")], "ops", "req-2", utcnow())

    # THEN its reserved seq is void (readers need not wait for it) and nothing else moved
    entries = feed.read(after=start)
    assert [(e.seq - start, len(e.events)) for e in entries] == [(1, 1), (2, 0)]
    assert store.get("BTC").status is AssetStatus.SUSPENDED and store.get("BTC").stream_seq == 1


def test_a_price_read_before_another_change_is_rejected_not_given_a_duplicate_sequence(
    add_assets, store, prices, changes, feed
):
    btc, eth = add_assets(build_asset("BTC", 1, price="100"), build_asset("ETH", 2, price="10"))
    start = feed.head()
    # GIVEN an operator change that lands between the refresh's read and its write
    changes.apply([PlannedChange(btc, AssetStatus.SUSPENDED, "")], "ops", "req-1", utcnow())

    result = prices.apply([price_update(btc, "101"), price_update(eth, "11")])

    assert result.applied == ["ETH"] and result.rejected == ["BTC"]
    entries = feed.read(after=start)
    # The attempt with both was void; the retry without BTC committed.
    assert [[e["asset_id"] for e in entry.events] for entry in entries] == [["BTC"], [], ["ETH"]]
    assert store.get("BTC").stream_seq == 1


def test_read_resumes_after_a_seq_and_stops_at_the_limit(add_assets, store, prices, feed):
    (btc,) = add_assets(build_asset("BTC", 1, price="100"))
    start = feed.head()
    for i in range(5):
        btc = store.get("BTC")
        prices.apply([price_update(btc, f"{101 + i}", seconds_later=60)])

    assert [e.seq - start for e in feed.read(after=start + 2, limit=2)] == [3, 4]
    assert [e.events[0]["asset_seq"] for e in feed.read(after=start)] == [1, 2, 3, 4, 5]
