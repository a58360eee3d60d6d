"""`make demo` (DEMO=1 make run) without internet: the local CoinGecko emulator prices the seeded catalog."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from decimal import Decimal

import pytest
import requests

from inventory.devtools.dynamodb_local import free_port

from .conftest import REPO, _stop

DEMO_TIMEOUT = 90.0
MOVE_TIMEOUT = 30.0


def btc(bind: str, asset_id: str = "BTC") -> dict:
    answer = requests.get(f"http://{bind}/inventory/assets/{asset_id}", timeout=5)
    assert answer.status_code == 200, answer.text
    return json.loads(answer.text, parse_float=Decimal)["data"]


def test_demo_serves_priced_assets_without_internet(dynamodb_local, tmp_path):
    # GIVEN make run's runner in demo mode, on the test DynamoDB Local and free ports,
    # refreshing every 2 s from an emulator whose prices move every second
    bind = f"127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "DEMO": "1",
        "DYNAMODB_ENDPOINT_URL": dynamodb_local,
        "DYNAMODB_TABLE_NAME": f"demo-{uuid.uuid4().hex[:12]}",
        "BIND": bind,
        "STREAM_BIND": f"127.0.0.1:{free_port()}",
        "WEB_CONCURRENCY": "1",
        "API_TOKENS_FILE": str(tmp_path / "tokens.json"),
        "PRICE_REFRESH_INTERVAL_SECONDS": "2",
        "CROSSCHECK_ENABLED": "1",
        "CROSSCHECK_INTERVAL_SECONDS": "2",
        "DEMO_TICK_SECONDS": "1",
        "LOCAL_RUN_FILE": str(tmp_path / "run.json"),
    }
    log_path = tmp_path / "run.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "inventory.devtools.run"], cwd=REPO, env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
    try:
        # WHEN the first refresh has run
        deadline = time.monotonic() + DEMO_TIMEOUT
        listing = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                listing = requests.get(f"http://{bind}/inventory/assets?limit=5", timeout=2).json()
                if listing.get("data"):
                    break
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.5)
        # THEN the default list (tradable now) is not empty: the assets carry prices
        log = log_path.read_text(errors="replace")
        assert listing and listing.get("data"), "\n".join(l for l in log.splitlines() if "request" not in l)[-6000:]
        assert all(item["current_price"] is not None for item in listing["data"])
        assert "demo: prices from the local CoinGecko emulator" in log
        # BTC is priced at its real order of magnitude (late-2025 reference levels), not at 0.000002824
        first = btc(bind)
        assert Decimal(10_000) < Decimal(str(first["current_price"])) < Decimal(1_000_000), first
        # and the prices move: a later refresh brings a new price with a newer time, so they never go stale
        deadline = time.monotonic() + MOVE_TIMEOUT
        later = btc(bind)
        while later["last_price_update"] == first["last_price_update"] and time.monotonic() < deadline:
            time.sleep(0.5)
            later = btc(bind)
        assert later["last_price_update"] > first["last_price_update"], (first, later)
        assert later["current_price"] != first["current_price"]
        assert abs(Decimal(str(later["current_price"])) / Decimal(str(first["current_price"])) - 1) < Decimal("0.2")
        # The catalog is cross-checked against the demo's second source: BTC and ETH agree with it.
        assert "demo: second source from the local Binance emulator" in log
        deadline = time.monotonic() + MOVE_TIMEOUT
        while time.monotonic() < deadline and {btc(bind, a)["price_check"]["status"] for a in ("BTC", "ETH")} != {"ok"}:
            time.sleep(0.5)
        for asset_id in ("BTC", "ETH"):
            check = btc(bind, asset_id)["price_check"]
            assert check["status"] == "ok" and [s["source"] for s in check["sources"]] == ["coingecko", "binance"]
        # A stream asked of the service's port reaches the stream role (a 307, which EventSource follows).
        with requests.get(f"http://{bind}/inventory/assets/stream?assets=BTC", stream=True, timeout=10) as stream:
            assert stream.history[0].status_code == 307
            assert stream.url.startswith(f"http://{env['STREAM_BIND']}/")
            assert next(stream.iter_lines(decode_unicode=True)).startswith("retry:")
        # A refresh in a second shell (no COINGECKO_API_URL) finds the demo's emulator by itself.
        shell = {k: v for k, v in env.items() if k not in ("DEMO", "COINGECKO_API_URL")}
        refresh = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "refresh"], cwd=REPO, env=shell,
                                 capture_output=True, text=True, timeout=60)
        assert refresh.returncode == 0, refresh.stderr[-2000:]
        assert "prices from the demo's emulator at http://127.0.0.1:" in refresh.stderr
        assert json.loads(refresh.stdout)["fetched"] > 0
    finally:
        _stop(process)
    assert process.returncode is not None


def test_make_run_stops_everything_when_the_stream_role_cannot_start(dynamodb_local, tmp_path):
    # GIVEN a STREAM_BIND that cannot be bound (192.0.2.1, TEST-NET-1, is no address of this machine)
    bind = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "DYNAMODB_ENDPOINT_URL": dynamodb_local, "DYNAMODB_TABLE_NAME": f"run-{uuid.uuid4().hex[:12]}",
           "BIND": bind, "STREAM_BIND": f"192.0.2.1:{free_port()}", "WEB_CONCURRENCY": "1",
           "API_TOKENS_FILE": str(tmp_path / "tokens.json"), "COINGECKO_API_URL": "http://127.0.0.1:9/api/v3",
           "LOCAL_RUN_FILE": str(tmp_path / "run.json")}
    result = subprocess.run([sys.executable, "-m", "inventory.devtools.run"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=DEMO_TIMEOUT)
    # THEN make run ends with one line naming the variable, and the API role it had started is gone
    assert result.returncode == 1
    reason = [line for line in result.stderr.splitlines() if line.startswith("make run:")]
    assert reason == [f"make run: the live stream did not start on STREAM_BIND={env['STREAM_BIND']} "
                      f"(exit 1; its log is above)"], result.stderr[-3000:]
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://{bind}/health", timeout=2)
