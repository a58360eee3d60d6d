"""SSE stream against the app in a threaded HTTP server, read with a real HTTP client (requests)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
import requests

from tests.conftest import build_asset
from tests.streams import SSE, _client, categorized, move_price, set_categories, suspend


@pytest.fixture
def config(config):
    return config.replace(STREAM_POLL_SECONDS=0.05, STREAM_HEARTBEAT_SECONDS=3, STREAM_MAX_CONNECTIONS=3)


def test_snapshot_then_a_price_move_and_a_suspension_with_consecutive_asset_sequences(app, served):
    stream = SSE(f"{served}/inventory/assets/stream?assets=BTC")
    assert stream.response.headers["Content-Type"].startswith("text/event-stream")
    assert stream.response.headers["X-Accel-Buffering"] == "no"

    event, snapshot = stream.next()
    assert event == "snapshot" and snapshot["asset_id"] == "BTC" and snapshot["tradable"] is True
    assert stream.retry == 2000

    move_price(app, "BTC", "97100.5", 30)
    event, price = stream.next()
    assert event == "price" and price["price"] == "97100.5" and price["asset_seq"] == snapshot["asset_seq"] + 1

    suspend(served)
    event, status = stream.next()
    assert event == "status" and status["status"] == "SUSPENDED" and status["tradable"] is False
    assert status["asset_seq"] == price["asset_seq"] + 1 and status["seq"] > price["seq"]
    stream.close()


def test_reconnect_with_last_event_id_gets_exactly_the_missed_messages(app, served):
    stream = SSE(f"{served}/inventory/assets/stream")
    assert [m["asset_id"] for m in stream.take(2)] == ["BTC", "ETH"]
    move_price(app, "ETH", "3501", 30)
    stream.take(1)
    seen = stream.until_id()
    stream.close()

    # WHEN the client is away while two changes commit
    move_price(app, "BTC", "97001", 30)
    suspend(served)

    resumed = SSE(f"{served}/inventory/assets/stream", headers={"Last-Event-ID": seen})
    missed = resumed.take(2)
    assert [(m["type"], m["asset_id"]) for m in missed] == [("price", "BTC"), ("status", "BTC")]
    assert [m["asset_seq"] for m in missed] == [1, 2]
    resumed.close()


def test_unknown_query_parameter_is_422_and_a_full_process_is_503_with_retry_after(served):
    bad = requests.get(f"{served}/inventory/assets/stream?asset=BTC", timeout=5)
    assert bad.status_code == 422 and bad.json()["error"] == "validation_failed"

    streams = [SSE(f"{served}/inventory/assets/stream?assets=BTC") for _ in range(3)]
    for s in streams:
        s.next()
    full = requests.get(f"{served}/inventory/assets/stream", timeout=5)
    assert full.status_code == 503 and full.headers["Retry-After"] == "5"
    assert full.json()["error"] == "stream_capacity"
    for s in streams:
        s.close()


def test_shutdown_sends_a_close_notice_with_a_reconnect_hint(app, served):
    stream = SSE(f"{served}/inventory/assets/stream?assets=ETH")
    stream.next()
    with app.app_context():
        from inventory.api.extension import services

        services().hub.close_all()
    event, notice = stream.next()
    assert event == "close" and notice["reconnect"] is True and notice["reason"] == "shutdown"
    stream.close()


def test_categories_follow_every_asset_carrying_one_of_them_and_an_unknown_slug_is_422(app, served, add_assets):
    categorized(add_assets)
    stream = SSE(f"{served}/inventory/assets/stream?categories=layer-1")
    assert [(m["type"], m["asset_id"]) for m in stream.take(2)] == [("snapshot", "DOGE"), ("snapshot", "SOL")]

    move_price(app, "UNI", "7.5", 30)  # defi only: not followed
    move_price(app, "DOGE", "0.21", 30)
    event, price = stream.next()
    assert (event, price["asset_id"], price["price"]) == ("price", "DOGE", "0.21")
    stream.close()

    both = SSE(f"{served}/inventory/assets/stream?categories=defi&assets=BTC")
    assert sorted(m["asset_id"] for m in both.take(2)) == ["BTC", "UNI"]
    both.close()

    bad = requests.get(f"{served}/inventory/assets/stream?categories=layer-1,nonsense", timeout=5)
    assert bad.status_code == 422 and bad.json()["error"] == "validation_failed"
    assert "categories" in bad.json()["errors"]["query"]


def test_an_asset_created_after_subscribing_reaches_the_all_stream_and_its_category_stream(app, served, add_assets):
    every = SSE(f"{served}/inventory/assets/stream")
    assert [m["asset_id"] for m in every.take(2)] == ["BTC", "ETH"]
    layer1 = SSE(f"{served}/inventory/assets/stream?categories=layer-1&assets=BTC")
    layer1.take(1)

    # WHEN a coin is created (as an import or a refresh would: a touch in the feed) and then its price moves
    add_assets(build_asset("SOL", 3, price="150", category="layer-1", categories=("layer-1",)))
    move_price(app, "SOL", "151", 30)

    for stream in (every, layer1):
        # THEN its snapshot comes first; it may already hold the price move when both entries
        # were applied in one poll (then the move is not sent again), else the move follows.
        event, snapshot = stream.next()
        assert (event, snapshot["asset_id"]) == ("snapshot", "SOL")
        if snapshot["price"] == "150":
            event, snapshot = stream.next()
            assert event == "price"
        assert (snapshot["asset_id"], snapshot["price"], snapshot["asset_seq"]) == ("SOL", "151", 1)
    move_price(app, "SOL", "152", 30)
    for stream in (every, layer1):
        event, price = stream.next()
        assert (event, price["asset_id"], price["price"], price["asset_seq"]) == ("price", "SOL", "152", 2)
        stream.close()


def test_an_open_category_stream_sees_an_asset_join_and_leave(app, served, add_assets):
    categorized(add_assets)
    stream = SSE(f"{served}/inventory/assets/stream?categories=defi")
    assert [m["asset_id"] for m in stream.take(1)] == ["UNI"]

    # WHEN an operator puts SOL into defi: it joins with its snapshot, then its moves follow
    set_categories(served, "SOL", ["defi", "layer-1"])
    event, joined = stream.next()
    assert (event, joined["asset_id"]) == ("snapshot", "SOL")
    move_price(app, "SOL", "155", 30)
    event, price = stream.next()
    assert (event, price["asset_id"], price["price"]) == ("price", "SOL", "155")

    # WHEN it is taken out again: the stream is told, and hears no more of it
    set_categories(served, "SOL", ["layer-1"])
    event, left = stream.next()
    assert (event, left["asset_id"], left["categories"]) == ("left", "SOL", ["layer-1"])
    move_price(app, "SOL", "156", 30)
    move_price(app, "UNI", "7.7", 30)
    event, price = stream.next()
    assert (event, price["asset_id"]) == ("price", "UNI")
    stream.close()


def test_checks_and_stood_in_prices_reach_the_stream_with_their_source(app, served):
    from inventory.domain import utcnow
    from inventory.domain.pricecheck import SourcePrice, compare
    from inventory.jobs.crosscheck import stand_in
    from inventory.store import Stores
    from inventory.store.prices import CheckUpdate

    stream = SSE(f"{served}/inventory/assets/stream?assets=BTC")
    event, snapshot = stream.next()
    assert snapshot["source"] == "coingecko" and snapshot["price_check"]["status"] == "single_source"
    (only,) = snapshot["price_check"]["sources"]
    assert (only["source"], only["price"]) == ("coingecko", "97000")
    assert datetime.fromisoformat(only["as_of"]) == datetime.fromisoformat(snapshot["as_of"])

    stores = Stores.build(_client(app), app.extensions["inventory"].config)
    btc, now = stores.assets.get("BTC"), utcnow()
    check = compare(SourcePrice("coingecko", btc.current_price, btc.last_price_update),
                    SourcePrice("binance", Decimal("97010"), now, "BTCUSDT"), btc.band_bps, now, 180)
    assert stores.prices.record_checks([CheckUpdate("BTC", check, btc.stream_seq)]).applied == ["BTC"]
    event, checked = stream.next()
    assert event == "check" and checked["asset_seq"] == snapshot["asset_seq"] + 1
    assert checked["price_check"]["status"] == "ok" and checked["price_check"]["divergence_bps"] == "1.0309"
    assert checked["price_check"]["sources"][1] == {"source": "binance", "price": "97010", "pair": "BTCUSDT",
                                                    "as_of": now.isoformat(timespec="milliseconds")}

    btc = stores.assets.get("BTC")
    update = stand_in(btc, SourcePrice("binance", Decimal("97020.5"), now, "BTCUSDT"), now)
    assert stores.prices.apply([update]).applied == ["BTC"]
    event, price = stream.next()
    assert event == "price" and price["price"] == "97020.5" and price["source"] == "binance"
    assert price["price_check"]["status"] == "single_source"
    assert price["price_check"]["sources"][0]["source"] == "binance"
    stream.close()
