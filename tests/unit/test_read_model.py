"""The read model: one load, then every feed entry applied once, in seq order, to the assets it names."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest

from inventory.domain import AssetStatus, StoreError
from inventory.readmodel.model import ReadModel, SharedSeq
from inventory.store import PlannedChange
from inventory.store.dynamo import count_calls
from inventory.store.feed import FeedEntry
from inventory.store.prices import PriceStore, PriceUpdate
from tests.conftest import ADMIN, NOW, build_asset


class FakeFeed:
    """The feed and the catalog as a model sees them, without a store; counts what it is asked."""

    def __init__(self, assets):
        self.entries: list[FeedEntry] = []
        self.assets = {a.asset_id: a for a in assets}
        self.loads = self.rereads = 0
        self.down = False

    def load(self):
        self.loads += 1
        return list(self.assets.values())

    def head(self) -> int:
        return max((e.seq for e in self.entries), default=0)

    def read(self, after: int, limit: int):
        if self.down:
            raise StoreError("the store is unreachable")
        return [e for e in self.entries if e.seq > after][:limit]

    def reread(self, ids):
        self.rereads += 1
        return {i: self.assets[i] for i in ids if i in self.assets}

    def price(self, seq: int, asset_id: str, asset_seq: int, price: str):
        update = PriceUpdate(asset_id, {"current_price": Decimal(price)}, NOW, {"price": Decimal(price)},
                             stream_seq=asset_seq - 1)
        self.entries.append(FeedEntry(seq, NOW, [update.feed_event()]))
        self.assets[asset_id] = self.assets[asset_id].replace(current_price=Decimal(price), stream_seq=asset_seq)

    def touch(self, seq: int, asset):
        self.assets[asset.asset_id] = asset
        self.entries.append(FeedEntry(seq, NOW, [{"type": "asset", "asset_id": asset.asset_id}]))


def make_model(feed, **kwargs) -> ReadModel:
    # The model's clock at the fake feed's time: its entries are as recent as the load.
    options = dict(poll_seconds=0, retention_seconds=3600, gap_grace_seconds=30, clock=lambda: NOW)
    options.update(kwargs)
    return ReadModel(load=feed.load, feed=feed, reread=feed.reread, **options)


def btc_eth():
    return [build_asset("BTC", 1, price="100", now=NOW), build_asset("ETH", 2, price="50", now=NOW)]


def test_each_entry_updates_only_the_assets_it_names_once_in_seq_order():
    feed = FakeFeed(btc_eth())
    model = make_model(feed).start()
    eth_row = model.get("ETH")

    feed.price(1, "BTC", 1, "101")
    feed.price(2, "BTC", 2, "102.50")
    view = model.view()

    assert view.seq == 2 and model.get("BTC").current_price == Decimal("102.50")
    assert model.get("BTC").stream_seq == 2
    assert model.get("ETH") is eth_row  # untouched rows are shared, not copied
    assert feed.loads == 1 and feed.rereads == 0
    # Applied once: reading the same entries again changes nothing.
    model._view = view.updated({}, 0)
    model.sync()
    assert model.get("BTC").current_price == Decimal("102.50") and model.view().seq == 2


def test_a_change_the_load_already_had_is_not_applied_twice():
    # GIVEN the load read BTC after its change 1 (entry 1 is in the lookback)
    feed = FakeFeed(btc_eth())
    feed.price(1, "BTC", 1, "101")
    model = make_model(feed).start()
    # THEN the entry is consumed without a store read and the row is the loaded one
    assert model.view().seq == 1 and feed.rereads == 0
    assert model.get("BTC").current_price == Decimal("101")


def test_a_touch_or_a_change_that_skips_one_reads_the_asset_again():
    feed = FakeFeed(btc_eth())
    model = make_model(feed).start()
    # A catalog write (a touch): the model cannot know the image, it reads it.
    feed.touch(1, feed.assets["ETH"].replace(name="Ether renamed"))
    assert model.get("ETH").name == "Ether renamed" and feed.rereads == 1
    assert [a.asset_id for a in model.view().assets if "renamed" in a.name] == ["ETH"]
    assert model.view().search(_query("renamed"), 10, None, NOW, 300).total == 1
    # A change whose predecessor the model never saw: read again, never guessed.
    feed.assets["BTC"] = feed.assets["BTC"].replace(stream_seq=1, current_price=Decimal("7"))
    feed.price(2, "BTC", 2, "8")
    assert model.get("BTC").current_price == Decimal("8") and feed.rereads == 2


def test_a_created_asset_is_added_to_every_view():
    feed = FakeFeed(btc_eth())
    model = make_model(feed).start()
    feed.touch(1, build_asset("SOL", 3, price="150", now=NOW))
    view = model.view()
    assert [a.asset_id for a in view.search(_query(None), 10, None, NOW, 300).page] == ["BTC", "ETH", "SOL"]
    assert view.by_coingecko_id["sol-cg"].asset_id == "SOL"


def test_a_hole_in_the_feed_holds_later_entries_until_its_grace_then_is_skipped():
    feed = FakeFeed(btc_eth())
    model = make_model(feed, gap_grace_seconds=0.2).start()
    feed.price(2, "BTC", 1, "101")  # seq 1 is in flight
    assert model.view().seq == 0
    time.sleep(0.25)
    assert model.view().seq == 2 and model.get("BTC").current_price == Decimal("101")


def test_this_processs_own_write_is_read_at_once_and_its_entry_later_changes_nothing():
    feed = FakeFeed(btc_eth())
    model = make_model(feed).start()
    written = model.get("BTC").replace(status=AssetStatus.SUSPENDED, version=2, stream_seq=1)
    model.written([written])
    assert model.get("BTC").status is AssetStatus.SUSPENDED
    # The feed brings a price written before the suspension (asset_seq 1 is the suspension's own).
    feed.price(1, "BTC", 1, "999")
    model.sync()
    assert model.get("BTC").status is AssetStatus.SUSPENDED and model.get("BTC").current_price == Decimal("100")


def test_a_model_behind_its_instance_catches_up_before_it_answers(tmp_path):
    shared = SharedSeq(str(tmp_path / "seq"))
    feed = FakeFeed(btc_eth())
    ahead = make_model(feed, poll_seconds=60, shared=shared).start()
    behind = make_model(feed, poll_seconds=60, shared=shared).start()
    feed.price(1, "BTC", 1, "101")
    # GIVEN one worker served the change (its poll applied it)
    ahead.sync()
    assert ahead.get("BTC").current_price == Decimal("101") and shared.current() == 1
    # THEN another worker answers nothing older, though its own poll is a minute away
    assert behind.get("BTC").current_price == Decimal("101")


def test_a_frozen_store_is_never_waited_on(tmp_path):
    shared = SharedSeq(str(tmp_path / "seq"))
    feed = FakeFeed(btc_eth())
    model = make_model(feed, poll_seconds=60, shared=shared).start()
    shared.advance(5)  # another worker is ahead
    feed.down = True
    with pytest.raises(StoreError):
        model.sync()
    started = time.monotonic()
    assert model.get("BTC").current_price == Decimal("100")
    assert time.monotonic() - started < 0.1 and not model.store_answering()


def test_a_model_behind_the_feeds_retention_reloads_while_serving_the_old_version():
    feed = FakeFeed(btc_eth())
    now = [0.0]
    model = make_model(feed, retention_seconds=100, timer=lambda: now[0]).start()
    old = model.view()
    gate, entered = threading.Event(), threading.Event()

    def slow_load():
        entered.set()
        assert gate.wait(5)
        return FakeFeed.load(feed)

    model._load = slow_load
    feed.assets["BTC"] = feed.assets["BTC"].replace(current_price=Decimal("1"))
    # GIVEN the model has not read the feed for longer than entries are kept
    now[0] = 101
    assert model._behind_retention()
    reload = threading.Thread(target=model._resync)
    reload.start()
    assert entered.wait(5)
    # THEN readers keep the old version while the reload runs
    assert model.view() is old and model.get("BTC").current_price == Decimal("100")
    gate.set()
    reload.join(5)
    assert model.get("BTC").current_price == Decimal("1") and model.reloads == 1


def _query(q):
    from inventory.domain.search import SearchQuery

    return SearchQuery(q=q)


# -- through the service and the API -------------------------------------------------


@pytest.fixture
def polled_app(config, moto_client):
    # As it runs: a poller thread (a long interval here), reads never poll themselves.
    from inventory import create_app

    app = create_app(config.replace(STREAM_POLL_SECONDS=60), dynamodb_client=moto_client)
    app.config["TESTING"] = True
    return app


def test_a_detail_read_of_a_loaded_asset_makes_no_store_request(polled_app, moto_client, add_assets):
    add_assets(build_asset("BTC", 1, price="100"), build_asset("ETH", 2, price="50"))
    client = polled_app.test_client()
    assert client.get("/inventory/assets/BTC").status_code == 200  # the cold load
    with count_calls(moto_client) as calls:
        responses = [client.get(f"/inventory/assets/{i}") for i in ("BTC", "ETH", "BTC", "eth")]
        listed = client.get("/inventory/assets?active_only=false")
        found = client.post("/inventory/assets/batch-get", json={"ids": ["BTC", "ETH", "NOPE"]})
    assert [r.status_code for r in responses] == [200] * 4 and listed.status_code == found.status_code == 200
    assert len(listed.get_json()["data"]) == 2 and found.get_json()["not_found"] == ["NOPE"]
    assert calls["calls"] == 0
    assert responses[0].headers["X-Catalog-Seq"].isdigit()


def test_a_status_change_answers_what_its_transaction_wrote_and_is_read_back_at_once(
    polled_app, moto_client, config, add_assets
):
    add_assets(build_asset("BTC", 1, price="100"))
    client = polled_app.test_client()
    etag = client.get("/inventory/assets/BTC").headers["ETag"]
    # GIVEN a price write lands between the operator's read and write (another writer's state)
    prices = PriceStore(moto_client, config.DYNAMODB_TABLE_NAME, 30, 1)
    prices.apply([PriceUpdate("BTC", {"current_price": Decimal("200")}, NOW + timedelta(days=400),
                              {"price": Decimal("200")}, stream_seq=0)])
    response = client.patch("/inventory/assets/BTC/status", headers={**ADMIN, "If-Match": etag},
                            json={"status": "SUSPENDED", "reason": "test"})
    assert response.status_code == 200, response.get_json()
    data = response.get_json()["data"]
    # THEN the answer is the item its own transaction wrote (the price write included: a price
    # never moves the version an If-Match names)
    assert (data["status"], data["current_price"]) == ("SUSPENDED", 200)
    assert response.headers["ETag"].startswith('"v2.')
    # AND this worker reads its own write at once, though its poller is a minute away
    after = client.get("/inventory/assets/BTC")
    assert after.get_json()["data"]["status"] == "SUSPENDED"
    assert after.headers["ETag"] == response.headers["ETag"]


def test_a_status_change_records_its_fields_in_the_feed(moto_client, config, store, add_assets):
    from inventory.store import StatusStore
    from inventory.store.feed import FeedStore
    from inventory.store.mapping import fields_from_feed

    add_assets(build_asset("BTC", 1, price="100"))
    feed = FeedStore(moto_client, config.DYNAMODB_TABLE_NAME, 3600)
    committed = []
    feed.on_commit = lambda seq, ids: committed.append((seq, ids))
    asset = store.get("BTC")
    StatusStore(moto_client, config.DYNAMODB_TABLE_NAME, feed).apply(
        [PlannedChange(asset, AssetStatus.SUSPENDED, "r")], "ops", "req", NOW)
    (entry,) = feed.read(feed.head() - 1, 10)
    (event,) = entry.events
    assert committed == [(entry.seq, ["BTC"])]
    assert fields_from_feed(event["fields"]) == {
        "status": AssetStatus.SUSPENDED, "version": 2, "updated_at": NOW, "updated_by": "ops"}
    stored = store.get("BTC")
    assert (stored.status, stored.version, stored.stream_seq) == (AssetStatus.SUSPENDED, 2, event["asset_seq"])


def test_the_loads_lookback_reads_again_only_touches_the_index_may_have_missed():
    feed = FakeFeed(btc_eth())
    old, recent = NOW - timedelta(minutes=5), NOW + timedelta(days=1)
    feed.entries.append(FeedEntry(1, old, [{"type": "asset", "asset_id": "BTC"}]))
    feed.entries.append(FeedEntry(2, recent, [{"type": "asset", "asset_id": "ETH"}]))
    model = make_model(feed, clock=lambda: NOW).start()
    # An old touch: the load read BTC long after it. A recent one: the index may trail it.
    assert model.view().seq == 2 and feed.rereads == 1


def test_a_write_makes_other_workers_catch_up_for_its_assets_only(tmp_path):
    shared = SharedSeq(str(tmp_path / "seq"))
    feed = FakeFeed(btc_eth())
    writer = make_model(feed, poll_seconds=60, shared=shared).start()
    other = make_model(feed, poll_seconds=60, shared=shared).start()
    polls = []
    read = feed.read
    feed.read = lambda after, limit: polls.append(after) or read(after, limit)
    other._feed = feed
    # GIVEN a worker that committed a change to BTC (applied at once by itself)
    feed.price(1, "BTC", 1, "101")
    writer.committed(1, ["BTC"])
    writer.written([feed.assets["BTC"]])
    assert writer.get("BTC").current_price == Decimal("101") and polls == []
    # THEN another worker answers for ETH without polling, and catches up before it answers for BTC
    assert other.get("ETH").current_price == Decimal("50") and polls == []
    assert other.get("BTC").current_price == Decimal("101") and len(polls) == 1
    # AND a page, which spans every asset, is never older than a version already served
    assert other.view().seq == 1
