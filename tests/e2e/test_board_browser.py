"""The live board in headless Chromium: rank order, names, 24h change, compact market caps, search and
category filters, freshness, the overview's totals and sparklines; a price committed to DynamoDB Local
appears on /board in place; screenshot saved."""

from __future__ import annotations

import base64
import colorsys
import json
import math
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
from inventory.domain import AssetStatus
from inventory.domain.pricecheck import SourcePrice, compare
from inventory.store import AssetStore, make_client
from inventory.store.migrate import migrate
from inventory.store.prices import PriceStore, PriceUpdate
from tests.conftest import build_asset
from tests.streams import SSE

from .conftest import REPO, _stop, start_gunicorn
from .test_docs_write_browser import CHROMIUM, page  # noqa: F401  (the Chromium tab fixture, driven over CDP)

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

# Where the screenshot goes (kept after the run, unlike pytest's tmp dirs); CI can collect this directory.
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR", REPO / ".artifacts"))


def series(start: float, end: float, wobble: float) -> tuple[Decimal, ...]:
    """A 7-day sparkline as the hourly job stores it: 168 closes from start to end, with a wave on the way."""
    return tuple(Decimal(str(round(start + (end - start) * i / 167 + wobble * math.sin(i / 9), 4))) for i in range(168))


# The catalog the board opens on: (id, rank, name, price, 24h change, market cap, 24h volume, categories, extra).
# Created in alphabetical order, which is not rank order; AAA has no rank (last), DOGE's price is an hour old
# (stale: PRICE_MAX_AGE_SECONDS is 300), ADA is suspended. 7-day sparklines: BTC's rises, ETH's falls, SOL has
# none yet, AAA one point (nothing to draw).
CATALOG = (
    ("AAA", None, "Aardvark", "0.0042", "12.5", None, None, ("meme",), {"sparkline_7d": (Decimal("0.0042"),)}),
    ("ADA", 9, "Cardano", "0.71", "1.1", "15000000000", "600000000", ("layer-1",), {"status": AssetStatus.SUSPENDED}),
    ("BTC", 1, "Bitcoin", "97123.5", "-0.4", "1900000000000", "34000000000", ("layer-1",),
     {"sparkline_7d": series(94000, 97123.5, 600), "second_price": "97140"}),
    ("DOGE", 8, "Dogecoin", "0.1642", "-3.1", "25000000000", "1200000000", ("meme",), {"age_seconds": 3600}),
    ("ETH", 2, "Ethereum", "3412.25", "-1.75", "420000000000", "18000000000", ("layer-1",),
     {"sparkline_7d": series(3600, 3412.25, 40), "second_price": "3500"}),
    ("SOL", 5, "Solana", "187.4", "0", "90000000000", "4000000000", ("layer-1",), {}),
)
RANK_ORDER = ["BTC", "ETH", "SOL", "DOGE", "ADA", "AAA"]


def catalog_asset(asset_id, rank, name, price, change, cap, volume, categories, extra, now):
    extra = dict(extra)
    second = extra.pop("second_price", None)
    asset = build_asset(asset_id, rank, price=price, name=name, now=now, category=categories[0],
                        categories=categories, price_change_percentage_24h=Decimal(change),
                        market_cap=cap and Decimal(cap), volume_24h=volume and Decimal(volume), **extra)
    if second is None:
        return asset
    # A cross-check as the job stores it: BTC's second price agrees, ETH's is 257 bp away (band 100).
    check = compare(SourcePrice("coingecko", asset.current_price, asset.last_price_update),
                    SourcePrice("binance", Decimal(second), now, f"{asset_id}USDT"), asset.band_bps, now, 180)
    return asset.replace(price_check=check)


@pytest.fixture
def server(request, dynamodb_local, tmp_path):
    """A gunicorn of the stream role (STREAM_ROLE=1, settings from the test's param) over a table
    holding CATALOG: (url, PriceStore, process, the environment it runs with)."""
    table = f"e2e-board-{uuid.uuid4().hex[:10]}"
    client = make_client(Config(DYNAMODB_ENDPOINT_URL=dynamodb_local, DYNAMODB_TABLE_NAME=table))
    now = datetime.now(UTC)
    migrate(client, table, now)
    assets = AssetStore(client, table)
    for row in CATALOG:
        assets.create(catalog_asset(*row, now=now))
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


