"""Hub logic without a store: gaps, stale prices, resume or a flagged resync, slow clients."""

from __future__ import annotations

from datetime import timedelta

from inventory.store.feed import FeedEntry
from tests.conftest import NOW, build_asset


class FakeFeed:
    def __init__(self):
        self.entries: list[FeedEntry] = []

    def read(self, after: int, limit: int):
        return [e for e in self.entries if e.seq > after][:limit]

    def head(self) -> int:
        return max((e.seq for e in self.entries), default=0)

    def price(self, seq: int, asset_id: str, asset_seq: int, price: str, at=NOW):
        self.entries.append(FeedEntry(seq, at, [{"type": "price", "asset_id": asset_id, "asset_seq": asset_seq,
                                                 "price": price, "as_of": at.isoformat()}]))


def make_hub(feed, clock, assets=None, **kwargs):
    from inventory.stream.hub import Hub

    assets = assets if assets is not None else [build_asset("BTC", 1, price="100", now=NOW)]
    hub = Hub(feed.read, feed.head, lambda: assets, max_age_seconds=300, retention_seconds=3600,
              gap_grace_seconds=kwargs.pop("gap_grace_seconds", 30), clock=clock, **kwargs)
    hub.load()
    return hub


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

    assert hub.poll_once() == 0 and drain(sub) == []
    import time

    time.sleep(0.25)
    assert hub.poll_once() == 1
    assert [m["type"] for m in drain(sub)] == ["price", "_position"]


def test_resume_from_a_seq_no_longer_kept_is_a_snapshot_flagged_resync():
    feed, now = FakeFeed(), [NOW]
    for seq in range(1, 4):
        feed.price(seq, "BTC", seq, str(100 + seq))
    hub = make_hub(feed, lambda: now[0], assets=[build_asset("BTC", 1, price="103", now=NOW, stream_seq=3)])
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
    # GIVEN SOL is created (no feed entry) after the hub loaded, and its first change then commits
    created = build_asset("SOL", 2, price="150", now=NOW, categories=("layer-1",))
    from inventory.stream.hub import Hub

    hub = Hub(feed.read, feed.head, lambda: [build_asset("BTC", 1, price="100", now=NOW)],
              get_asset={"SOL": created}.__getitem__, max_age_seconds=300, retention_seconds=3600,
              clock=lambda: now[0])
    hub.load()
    every, layer1, btc = hub.subscribe(None, "c"), hub.subscribe(None, "c", categories=({"layer-1"}, set())), \
        hub.subscribe({"BTC"}, "c")
    for sub in (every, layer1, btc):
        drain(sub)
    feed.price(1, "SOL", 1, "151")

    hub.poll_once()

    for sub in (every, layer1):
        snapshot, price, _ = drain(sub)
        assert (snapshot["type"], snapshot["asset_id"], snapshot["price"], snapshot["asset_seq"]) == \
            ("snapshot", "SOL", "150", 0)
        assert (price["type"], price["price"], price["asset_seq"]) == ("price", "151", 1)
    assert drain(btc) == []
    resumed = hub.subscribe(None, "c", since=0)
    assert [(m["type"], m.get("asset_id")) for m in drain(resumed)][:2] == [("snapshot", "SOL"), ("price", "SOL")]
