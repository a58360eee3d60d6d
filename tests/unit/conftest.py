"""Fixtures the unit tests share (tests/conftest.py holds the app, the table and the clock)."""

from __future__ import annotations

import threading

import pytest
from werkzeug.serving import make_server

from tests.conftest import build_asset


@pytest.fixture
def served(app, add_assets):
    add_assets(build_asset("BTC", 1, price="97000"), build_asset("ETH", 2, price="3500"))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    # server_close() then waits for every connection's thread, so no socket outlives the test.
    server.daemon_threads = False
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    with app.app_context():
        from inventory.api.extension import services

        hub = services().hub
        if hub is not None:  # None on the API role (STREAM_MAX_CONNECTIONS=0)
            hub.close_all()
    server.shutdown()
    server.server_close()
