"""The live board in headless Chromium: a price committed to DynamoDB Local appears on /board; screenshot saved."""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from inventory.config import Config
from inventory.devtools.dynamodb_local import free_port
from inventory.store import AssetStore, make_client
from inventory.store.migrate import migrate
from inventory.store.prices import PriceStore, PriceUpdate
from tests.conftest import build_asset
from tests.unit.test_stream_sse import SSE

from .conftest import REPO, _stop, start_gunicorn
from .test_docs_write_browser import CHROMIUM, page  # noqa: F401  (the Chromium tab fixture, driven over CDP)

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

# Where the screenshot goes (kept after the run, unlike pytest's tmp dirs); CI can collect this directory.
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR", REPO / ".artifacts"))


@pytest.fixture
def server(request, dynamodb_local, tmp_path):
    """A gunicorn of the stream role (STREAM_ROLE=1, settings from the test's param) over a table
    of three priced assets: (url, PriceStore, process, the environment it runs with)."""
    table = f"e2e-board-{uuid.uuid4().hex[:10]}"
    client = make_client(Config(DYNAMODB_ENDPOINT_URL=dynamodb_local, DYNAMODB_TABLE_NAME=table))
    now = datetime.now(UTC)
    migrate(client, table, now)
    assets = AssetStore(client, table)
    for rank, asset_id in enumerate(("BTC", "ETH", "SOL"), 1):
        assets.create(build_asset(asset_id, rank, price="100", now=now))
    (tmp_path / "metrics").mkdir()
    env = {**os.environ, "DYNAMODB_ENDPOINT_URL": dynamodb_local, "DYNAMODB_TABLE_NAME": table,
           "STREAM_ROLE": "1", "STREAM_POLL_SECONDS": "0.2", "STREAM_HEARTBEAT_SECONDS": "1",
           "BIND": f"127.0.0.1:{free_port()}", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
           "PRICE_REFRESH_ENABLED": "false", "COINGECKO_API_URL": "http://127.0.0.1:9/api/v3",
           "GUNICORN_CMD_ARGS": "--no-control-socket", **getattr(request, "param", {})}
    process, url = start_gunicorn(env, tmp_path / "gunicorn.log")
    try:
        yield url, PriceStore(client, table, 30, 1), process, env
    finally:
        os.kill(process.pid, signal.SIGCONT)  # a test that froze it
        for pid in workers(process):
            os.kill(pid, signal.SIGCONT)
        _stop(process)
        client.delete_table(TableName=table)


