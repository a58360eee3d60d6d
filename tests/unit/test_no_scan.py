"""No GET endpoint ever makes DynamoDB Scan the table: every read is a GetItem or an index Query."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from inventory.api.categories.routes import _SLUG_RULE
from inventory.domain import AssetStatus
from tests.conftest import ADMIN, build_asset

YESTERDAY = (datetime.now(timezone.utc) - timedelta(days=1)).date().isoformat()
# Every GET route of the app -> the requests that exercise it (status expected).
CALLS = {
    "/inventory/assets": [
        ("/inventory/assets", 200),
        ("/inventory/assets?active_only=false", 200),
        ("/inventory/assets?active_only=false&limit=2", 200),
        ("/inventory/assets?status=ACTIVE", 200),
        ("/inventory/assets?status=SUSPENDED&active_only=false", 200),
        ("/inventory/assets?status=INACTIVE", 200),
        ("/inventory/assets?category=layer-1", 200),
        ("/inventory/assets?category=layer-1&status=ACTIVE&active_only=false", 200),
        ("/inventory/assets?category=meme&active_only=false&limit=1", 200),
        ("/inventory/assets?min_price=1&sort=-price,name&limit=2", 200),
        ("/inventory/assets?coingecko_ids=btc-cg,doge-cg,nope", 200),
        ("/inventory/assets?coingecko_ids=susp-cg&status=SUSPENDED&active_only=false", 200),
    ],
    "/inventory/assets/search": [
        ("/inventory/assets/search", 200),
        ("/inventory/assets/search?q=bt", 200),
        ("/inventory/assets/search?q=coin&sort=price&order=desc&limit=2", 200),
        ("/inventory/assets/search?min_price=1&max_price=5000&status=ACTIVE", 200),
        ("/inventory/assets/search?category=layer-1&sort=name", 200),
        ("/inventory/assets/search?category=meme,layer-1&min_market_cap=0&sort=-market_cap,name&limit=1", 200),
        ("/inventory/assets/search?tradable=true&max_price_change_percentage_24h=5&sort=-volume_24h", 200),
    ],
    "/inventory/assets/export": [
        ("/inventory/assets/export?format=csv", 200),
        ("/inventory/assets/export?format=csv&category=meme&sort=-price", 200),
    ],
    "/inventory/market/overview": [("/inventory/market/overview", 200)],
    "/inventory/market/movers": [
        ("/inventory/market/movers", 200),
        ("/inventory/market/movers?window=7d&limit=3&min_market_cap=0&min_volume_24h=0", 200),
    ],
    "/inventory/assets/<asset_id:asset_id>": [
        ("/inventory/assets/BTC", 200),
        ("/inventory/assets/eth", 200),
        ("/inventory/assets/ZZZZ", 404),
    ],
    "/inventory/assets/<asset_id:asset_id>/history": [
        ("/inventory/assets/BTC/history", 200),
        ("/inventory/assets/btc/history?interval=1d&from=2025-12-01", 200),
        ("/inventory/assets/ZZZZ/history", 404),
    ],
    "/inventory/assets/<asset_id:asset_id>/audit": [
        ("/inventory/assets/BTC/audit", 200),
        ("/inventory/assets/ZZZZ/audit", 404),
    ],
    "/inventory/assets/<asset_id:asset_id>/similar": [
        ("/inventory/assets/BTC/similar", 404),  # no recommendations computed: the GetItem still ran
        ("/inventory/assets/ZZZZ/similar", 404),
    ],
    "/inventory/reports/daily": [(f"/inventory/reports/daily?date={YESTERDAY}", 404)],
    "/inventory/categories": [("/inventory/categories", 200)],
    f"/inventory/categories/<{_SLUG_RULE}>": [
        ("/inventory/categories/meme?limit=2", 200),
        ("/inventory/categories/no-such-slug", 404),
    ],
    # Streams never end, so only their refusals are fetched here; the hub reads the
    # catalog with the index Query and the feed with a key Query (tests/unit/test_stream_*.py).
    "/inventory/assets/stream": [("/inventory/assets/stream?asset=BTC", 422)],
    "/inventory/stream": [("/inventory/stream", 400)],
    "/board": [("/board", 200)],
    "/health": [("/health", 200)],
    "/health/detailed": [("/health/detailed", 200)],
    "/openapi.json": [("/openapi.json", 200)],
    "/docs": [("/docs", 200)],
    "/redoc": [("/redoc", 200)],
    "/metrics": [("/metrics", 200)],
    # Verifying a quote is an HMAC, never a store read (503 here: no QUOTE_SIGNING_KEY in this config).
    "/inventory/quotes/<quote_id>": [("/inventory/quotes/not-a-quote", 503)],
}
# Files from the package directory; DynamoDB is not involved.
NOT_CHECKED = {"/static/<path:filename>"}


@pytest.fixture
def catalog(add_assets):
    return add_assets(
        build_asset("BTC", 1, price="97000.12", category="layer-1", name="Bitcoin"),
        build_asset("ETH", 2, price="3500.5", category="layer-1", name="Ethereum"),
        build_asset("DOGE", 3, price="0.2", category="meme", name="Dogecoin"),
        build_asset("SHIB", 4, price="0.00001234", category="meme", name="Shiba Inu"),
        build_asset("OLD", 5, price="2", age_seconds=3600, name="Old coin"),
        build_asset("SUSP", 6, price="3", status=AssetStatus.SUSPENDED, name="Suspended coin"),
        build_asset("GONE", 7, price="4", status=AssetStatus.INACTIVE, name="Gone coin"),
        build_asset("NOPX", None, name="Unpriced coin"),
    )


@pytest.fixture
def dynamodb_operations(moto_client):
    """Names of the DynamoDB API calls made on the app's client while the test runs."""
    operations: list[str] = []

    def record(model, **_):
        operations.append(model.name)

    moto_client.meta.events.register("before-call.dynamodb", record)
    yield operations
    moto_client.meta.events.unregister("before-call.dynamodb", record)


def get_all_pages(client, url: str, status: int) -> None:
    """GET `url` and, for listings, every following page."""
    while True:
        response = client.get(url, headers=ADMIN)  # the audit log needs a token
        assert response.status_code == status, (url, response.get_data(as_text=True))
        cursor = (response.get_json(silent=True) or {}).get("next_cursor") if status == 200 else None
        if not cursor:
            return
        base = url.split("&cursor=")[0]
        url = f"{base}{'&' if '?' in base else '?'}cursor={cursor}"


def test_the_table_covers_every_get_route(app):
    routes = {rule.rule for rule in app.url_map.iter_rules() if "GET" in rule.methods}
    assert routes - NOT_CHECKED == set(CALLS)


def test_no_get_endpoint_scans_the_table(app, client, catalog, dynamodb_operations):
    for calls in CALLS.values():
        for url, status in calls:
            get_all_pages(client, url, status)

    assert "Scan" not in dynamodb_operations
    # The recorder saw the reads, so the absence of Scan means something.
    assert {"Query", "GetItem", "DescribeTable"} <= set(dynamodb_operations)
