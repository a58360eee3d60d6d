"""WebSocket stream against the app in a threaded HTTP server, with a real WebSocket client."""

from __future__ import annotations

import json

import requests
import websocket

from tests.conftest import build_asset
from tests.streams import (
    SSE,
    UPGRADE,
    categorized,
    connect,
    move_price,
    receive,
    suspend,
)
from tests.unit.test_stream_sse import config  # noqa: F401  (the same stream settings)


def test_query_subscription_gets_a_snapshot_then_a_price_move_and_a_suspension(app, served):
    ws = connect(served, "?assets=BTC")
    snapshot = receive(ws)
    assert snapshot["type"] == "snapshot" and snapshot["asset_id"] == "BTC"

    move_price(app, "BTC", "97000.25", 30)
    price = receive(ws)
    suspend(served)
    status = receive(ws)

    assert (price["type"], price["price"]) == ("price", "97000.25")
    assert (status["type"], status["status"], status["tradable"]) == ("status", "SUSPENDED", False)
    assert [price["asset_seq"], status["asset_seq"]] == [snapshot["asset_seq"] + 1, snapshot["asset_seq"] + 2]
    ws.close()


def test_subscribe_and_unsubscribe_messages_change_what_arrives(app, served):
    ws = connect(served, "?assets=BTC")
    receive(ws)
    ws.send(json.dumps({"op": "subscribe", "assets": ["ETH"]}))
    assert receive(ws)["asset_id"] == "ETH"  # its snapshot first
    ws.send(json.dumps({"op": "unsubscribe", "assets": ["BTC"]}))
    ws.send(json.dumps({"op": "dance"}))
    assert receive(ws)["error"] == "validation_failed"

    move_price(app, "BTC", "97001", 30)
    move_price(app, "ETH", "3501", 30)
    message = receive(ws)
    assert (message["type"], message["asset_id"]) == ("price", "ETH")
    ws.close()


def test_resume_with_since_gets_the_missed_messages(app, served):
    ws = connect(served, "?assets=BTC")
    receive(ws)
    checkpoint = receive(ws, skip=("heartbeat",))
    assert checkpoint["type"] == "checkpoint"
    ws.close()
    move_price(app, "BTC", "97002", 30)

    resumed = connect(served, f"?assets=BTC&since={checkpoint['seq']}")
    missed = receive(resumed)
    assert (missed["type"], missed["price"], missed["asset_seq"]) == ("price", "97002", 1)
    resumed.close()


def test_bad_query_is_422_before_the_upgrade_and_a_full_process_closes_1013(served):
    bad = requests.get(f"{served}/inventory/stream?assets=btc!", headers=UPGRADE, timeout=5)
    assert bad.status_code == 422 and bad.json()["error"] == "validation_failed"

    open_ = [connect(served, "?assets=BTC") for _ in range(3)]
    for ws in open_:
        receive(ws)  # subscribed (the upgrade alone does not say so yet)
    full = connect(served)
    opcode, data = full.recv_data(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE and int.from_bytes(data[:2], "big") == 1013
    full.shutdown()  # the close frame already ended the session; only the socket is left
    for ws in open_:
        ws.close()
    assert requests.get(f"{served}/inventory/assets/BTC", timeout=5).status_code == 200


def test_the_board_page_loads_only_its_own_files_under_a_strict_csp(client):
    page = client.get("/board")
    assert page.status_code == 200 and page.mimetype == "text/html"
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp and "unsafe-inline" not in csp
    html = page.get_data(as_text=True)
    assert 'src="/static/board/board.js"' in html and "http" not in html
    script = client.get("/static/board/board.js")
    assert script.status_code == 200 and "EventSource" in script.get_data(as_text=True)
    script.close()


def test_category_subscribe_and_unsubscribe_messages(app, served, add_assets):
    categorized(add_assets)
    ws = connect(served, "?categories=defi")
    assert receive(ws)["asset_id"] == "UNI"
    ws.send(json.dumps({"op": "subscribe", "categories": ["meme"]}))
    snapshot = receive(ws)
    assert (snapshot["type"], snapshot["asset_id"]) == ("snapshot", "DOGE")
    ws.send(json.dumps({"op": "unsubscribe", "categories": ["defi"]}))
    ws.send(json.dumps({"op": "subscribe", "categories": ["nonsense"]}))
    assert receive(ws)["error"] == "validation_failed"

    move_price(app, "UNI", "7.5", 30)
    move_price(app, "DOGE", "0.21", 30)
    message = receive(ws)
    assert (message["type"], message["asset_id"]) == ("price", "DOGE")
    ws.close()


def test_unknown_category_in_the_query_is_422_before_the_upgrade(served):
    bad = requests.get(f"{served}/inventory/stream?categories=nonsense", headers=UPGRADE, timeout=5)
    assert bad.status_code == 422 and bad.json()["error"] == "validation_failed"


def test_one_number_format_on_every_path(app, served, add_assets):
    # GIVEN prices DynamoDB and the source write in E-notation (Decimal("4.2E-7"), Decimal("8.354E+4"))
    add_assets(build_asset("DUST", 3, price="0.00000042"), build_asset("BIG", 4, price="100"))
    move_price(app, "BIG", "8.354E+4", 30)  # through the feed, as a refresh writes it
    ws = connect(served, "?assets=DUST,BIG")
    streamed = {}
    while len(streamed) < 2 or streamed.get("BIG") != "83540":
        message = receive(ws)
        streamed[message["asset_id"]] = message["price"]
    ws.close()
    sse = SSE(f"{served}/inventory/assets/stream?assets=DUST,BIG")
    sse_prices = {m["asset_id"]: m["price"] for m in sse.take(2)}
    sse.response.close()
    # THEN REST detail and list, the CSV export, SSE and WebSocket all write plain notation, every digit
    detail = {i: requests.get(f"{served}/inventory/assets/{i}", timeout=5).text for i in ("DUST", "BIG")}
    assert '"current_price":0.00000042' in detail["DUST"] and '"current_price":83540' in detail["BIG"]
    listed = requests.get(f"{served}/inventory/assets?q=dust&active_only=false", timeout=5).text
    assert '"current_price":0.00000042' in listed
    csv = requests.get(f"{served}/inventory/assets/export?format=csv", timeout=5).text
    assert ",0.00000042," in csv and ",83540," in csv and "E-" not in csv and "E+" not in csv
    assert streamed == sse_prices == {"DUST": "0.00000042", "BIG": "83540"}