def workers(process) -> list[int]:
    found = subprocess.run(["ps", "--ppid", str(process.pid), "-o", "pid="], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def connection_text(page) -> str:
    return page.js("document.getElementById('connection').textContent")


def current_seq(page) -> int | None:
    found = re.match(r"live, current as of seq (\d+), \d+ s ago$", connection_text(page))
    return int(found.group(1)) if found else None


def cell(asset_id: str, column: str) -> str:
    return f"(document.querySelector('#asset-{asset_id} .{column}') || {{}}).textContent"


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (`make test` installs it)")
def test_the_board_shows_a_price_move_as_it_is_committed(server, page):  # noqa: F811
    url, prices, _, _ = server
    # GIVEN the board open on the stream role, showing the snapshot and a live connection
    page.call("Page.enable")
    page.call("Page.navigate", url=url + "/board")
    page.wait_for(f"{cell('BTC', 'price')} === '100'", "the snapshot's BTC row")
    page.wait_for("(document.getElementById('connection')?.textContent || '').startsWith('live, current as of seq')",
                  "the stream's first heartbeat")
    before = current_seq(page)
    # /health/detailed's status and problem codes: no refresh ran here, and the price source is a closed port
    page.wait_for("document.getElementById('health').textContent.includes('(')", "the service health")
    health = page.js("document.getElementById('health').textContent")
    assert health.startswith("degraded (") and "no_refresh_yet" in health, health
    assert page.js(cell("BTC", "freshness")).startswith("fresh")

    # WHEN a price move is committed to the table (as the refresher writes it: update + feed entry)
    at = datetime.now(UTC) + timedelta(seconds=1)
    moved = PriceUpdate("BTC", {"current_price": Decimal("101.25"), "last_price_update": at}, at,
                        {"price": Decimal("101.25")}, stream_seq=0,
                        day_change={"price_change_percentage_24h": Decimal("1.25")})
    assert len(prices.apply([moved]).applied) == 1

    # THEN the row changes without a reload: new price, 24h change, next asset_seq, marked as updated
    # (read in the same evaluation that sees the price: the `updated` mark fades after 1.5 s)
    row = page.wait_for(f"""{cell('BTC', 'price')} === '101.25' && (() => {{
        const row = document.getElementById('asset-BTC');
        return {{change: {cell('BTC', 'change')}, seq: row.dataset.assetSeq, updated: row.classList.contains('updated')}};
    }})()""", "the moved BTC price")
    assert row == {"change": "1.25", "seq": "1", "updated": True}
    assert page.js(cell("ETH", "price")) == "100"  # the others untouched
    # and the next heartbeat says the board is current as of the move's seq
    page.wait_for(f"/current as of seq (\\d+)/.exec(document.getElementById('connection').textContent)?.[1] > {before}",
                  "the heartbeat's seq to advance")

    shot = page.call("Page.captureScreenshot", format="png")["data"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkstemp(prefix="board-", suffix=".png", dir=ARTIFACTS)[1])
    path.write_bytes(base64.b64decode(shot))
    print(f"board screenshot: {path}")
    assert path.read_bytes().startswith(b"\x89PNG")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (`make test` installs it)")
def test_the_board_opened_on_the_api_role_is_redirected_to_the_stream_role(server, page, tmp_path):  # noqa: F811
    stream_url, _, _, env = server
    api_env = {**env, "STREAM_ROLE": "", "STREAM_PUBLIC_URL": stream_url, "BIND": f"127.0.0.1:{free_port()}"}
    (tmp_path / "metrics-api").mkdir()
    api_env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics-api")
    api, api_url = start_gunicorn(api_env, tmp_path / "gunicorn-api.log")
    try:
        page.call("Page.enable")
        page.call("Page.navigate", url=api_url + "/board")
        page.wait_for(f"{cell('BTC', 'price')} === '100'", "the snapshot's BTC row")
        page.wait_for("(document.getElementById('connection')?.textContent || '').startsWith('live, current')",
                      "the stream's heartbeat")
        assert page.js("location.origin") == stream_url
    finally:
        _stop(api)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (`make test` installs it)")
@pytest.mark.parametrize("server", [{"STREAM_MAX_CONNECTIONS": "1"}], indirect=True)
def test_the_board_refused_a_stream_says_so_and_keeps_trying(server, page):  # noqa: F811
    # GIVEN the board opened on a stream role with no room left (503): EventSource gives up on a 503
    url, _, _, _ = server
    taken = SSE(f"{url}/inventory/assets/stream?assets=BTC")
    taken.next()
    page.call("Page.enable")
    page.call("Page.navigate", url=url + "/board")
    # THEN the page says the stream is unavailable (not a silent "connecting…"), and tries again later
    page.wait_for("(document.getElementById('connection')?.textContent || '').startsWith('unavailable, retrying')",
                  "the refusal to show")
    page.wait_for("performance.getEntriesByType('resource')"
                  ".filter(e => e.name.endsWith('/inventory/assets/stream')).length >= 2", "a second attempt")
    # WHEN the slot is freed, the next attempt goes live
    taken.close()
    page.wait_for("(document.getElementById('connection')?.textContent || '').startsWith('live')", "the stream")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (`make test` installs it)")
def test_a_frozen_stream_server_is_noticed_after_two_missed_heartbeats_and_rejoined(server, page):  # noqa: F811
    url, _, process, _ = server
    page.call("Page.enable")
    page.call("Page.navigate", url=url + "/board")
    page.wait_for("(document.getElementById('connection')?.textContent || '').startsWith('live, current')",
                  "the stream's heartbeat")
    # WHEN the server freezes (its socket stays open, nothing comes)
    frozen = [process.pid, *workers(process)]
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        page.wait_for("document.getElementById('connection').textContent === 'stalled, reconnecting…'",
                      "the stall to be noticed")
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    # THEN once it thaws the board is live again, resumed from where it was
    page.wait_for("(document.getElementById('connection')?.textContent || '').startsWith('live, current')",
                  "the stream to be live again")
    assert "/inventory/assets/stream?since=" in page.js("live.source.url"), "resumed from the last heartbeat's seq"