# The ids of the rows shown, top to bottom.
VISIBLE = "[...document.querySelectorAll('#rows tr')].filter(r => !r.hidden).map(r => r.id.slice('asset-'.length))"


def hue(css_color: str) -> float:
    """The hue (0-360) of a computed `rgb(r, g, b)` colour."""
    red, green, blue = (int(part) / 255 for part in re.findall(r"\d+", css_color)[:3])
    return colorsys.rgb_to_hsv(red, green, blue)[0] * 360


def pill_color(tab, asset_id: str, part: str = "color") -> str:
    """The freshness pill's text colour, or its dot's (`part="dot"`)."""
    if part == "dot":
        return tab.js(f"getComputedStyle(document.querySelector('#asset-{asset_id} .freshness .pill'), '::before')"
                       ".backgroundColor")
    return tab.js(f"getComputedStyle(document.querySelector('#asset-{asset_id} .freshness .pill')).color")


def choose_category(tab, slug: str) -> None:
    tab.js(f"""(() => {{ const select = document.getElementById('category');
        select.value = {json.dumps(slug)}; select.dispatchEvent(new Event('change')); }})()""")


def save_screenshot(tab, prefix: str = "board-") -> Path:
    shot = tab.call("Page.captureScreenshot", format="png")["data"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkstemp(prefix=prefix, suffix=".png", dir=ARTIFACTS)[1])
    path.write_bytes(base64.b64decode(shot))
    print(f"board screenshot: {path}")
    return path


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (`make test` installs it)")
def test_the_board_people_keep_open(server, page):  # noqa: F811
    url, _, _, _ = server
    # GIVEN the board open on the stream role, on a desktop-sized window
    page.call("Emulation.setDeviceMetricsOverride", width=1280, height=640, deviceScaleFactor=1, mobile=False)
    page.call("Page.enable")
    page.call("Page.navigate", url=url + "/board")
    page.wait_for(f"{cell('BTC', 'name')} === 'Bitcoin' && {cell('AAA', 'name')} === 'Aardvark'", "the list's names")
    page.wait_for("document.getElementById('stale-count').textContent !== '…'", "the overview")

    # THEN rows are in market-cap-rank order, the unranked last (not the order created, nor alphabetical)
    assert page.js(VISIBLE) == RANK_ORDER
    assert [page.js(cell(i, "rank")) for i in RANK_ORDER] == ["1", "2", "5", "8", "9", "—"]
    # with name and symbol
    assert (page.js(cell("ETH", "name")), page.js(cell("ETH", "symbol"))) == ("Ethereum", "ETH")
    # the exact price, grouped; the 24h change signed, two places, with its direction as a class (green/red)
    assert page.js(cell("BTC", "price")) == "97,123.5" and page.js(cell("AAA", "price")) == "0.0042"
    changes = page.js("""Object.fromEntries(['BTC', 'SOL', 'AAA'].map(id => {
        const c = document.querySelector('#asset-' + id + ' .change');
        return [id, [c.textContent, ['up', 'down', 'flat'].filter(k => c.classList.contains(k))]]; }))""")
    assert changes == {"BTC": ["-0.40%", ["down"]], "SOL": ["0.00%", ["flat"]], "AAA": ["+12.50%", ["up"]]}
    up = page.js("getComputedStyle(document.querySelector('#asset-AAA .change')).color")
    down = page.js("getComputedStyle(document.querySelector('#asset-BTC .change')).color")
    assert 90 < hue(up) < 170 and (hue(down) < 15 or hue(down) > 345), (up, down)
    # market cap and volume in compact notation; none known: a dash
    assert [page.js(cell(i, "market-cap")) for i in ("BTC", "ETH", "ADA", "AAA")] == ["$1.9T", "$420B", "$15B", "—"]
    assert page.js(cell("BTC", "volume")) == "$34B"

    # AND the 7-day sparkline, drawn from the list's series (asked with sparkline=true): a polyline of every
    # point, coloured by direction; no history, or one point: nothing
    assert page.js("performance.getEntriesByType('resource').some(e => /\\/inventory\\/assets\\?.*sparkline=true/"
                   ".test(e.name))"), "the board asks the list for sparklines"
    spark = page.js("""Object.fromEntries(['BTC', 'ETH', 'SOL', 'DOGE', 'ADA', 'AAA'].map(id => {
        const svg = document.querySelector('#asset-' + id + ' .spark svg');
        return [id, svg && [svg.getAttribute('class'), svg.querySelector('polyline').getAttribute('points').split(' ').length]];
    }))""")
    assert spark == {"BTC": ["sparkline up", 168], "ETH": ["sparkline down", 168],
                     "SOL": None, "DOGE": None, "ADA": None, "AAA": None}

    # AND freshness: fresh rows a quiet green dot, the stale row amber, the suspended row red (and not the same)
    assert page.js(cell("BTC", "freshness")).startswith("fresh · ")
    assert re.fullmatch(r"stale · 6[01] min ago", page.js(cell("DOGE", "freshness"))), "an hour old, quietly"
    assert page.js(cell("ADA", "freshness")) == "suspended"
    classes = page.js("Object.fromEntries(['BTC', 'DOGE', 'ADA'].map(id => [id, "
                      "['fresh', 'stale', 'suspended'].filter(k => document.getElementById('asset-' + id).classList.contains(k))]))")
    assert classes == {"BTC": ["fresh"], "DOGE": ["stale"], "ADA": ["suspended"]}
    stale, suspended, fresh = pill_color(page, "DOGE"), pill_color(page, "ADA"), pill_color(page, "BTC", "dot")
    assert 25 < hue(stale) < 50, f"stale is amber: {stale}"
    assert hue(suspended) < 12 or hue(suspended) > 348, f"suspended is red: {suspended}"
    assert 90 < hue(fresh) < 170, f"fresh is green: {fresh}"
    # AND the price's cross-check beside it: the agreeing one quiet, the diverged one red (quotes refuse it)
    checks = page.js("Object.fromEntries(['BTC', 'ETH', 'SOL'].map(id => [id, [document.querySelector("
                     "'#asset-' + id + ' .check').textContent, document.getElementById('asset-' + id)"
                     ".classList.contains('diverged')]]))")
    assert checks == {"BTC": ["✓ 1.7 bp", False], "ETH": ["diverged 257.2 bp", True], "SOL": ["", False]}
    diverged = page.js("getComputedStyle(document.querySelector('#asset-ETH .check')).color")
    assert hue(diverged) < 12 or hue(diverged) > 348, f"diverged is red: {diverged}"

    # AND the overview's totals at the top (total market cap, 24h volume, BTC dominance, counts)
    totals = page.js("""Object.fromEntries(['total-market-cap', 'total-volume', 'btc-dominance', 'tradable-count',
        'stale-count', 'suspended-count'].map(id => [id, document.getElementById(id).textContent]))""")
    assert totals == {"total-market-cap": "$2.45T", "total-volume": "$57.8B", "btc-dominance": "77.6%",
                      "tradable-count": "4", "stale-count": "1", "suspended-count": "1"}
    page.wait_for("(document.getElementById('connection')?.textContent || '').startsWith('live, current')", "the stream")
    page.wait_for("document.getElementById('health').textContent.includes('(')", "the service health")
    shot = save_screenshot(page)
    assert shot.read_bytes().startswith(b"\x89PNG")
    page.call("Emulation.setEmulatedMedia", features=[{"name": "prefers-color-scheme", "value": "dark"}])
    assert save_screenshot(page, "board-dark-").read_bytes().startswith(b"\x89PNG")
    page.call("Emulation.setEmulatedMedia", features=[])

    # WHEN searching: a name's substring, then a symbol (case-insensitive)
    page.type("#search", "coin", "the search box")
    assert page.js(VISIBLE) == ["BTC", "DOGE"]  # Bitcoin, Dogecoin
    assert page.js("document.getElementById('shown').textContent") == "2 of 6 assets"
    page.type("#search", "SoL", "the search box")
    assert page.js(VISIBLE) == ["SOL"]
    page.type("#search", "zzz", "the search box")
    assert page.js(VISIBLE) == [] and page.js("document.getElementById('empty').hidden") is False
    page.type("#search", "", "the search box")
    assert page.js(VISIBLE) == RANK_ORDER

    # AND filtering by category (the options from /inventory/categories, with their counts)
    options = page.js("[...document.getElementById('category').options].map(o => [o.value, o.textContent])")
    assert options == [["", "All categories"], ["meme", "Meme (2)"], ["layer-1", "Layer 1 (4)"]]
    choose_category(page, "meme")
    assert page.js(VISIBLE) == ["DOGE", "AAA"]
    page.type("#search", "coin", "the search box")
    assert page.js(VISIBLE) == ["DOGE"]  # both filters at once
    choose_category(page, "layer-1")
    page.type("#search", "", "the search box")
    assert page.js(VISIBLE) == ["BTC", "ETH", "SOL", "ADA"]
    choose_category(page, "")
    assert page.js(VISIBLE) == RANK_ORDER


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (`make test` installs it)")
def test_the_board_shows_a_price_move_as_it_is_committed(server, page):  # noqa: F811
    url, prices, _, env = server
    # GIVEN the board open on the stream role, showing the snapshot and a live connection
    page.call("Page.enable")
    page.call("Page.navigate", url=url + "/board")
    page.wait_for(f"{cell('BTC', 'price')} === '97,123.5'", "the snapshot's BTC row")
    page.wait_for("(document.getElementById('connection')?.textContent || '').startsWith('live, current as of seq')",
                  "the stream's first heartbeat")
    before = current_seq(page)
    # the list's names, also from a service that does not serve sparklines yet (it refuses `sparkline`)
    page.wait_for(f"{cell('BTC', 'name')} === 'Bitcoin'", "the list's names")
    # /health/detailed's status and problem codes: no refresh ran here, and the price source is a closed port
    page.wait_for("document.getElementById('health').textContent.includes('(')", "the service health")
    health = page.js("document.getElementById('health').textContent")
    assert health.startswith("degraded (") and "no_refresh_yet" in health, health
    assert page.js(cell("BTC", "freshness")).startswith("fresh")
    assert page.js("document.querySelector('#asset-BTC .change').className") == "num change down"

    # WHEN a price move is committed to the table (as the refresher writes it: update + feed entry)
    at = datetime.now(UTC) + timedelta(seconds=1)
    moved = PriceUpdate("BTC", {"current_price": Decimal("97250.25"), "last_price_update": at}, at,
                        {"price": Decimal("97250.25")}, stream_seq=0,
                        day_change={"price_change_percentage_24h": Decimal("1.25")})
    assert len(prices.apply([moved]).applied) == 1

    # THEN the row changes without a reload: new price, 24h change (now up), next asset_seq, marked as updated
    # (read in the same evaluation that sees the price: the `updated` mark fades after 1.5 s)
    row = page.wait_for(f"""{cell('BTC', 'price')} === '97,250.25' && (() => {{
        const row = document.getElementById('asset-BTC');
        return {{change: {cell('BTC', 'change')}, up: row.querySelector('.change').classList.contains('up'),
                 seq: row.dataset.assetSeq, updated: row.classList.contains('updated')}};
    }})()""", "the moved BTC price")
    assert row == {"change": "+1.25%", "up": True, "seq": "1", "updated": True}
    assert page.js(cell("ETH", "price")) == "3,412.25"  # the others untouched
    assert page.js(VISIBLE) == RANK_ORDER  # and in place
    # and the next heartbeat says the board is current as of the move's seq
    page.wait_for(f"/current as of seq (\\d+)/.exec(document.getElementById('connection').textContent)?.[1] > {before}",
                  "the heartbeat's seq to advance")

    # WHEN an asset the list did not have is created (a refresh adding a coin)
    store = AssetStore(make_client(Config(DYNAMODB_ENDPOINT_URL=env["DYNAMODB_ENDPOINT_URL"],
                                          DYNAMODB_TABLE_NAME=env["DYNAMODB_TABLE_NAME"])), env["DYNAMODB_TABLE_NAME"])
    assert store.create(catalog_asset("XRP", 4, "XRP Ledger", "2.31", "0.8", "130000000000", "5000000000",
                                      ("layer-1",), {"sparkline_7d": series(2.5, 2.31, 0.05)}, now=datetime.now(UTC)))
    # THEN the stream's snapshot makes its row (with an asset_seq: the stream's), its name and figures follow,
    # and it takes its place by rank
    page.wait_for(f"{cell('XRP', 'name')} === 'XRP Ledger'", "the new asset's row")
    assert page.js("document.getElementById('asset-XRP').dataset.assetSeq") == "0"
    assert (page.js(cell("XRP", "price")), page.js(cell("XRP", "market-cap"))) == ("2.31", "$130B")
    assert page.js("document.querySelector('#asset-XRP .spark svg')?.getAttribute('class')") == "sparkline down"
    assert page.js(VISIBLE) == ["BTC", "ETH", "XRP", "SOL", "DOGE", "ADA", "AAA"]


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
        page.wait_for(f"{cell('BTC', 'price')} === '97,123.5'", "the snapshot's BTC row")
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
