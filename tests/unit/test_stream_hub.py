"""Hub logic without a store: gaps, stale prices, resume or a flagged resync, slow clients."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from inventory.store.feed import FeedEntry
from inventory.store.prices import PriceUpdate
from tests.conftest import NOW, build_asset
from tests.unit.test_read_model import FakeFeed as ModelFeed
from tests.unit.test_read_model import make_model


class FakeFeed(ModelFeed):
    def __init__(self, assets=None):
        super().__init__(assets if assets is not None else [build_asset("BTC", 1, price="100", now=NOW)])

    def price(self, seq: int, asset_id: str, asset_seq: int, price: str, at=NOW):
        update = PriceUpdate(asset_id, {"current_price": Decimal(price), "last_price_update": at}, at,
                             {"price": Decimal(price)}, stream_seq=asset_seq - 1)
        self.entries.append(FeedEntry(seq, at, [update.feed_event()]))
        self.assets[asset_id] = self.assets[asset_id].replace(
            current_price=Decimal(price), last_price_update=at, stream_seq=asset_seq)


def make_hub(feed, clock, **kwargs):
    from inventory.stream.hub import Hub

    model = make_model(feed, gap_grace_seconds=kwargs.pop("gap_grace_seconds", 30))
    hub = Hub(model, max_age_seconds=300, retention_seconds=3600, poll_seconds=0, clock=clock, **kwargs)
    return hub.start()


def drain(sub) -> list[dict]:
    out = []
    while (message := sub.next(timeout=0)) is not None:
        out.append(message)
    return out


def test_a_price_past_the_bound_is_announced_stale_once_then_recovers_with_the_next_price():
    feed, now = FakeFeed(), [NOW]
    hub = make_hub(feed, lambda: now[0])
    sub = hub.subscribe({"BTC"}, "c")
    assert [m["type"] for m in drain(sub)] == ["snapshot", "_position"]

    now[0] = NOW + timedelta(seconds=301)
    hub.poll_once()
    hub.poll_once()
    [stale] = drain(sub)
    assert (stale["type"], stale["tradable"]) == ("stale", False)

    feed.price(1, "BTC", 1, "101", at=now[0])
    hub.poll_once()
    price, marker = drain(sub)
    assert price["recovered"] is True and price["tradable"] is True and marker == {"type": "_position", "seq": 1}


def test_a_missing_seq_holds_later_entries_until_the_grace_period_then_is_skipped():
    feed, now = FakeFeed(), [NOW]
    hub = make_hub(feed, lambda: now[0], gap_grace_seconds=0.2)
    sub = hub.subscribe(None, "c")
    drain(sub)
    feed.price(2, "BTC", 1, "101")  # seq 1 is in flight

    hub.poll_once()
    assert drain(sub) == []
    import time

    time.sleep(0.25)
    hub.poll_once()
    assert [m["type"] for m in drain(sub)] == ["price", "_position"]


def test_resume_from_a_seq_no_longer_kept_is_a_snapshot_flagged_resync():
    feed, now = FakeFeed(), [NOW]
    for seq in range(1, 4):
        feed.price(seq, "BTC", seq, str(100 + seq))
    hub = make_hub(feed, lambda: now[0])
    # GIVEN entries 1..2 expired from the table (and the hub never held them)
    feed.entries = feed.entries[2:]
    hub._ring.clear()

    resumed = hub.subscribe({"BTC"}, "c", since=0)

    snapshot = drain(resumed)[0]
    assert snapshot["type"] == "snapshot" and snapshot["resync"] is True and snapshot["asset_seq"] == 3


def test_a_client_that_falls_behind_is_dropped_with_a_reason():
    feed, now = FakeFeed(), [NOW]
    hub = make_hub(feed, lambda: now[0], queue_size=2)
    sub = hub.subscribe({"BTC"}, "c")
    for seq in range(1, 8):
        feed.price(seq, "BTC", seq, str(100 + seq))
    hub.poll_once()

    from inventory.stream.hub import Closed

    reasons = []
    for _ in range(20):
        try:
            sub.next(timeout=0)
        except Closed as exc:
            reasons.append(exc.reason)
            break
    assert reasons == ["slow"]
    assert hub.connections() == 0 and hub.dropped == 1


def test_an_asset_created_after_the_load_reaches_every_asset_and_its_category_subscribers_snapshot_first():
    feed, now = FakeFeed(), [NOW]
    hub = make_hub(feed, lambda: now[0])
    every, layer1, btc = hub.subscribe(None, "c"), hub.subscribe(None, "c", categories=({"layer-1"}, set())), \
        hub.subscribe({"BTC"}, "c")
    for sub in (every, layer1, btc):
        drain(sub)
    # GIVEN SOL is created after the hub loaded (a touch in the feed), then its first price commits
    feed.touch(1, build_asset("SOL", 2, price="150", now=NOW, categories=("layer-1",)))
    hub.poll_once()
    feed.price(2, "SOL", 1, "151")
    hub.poll_once()

    for sub in (every, layer1):
        snapshot, _, price, _ = drain(sub)
        assert (snapshot["type"], snapshot["asset_id"], snapshot["price"]) == ("snapshot", "SOL", "150")
        assert (price["type"], price["price"], price["asset_seq"]) == ("price", "151", 1)
    assert drain(btc) == []
    resumed = hub.subscribe(None, "c", since=0)
    assert [(m["type"], m.get("asset_id")) for m in drain(resumed)][:3] == [
        ("snapshot", "SOL"), ("_position", None), ("price", "SOL")]


def test_an_asset_that_joins_a_followed_category_reaches_the_stream_without_a_reconnect():
    feed, now = FakeFeed([build_asset("BTC", 1, price="100", now=NOW),
                          build_asset("SOL", 2, price="150", now=NOW, categories=("meme",))]), [NOW]
    hub = make_hub(feed, lambda: now[0])
    layer1 = hub.subscribe(None, "c", categories=({"layer-1"}, set()))
    drain(layer1)
    feed.touch(1, feed.assets["SOL"].replace(categories=("layer-1",), category="layer-1"))
    feed.price(2, "SOL", 1, "151")
    # Both entries in one poll: the snapshot already carries the price, which is not sent twice.
    hub.poll_once()
    [snapshot, marker] = drain(layer1)
    assert (snapshot["type"], snapshot["asset_id"], snapshot["price"], marker["seq"]) == ("snapshot", "SOL", "151", 1)
    # And one that leaves it is said to have left, and is no longer followed.
    feed.touch(3, feed.assets["SOL"].replace(categories=("meme",), category="meme"))
    feed.price(4, "SOL", 2, "152")
    hub.poll_once()
    [left] = drain(layer1)
    assert (left["type"], left["seq"], left["asset_id"], left["categories"]) == ("left", 3, "SOL", ["meme"])


def test_numbers_go_out_in_plain_notation():
    feed, now = FakeFeed([build_asset("BONK", 1, price="0.00000042", now=NOW)]), [NOW]
    hub = make_hub(feed, lambda: now[0])
    sub = hub.subscribe(None, "c")
    assert drain(sub)[0]["price"] == "0.00000042"
    feed.price(1, "BONK", 1, "8.354E+4")
    hub.poll_once()
    assert drain(sub)[0]["price"] == "83540"
    assert [m["price"] for m in drain(hub.subscribe(None, "c", since=0)) if "price" in m] == ["83540"]
