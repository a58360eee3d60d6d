"""Helpers of the live stream's tests: an SSE reader, WebSocket helpers, and writes that feed a stream."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import requests
import websocket

from inventory.store import PriceStore
from inventory.store.prices import PriceUpdate
from tests.conftest import ADMIN, build_asset


class SSE:
    """A minimal event-stream reader: (event, data, last id) per dispatched event."""

    def __init__(self, url: str, **kwargs):
        self.response = requests.get(url, stream=True, timeout=10, **kwargs)
        self.lines = self.response.iter_lines(decode_unicode=True)
        self.last_id = None
        self.retry = None

    def next(self, skip_heartbeats: bool = True) -> tuple[str, dict]:
        event, data = "message", None
        for line in self.lines:
            if line == "":
                if data is not None and not (skip_heartbeats and event == "heartbeat"):
                    return event, json.loads(data)
                data = None
                event = "message"
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "id":
                self.last_id = value
            elif name == "retry":
                self.retry = int(value)
            elif name == "event":
                event = value
            elif name == "data":
                data = value
        raise EOFError

    def until_id(self) -> str:
        """Read up to the next `id:` line (the resume point after an entry's last message)."""
        for line in self.lines:
            if line.startswith("id:"):
                self.last_id = line[3:].strip()
                return self.last_id
        raise EOFError

    def take(self, n: int) -> list[dict]:
        return [self.next()[1] for _ in range(n)]

    def close(self):
        self.response.close()


def move_price(app, asset_id: str, price: str, seconds_later: int) -> None:
    with app.app_context():
        from inventory.api.extension import services

        current = services().catalog.stores.assets.get(asset_id)  # as stored now, whatever the model applied
    cfg = app.extensions["inventory"].config
    from inventory.store import make_client  # noqa: F401  (moto is active: the same table)

    prices = PriceStore(_client(app), cfg.DYNAMODB_TABLE_NAME, 30, 1)
    at = current.last_price_update + timedelta(seconds=seconds_later)
    result = prices.apply([PriceUpdate(
        asset_id, {"current_price": Decimal(price), "last_price_update": at}, at, {"price": Decimal(price)},
        stream_seq=current.stream_seq,
    )])
    assert result.applied == [asset_id]


def _client(app):
    with app.app_context():
        from inventory.api.extension import services

        return services().catalog.stores.client


def suspend(base: str) -> None:
    etag = requests.get(f"{base}/inventory/assets/BTC", timeout=5).headers["ETag"]
    response = requests.patch(f"{base}/inventory/assets/BTC/status", json={"status": "SUSPENDED", "reason": "t"},
                              headers={**ADMIN, "If-Match": etag}, timeout=5)
    assert response.status_code == 200, response.text


def categorized(add_assets):
    add_assets(
        build_asset("UNI", 3, price="7", category="defi", categories=("defi",)),
        build_asset("SOL", 4, price="150", category="layer-1", categories=("layer-1",)),
        # layer-1 is DOGE's second slug: a category filter matches any slug, not only the primary.
        build_asset("DOGE", 5, price="0.2", category="meme", categories=("meme", "layer-1")),
    )


def set_categories(base: str, asset_id: str, slugs: list[str]) -> None:
    etag = requests.get(f"{base}/inventory/assets/{asset_id}", timeout=5).headers["ETag"]
    response = requests.patch(f"{base}/inventory/assets/{asset_id}/categories",
                              json={"categories": slugs, "reason": "reclassified"},
                              headers={**ADMIN, "If-Match": etag}, timeout=5)
    assert response.status_code == 200, response.text


# The handshake headers: without them the route does not match (400) and validation never runs.
UPGRADE = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


def connect(base: str, query: str = ""):
    return websocket.create_connection(base.replace("http", "ws", 1) + "/inventory/stream" + query, timeout=5)


def receive(ws, skip=("checkpoint", "heartbeat")) -> dict:
    while True:
        raw = ws.recv()
        if not raw:  # a control frame (the server's pings) surfaced as an empty read
            continue
        message = json.loads(raw)
        if message["type"] not in skip:
            return message
