"""`make demo` (DEMO=1 make run) without internet: the local CoinGecko emulator prices the seeded catalog."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import requests

from inventory.devtools.dynamodb_local import free_port

from .conftest import REPO, _stop

DEMO_TIMEOUT = 90.0


def test_demo_serves_priced_assets_without_internet(dynamodb_local, tmp_path):
    # GIVEN make run's runner in demo mode, on the test DynamoDB Local and free ports
    bind = f"127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "DEMO": "1",
        "DYNAMODB_ENDPOINT_URL": dynamodb_local,
        "DYNAMODB_TABLE_NAME": f"demo-{uuid.uuid4().hex[:12]}",
        "BIND": bind,
        "WEB_CONCURRENCY": "1",
        "API_TOKENS_FILE": str(tmp_path / "tokens.json"),
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
    finally:
        _stop(process)
    assert process.returncode is not None
