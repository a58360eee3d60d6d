"""Streams as they run behind a gateway: every client from one address, liveness seen by the client."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
import requests
import websocket

from tests.conftest import ADMIN
from tests.streams import SSE, UPGRADE, connect, move_price, receive


@pytest.fixture
def config(config, request):
    settings = {"STREAM_POLL_SECONDS": 0.05, "STREAM_HEARTBEAT_SECONDS": 1, "STREAM_MAX_CONNECTIONS": 4,
                "STREAM_MAX_PER_CLIENT": 2, **getattr(request, "param", {})}
    return config.replace(**settings)


def opened(served, n: int, **kwargs) -> list[SSE]:
    streams = [SSE(f"{served}/inventory/assets/stream?assets=BTC", **kwargs) for _ in range(n)]
    for stream in streams:
        assert stream.response.status_code == 200, stream.response.text
        stream.next()
    return streams


def test_anonymous_streams_from_one_address_share_only_the_process_capacity(served):
    # Every browser behind the gateway arrives from its address: no per-address limit then.
    streams = opened(served, 4)  # twice STREAM_MAX_PER_CLIENT
    full = requests.get(f"{served}/inventory/assets/stream", timeout=5)
    assert full.status_code == 503 and full.json()["error"] == "stream_capacity"
    for stream in streams:
        stream.close()


def test_a_token_is_limited_per_name(served):
    streams = opened(served, 2, headers=ADMIN)
    third = requests.get(f"{served}/inventory/assets/stream", headers=ADMIN, timeout=5)
    assert third.status_code == 503 and third.json()["error"] == "stream_client_limit"
    assert third.headers["Retry-After"] == "5"
    anonymous = opened(served, 1)  # another client is not held back by that token's streams
    for stream in streams + anonymous:
        stream.close()


@pytest.mark.parametrize("config", [{"TRUSTED_PROXY_HOPS": 1}], indirect=True)
def test_behind_a_trusted_proxy_the_forwarded_address_is_limited(served):
    one = {"X-Forwarded-For": "203.0.113.7"}
    streams = opened(served, 2, headers=one)
    third = requests.get(f"{served}/inventory/assets/stream", headers=one, timeout=5)
    assert third.status_code == 503 and third.json()["error"] == "stream_client_limit"
    other = opened(served, 1, headers={"X-Forwarded-For": "203.0.113.8"})
    for stream in streams + other:
        stream.close()


def hub_connections(app) -> int:
    with app.app_context():
        from inventory.api.extension import services

        return services().hub.connections()


def wait_for(condition, seconds: float) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, "not within %s s" % seconds
        time.sleep(0.05)
    return time.monotonic() - started


@pytest.mark.parametrize("config", [{"STREAM_HEARTBEAT_SECONDS": 30}], indirect=True)
def test_a_client_that_leaves_frees_its_slot_within_two_seconds_whatever_the_heartbeat(app, served):
    sse = opened(served, 3)
    ws = connect(served, "?assets=BTC")
    receive(ws)
    assert hub_connections(app) == 4

    sse[0].close()
    ws.close()
    # No write to fail in that time (no change, the next heartbeat 30 s away): the socket's own close.
    wait_for(lambda: hub_connections(app) == 2, 2.0)
    again = opened(served, 2)
    for stream in sse[1:] + again:
        stream.close()


def test_the_sse_heartbeat_is_an_event_with_the_position_and_resumes_from_it(app, served):
    stream = SSE(f"{served}/inventory/assets/stream?assets=BTC")
    stream.next()
    event, first = stream.next(skip_heartbeats=False)
    assert event == "heartbeat" and first["interval"] == 1
    assert abs((datetime.fromisoformat(first["time"]) - datetime.now(timezone.utc)).total_seconds()) < 5

    # WHEN an asset this client does not follow moves, its position still advances past it
    move_price(app, "ETH", "3600", 30)
    while True:
        event, beat = stream.next(skip_heartbeats=False)
        assert event == "heartbeat"
        if beat["seq"] > first["seq"]:
            break
    assert stream.last_id == str(beat["seq"])  # the heartbeat's id: line is a resume point
    stream.close()

    move_price(app, "BTC", "97100", 30)
    resumed = SSE(f"{served}/inventory/assets/stream?assets=BTC", headers={"Last-Event-ID": stream.last_id})
    event, price = resumed.next()
    assert (event, price["asset_id"], price["price"]) == ("price", "BTC", "97100")
    resumed.close()


def test_the_websocket_heartbeat_carries_the_position(app, served):
    ws = connect(served, "?assets=BTC")
    receive(ws)
    checkpoint = receive(ws, skip=("heartbeat",))
    beat = receive(ws, skip=("checkpoint",))
    assert beat["type"] == "heartbeat" and beat["seq"] == checkpoint["seq"] and beat["interval"] == 1
    move_price(app, "ETH", "3600", 30)
    while beat["seq"] == checkpoint["seq"]:
        beat = receive(ws, skip=("checkpoint",))
    assert beat["type"] == "heartbeat" and beat["seq"] > checkpoint["seq"]
    ws.close()


def test_heartbeats_keep_coming_while_messages_flow(app, served):
    stream = SSE(f"{served}/inventory/assets/stream?assets=BTC")
    stream.next()
    kinds, price, started = [], 97000, time.monotonic()
    while time.monotonic() - started < 2.5:
        price += 1
        move_price(app, "BTC", str(price), int(price - 96990))
        kinds.append(stream.next(skip_heartbeats=False)[0])
    assert "price" in kinds and "heartbeat" in kinds
    stream.close()


@pytest.mark.parametrize("config", [{"STREAM_MAX_CONNECTIONS": 0, "STREAM_PUBLIC_URL": "http://:8012"}],
                         indirect=True)
def test_the_api_role_redirects_streams_and_the_board_to_the_stream_role_keeping_host_and_query(served):
    host = served.replace("http://", "").split(":")[0]
    for path in ("/inventory/assets/stream?assets=BTC", "/inventory/stream?assets=ETH", "/board"):
        headers = UPGRADE if path.startswith("/inventory/stream") else {}
        moved = requests.get(f"{served}{path}", headers=headers, allow_redirects=False, timeout=5)
        assert moved.status_code == 307, path
        assert moved.headers["Location"] == f"http://{host}:8012{path}"
        assert moved.json()["location"] == moved.headers["Location"]  # said in the body too (curl without -L)


@pytest.mark.parametrize("config", [{"STREAM_MAX_CONNECTIONS": 0, "STREAM_PUBLIC_URL": "https://live.example.com/"}],
                         indirect=True)
def test_a_public_url_with_a_host_is_used_as_it_is(served):
    moved = requests.get(f"{served}/inventory/assets/stream", allow_redirects=False, timeout=5)
    assert moved.headers["Location"] == "https://live.example.com/inventory/assets/stream"


@pytest.mark.parametrize("config", [{"STREAM_MAX_CONNECTIONS": 0}], indirect=True)
def test_without_a_stream_role_to_point_at_the_api_role_says_where_streams_live(served):
    for path in ("/inventory/assets/stream", "/board"):
        refused = requests.get(f"{served}{path}", timeout=5)
        assert refused.status_code == 421, path
        body = refused.json()
        assert body["error"] == "stream_elsewhere" and "STREAM_BIND" in body["message"]
        assert "Retry-After" not in refused.headers
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        connect(served)
    assert refused.value.status_code == 421


def test_an_open_socket_past_descriptor_1023_is_not_taken_for_a_gone_client():
    # A stream role with hundreds of streams holds descriptors past select()'s limit.
    import os
    import resource
    import socket

    from inventory.stream.views import peer_gone

    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] <= 2000:
        pytest.skip("the descriptor limit is too low to place a socket past 1023")
    ours, theirs = socket.socketpair()
    high = os.dup2(ours.fileno(), 2000)
    far = socket.socket(fileno=high)
    try:
        assert peer_gone(far) is False  # open, nothing sent
        theirs.close()
        assert peer_gone(far) is True  # the other end closed
    finally:
        for sock in (far, ours, theirs):
            sock.close()
