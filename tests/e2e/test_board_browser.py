"""The live board in headless Chromium: a price committed to DynamoDB Local appears on /board; screenshot saved."""

from __future__ import annotations

import base64
import os
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

from .conftest import REPO, _stop, start_gunicorn
from .test_docs_write_browser import CHROMIUM, page  # noqa: F401  (the Chromium tab fixture, driven over CDP)

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

# Where the screenshot goes (kept after the run, unlike pytest's tmp dirs); CI can collect this directory.
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR", REPO / ".artifacts"))


@pytest.fixture(params=["stream"])
def server(request, dynamodb_local, tmp_path):
    """A gunicorn of the given role (`stream`: STREAM_ROLE=1, or `api`) over a table of three priced assets."""
    table = f"e2e-board-{uuid.uuid4().hex[:10]}"
    client = make_client(Config(DYNAMODB_ENDPOINT_URL=dynamodb_local, DYNAMODB_TABLE_NAME=table))
    now = datetime.now(UTC)
    migrate(client, table, now)
    assets = AssetStore(client, table)
    for rank, asset_id in enumerate(("BTC", "ETH", "SOL"), 1):
        assets.create(build_asset(asset_id, rank, price="100", now=now))
    (tmp_path / "metrics").mkdir()
    env = {**os.environ, "DYNAMODB_ENDPOINT_URL": dynamodb_local, "DYNAMODB_TABLE_NAME": table,
           "STREAM_ROLE": "1" if request.param == "stream" else "", "STREAM_POLL_SECONDS": "0.2",
           "BIND": f"127.0.0.1:{free_port()}", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
           "PRICE_REFRESH_ENABLED": "false", "COINGECKO_API_URL": "http://127.0.0.1:9/api/v3",
           "GUNICORN_CMD_ARGS": "--no-control-socket"}
    process, url = start_gunicorn(env, tmp_path / "gunicorn.log")
    try:
        yield url, PriceStore(client, table, 30, 1)
    finally:
        _stop(process)
        client.delete_table(TableName=table)


def cell(asset_id: str, column: str) -> str:
    return f"(document.querySelector('#asset-{asset_id} .{column}') || {{}}).textContent"


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (`make test` installs it)")
def test_the_board_shows_a_price_move_as_it_is_committed(server, page):  # noqa: F811
    url, prices = server
    # GIVEN the board open on the stream role, showing the snapshot and a live connection
    page.call("Page.enable")
    page.call("Page.navigate", url=url + "/board")
    page.wait_for(f"{cell('BTC', 'price')} === '100'", "the snapshot's BTC row")
    page.wait_for("document.getElementById('connection')?.textContent === 'live'", "the stream to open")
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
    assert page.js("document.getElementById('connection').textContent") == "live"

    shot = page.call("Page.captureScreenshot", format="png")["data"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkstemp(prefix="board-", suffix=".png", dir=ARTIFACTS)[1])
    path.write_bytes(base64.b64decode(shot))
    print(f"board screenshot: {path}")
    assert path.read_bytes().startswith(b"\x89PNG")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (`make test` installs it)")
@pytest.mark.parametrize("server", ["api"], indirect=True)
def test_the_board_on_a_server_without_streams_says_so_and_keeps_trying(server, page):  # noqa: F811
    # GIVEN the board opened on the API role, which refuses streams (503): EventSource gives up on a 503
    url, _ = server
    page.call("Page.enable")
    page.call("Page.navigate", url=url + "/board")
    # THEN the page says the stream is unavailable (not a silent "connecting…"), and tries again later
    page.wait_for("(document.getElementById('connection')?.textContent || '').startsWith('unavailable, retrying')",
                  "the refusal to show")
    page.wait_for("performance.getEntriesByType('resource')"
                  ".filter(e => e.name.endsWith('/inventory/assets/stream')).length >= 2", "a second attempt")
