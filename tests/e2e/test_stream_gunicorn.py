"""Live stream across two gunicorn masters on DynamoDB Local: API role writes, stream role streams."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid

import pytest
import requests

from inventory.devtools.dynamodb_local import free_port
from inventory.services.tokens import hash_token
from tests.e2e.conftest import _flask, _stop, start_gunicorn
from tests.streams import SSE

pytestmark = pytest.mark.e2e

TOKEN = "inv_e2e-stream-admin"


@pytest.fixture
def roles(dynamodb_local, tmp_path):
    env = {
        **os.environ,
        "DYNAMODB_ENDPOINT_URL": dynamodb_local,
        "DYNAMODB_TABLE_NAME": f"e2e-stream-{uuid.uuid4().hex[:10]}",
        "PRICE_REFRESH_ENABLED": "false",
        "WEB_CONCURRENCY": "1",
        "STREAM_POLL_SECONDS": "0.2",
        "API_TOKENS": json.dumps([{"name": "ops", "scopes": ["assets:admin"], "hash": hash_token(TOKEN)}]),
        "GUNICORN_CMD_ARGS": "--no-control-socket",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("STREAM_MAX_CONNECTIONS", None)
    _flask(["migrate"], env)
    _flask(["seed"], env)
    processes = Roles()
    try:
        for role in ("api", "stream"):
            metrics = tmp_path / f"metrics-{role}"
            metrics.mkdir()
            role_env = {**env, "BIND": f"127.0.0.1:{free_port()}", "PROMETHEUS_MULTIPROC_DIR": str(metrics),
                        "STREAM_ROLE": "1" if role == "stream" else ""}
            processes.envs.append(role_env)
            processes.append(start_gunicorn(role_env, tmp_path / f"gunicorn-{role}.log"))
        yield processes
    finally:
        for process, _ in processes:
            _stop(process)


class Roles(list):
    """[(api process, url), (stream process, url)], and the environment each was started with."""

    def __init__(self):
        super().__init__()
        self.envs: list[dict] = []


def test_a_suspension_on_the_api_role_reaches_the_stream_role_and_sigterm_closes_with_a_hint(roles):
    (api, api_url), (streams, stream_url) = roles
    # The API role keeps its request threads for requests: no streams there, and it says where they are.
    refused = requests.get(f"{api_url}/inventory/assets/stream", timeout=5)
    assert refused.status_code == 421 and "STREAM_BIND" in refused.json()["message"]

    stream = SSE(f"{stream_url}/inventory/assets/stream?assets=BTC")
    event, snapshot = stream.next()
    assert event == "snapshot"

    etag = requests.get(f"{api_url}/inventory/assets/BTC", timeout=5).headers["ETag"]
    changed = requests.patch(f"{api_url}/inventory/assets/BTC/status", json={"status": "SUSPENDED", "reason": "e2e"},
                             headers={"Authorization": f"Bearer {TOKEN}", "If-Match": etag}, timeout=5)
    assert changed.status_code == 200, changed.text
    event, status = stream.next()
    assert (event, status["status"], status["asset_seq"]) == ("status", "SUSPENDED", snapshot["asset_seq"] + 1)

    metrics = requests.get(f"{stream_url}/metrics", timeout=5).text
    assert 'inventory_stream_connections{kind="sse"} 1.0' in metrics
    assert "inventory_stream_delay_seconds_count 1.0" in metrics

    # WHEN the stream role is told to stop
    streams.send_signal(signal.SIGTERM)
    event, notice = stream.next()
    assert event == "close" and notice["reconnect"] is True and notice["reason"] == "shutdown"
    stream.close()
    assert streams.wait(timeout=15) == 0


def test_ctrl_c_stops_the_stream_role_at_once_after_a_client_left(roles):
    """Ctrl-C reaches the master and its worker together; a stream whose client has gone
    must not hold the worker until the master kills it (graceful_timeout, 20 s)."""
    _, (streams, stream_url) = roles
    stream = SSE(f"{stream_url}/inventory/assets/stream?assets=BTC")
    assert stream.next()[0] == "snapshot"
    stream.close()  # the client leaves
    workers = subprocess.run(["ps", "--ppid", str(streams.pid), "-o", "pid="],
                             capture_output=True, text=True, check=True).stdout.split()
    assert workers
    for pid in [streams.pid, *map(int, workers)]:  # what a terminal's Ctrl-C does to the group
        os.kill(pid, signal.SIGINT)
    started = time.monotonic()
    assert streams.wait(timeout=15) == 0
    assert time.monotonic() - started < 10


def _change(api_url: str, asset_id: str, status: str) -> None:
    etag = requests.get(f"{api_url}/inventory/assets/{asset_id}", timeout=5).headers["ETag"]
    changed = requests.patch(f"{api_url}/inventory/assets/{asset_id}/status", json={"status": status, "reason": "e2e"},
                             headers={"Authorization": f"Bearer {TOKEN}", "If-Match": etag}, timeout=5)
    assert changed.status_code == 200, changed.text


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_a_resume_after_the_stream_role_restarts_replays_every_change_made_while_it_was_down(roles, tmp_path, how):
    (_, api_url), (streams, stream_url) = roles
    # GIVEN clients that read their snapshot up to its resume point
    clients = [SSE(f"{stream_url}/inventory/assets/stream?assets=BTC,ETH") for _ in range(10)]
    resume_at = [client.until_id() for client in clients]
    # WHEN the stream role stops (SIGTERM: a close notice; SIGKILL of master and worker: a bare EOF)
    if how == "SIGKILL":
        workers = subprocess.run(["ps", "--ppid", str(streams.pid), "-o", "pid="],
                                 capture_output=True, text=True, check=True).stdout.split()
        for pid in [streams.pid, *map(int, workers)]:
            os.kill(pid, signal.SIGKILL)
    else:
        streams.send_signal(signal.SIGTERM)
    streams.wait(timeout=30)
    for client in clients:
        client.close()
    # AND three status changes are made while no stream role runs
    for asset_id, status in (("BTC", "SUSPENDED"), ("ETH", "SUSPENDED"), ("BTC", "ACTIVE")):
        _change(api_url, asset_id, status)
    # AND it comes back
    restarted = start_gunicorn(roles.envs[1], tmp_path / f"gunicorn-stream-{how}.log")
    roles[1] = restarted
    # THEN every client resuming from its Last-Event-ID gets the three changes, in order, and nothing older
    for last in resume_at:
        resumed = SSE(f"{stream_url}/inventory/assets/stream?assets=BTC,ETH", headers={"Last-Event-ID": last})
        got = [resumed.next() for _ in range(3)]
        resumed.close()
        assert [(event, m["asset_id"], m["status"]) for event, m in got] == [
            ("status", "BTC", "SUSPENDED"), ("status", "ETH", "SUSPENDED"), ("status", "BTC", "ACTIVE")]
        assert [m["seq"] for _, m in got] == sorted(m["seq"] for _, m in got) and got[0][1]["seq"] > int(last)


def test_two_hundred_streams_from_one_address_with_default_limits_and_a_leaver_frees_its_slot(roles):
    """All browsers behind a gateway arrive from its one address: the default settings serve them all."""
    _, (_, stream_url) = roles
    streams = [SSE(f"{stream_url}/inventory/assets/stream?assets=BTC") for _ in range(200)]
    for stream in streams:
        assert stream.response.status_code == 200
        assert stream.next()[0] == "snapshot"

    def connections() -> float:
        text = requests.get(f"{stream_url}/metrics", timeout=5).text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("inventory_stream_connections{"))

    assert connections() == 200
    for stream in streams[:50]:
        stream.close()
    started = time.monotonic()
    while connections() > 150:
        assert time.monotonic() - started < 2.5, connections()
        time.sleep(0.1)
    for stream in streams[50:]:
        stream.close()


def test_ctrl_c_of_make_run_with_streams_open_closes_them_all_and_kills_no_worker(dynamodb_local, tmp_path):
    """A terminal's Ctrl-C signals the whole group: `make run`, both masters, every worker.
    Each worker gets two stop signals then (the terminal's, the master's); three stops in a row."""
    from bench.stop import one_stop

    table = f"e2e-stop-{uuid.uuid4().hex[:10]}"
    for _ in range(3):
        stop = one_stop(dynamodb_local, table, 20, tmp_path)
        assert (stop["exit"], stop["sigkilled"]) == (0, 0), stop["log"]
        assert (stop["sse_closed"], stop["ws_closed"]) == (20, 20)
        assert stop["seconds"] < 10


def test_behind_the_nginx_config_one_origin_serves_reads_streams_and_the_board(roles, tmp_path):
    """docs/nginx/inventory.conf in front of both roles: every browser arrives from nginx's address."""
    from tests.e2e.test_nginx_slow_clients import NGINX, running_nginx

    if NGINX is None:
        pytest.skip("nginx is not installed")
    (api, api_url), (streams, stream_url) = roles
    with running_nginx(tmp_path, api_url.removeprefix("http://"), stream_url.removeprefix("http://")) as url:
        assert requests.get(f"{url}/inventory/assets/BTC", timeout=5).json()["data"]["asset_id"] == "BTC"
        board = requests.get(f"{url}/board", timeout=5)
        assert board.status_code == 200 and "text/html" in board.headers["Content-Type"]
        opened = [SSE(f"{url}/inventory/assets/stream?assets=BTC") for _ in range(60)]  # past the per-client 50
        for stream in opened:
            assert stream.next()[0] == "snapshot"
        _change(api_url, "BTC", "SUSPENDED")
        event, status = opened[-1].next()
        while event == "snapshot":  # the seed's last entries, if they reached the stream after it opened
            event, status = opened[-1].next()
        assert (event, status["status"]) == ("status", "SUSPENDED")
        # The change and the heartbeat pass nginx unbuffered (STREAM_HEARTBEAT_SECONDS: 5 by default);
        # a snapshot may come first, when the seed's last entries reach the stream after it opened.
        kinds = [opened[0].next(skip_heartbeats=False)[0] for _ in range(3)]
        assert {"status", "heartbeat"} & set(kinds), kinds
        for stream in opened:
            stream.close()
