"""Quotes and operator-priced assets over DynamoDB Local: the stored price and status at quote time, the real filter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import simplejson

from inventory import create_app
from inventory.domain import AssetStatus
from inventory.services.quotes import DEV_QUOTE_KEY, QuoteSigner
from inventory.store import make_client
from tests.conftest import ADMIN, build_asset

pytestmark = pytest.mark.integration


@pytest.fixture
def local_app(local_config, local_store):
    app = create_app(local_config, dynamodb_client=make_client(local_config))
    app.config["TESTING"] = True
    return app


def body(response):
    return simplejson.loads(response.data, use_decimal=True)


def quote(client, *asset_ids):
    return client.post("/inventory/quotes", json={"items": [{"asset_id": a} for a in asset_ids]})


def set_fields(store, asset_id: str, **changes) -> None:
    asset = store.get(asset_id)
    store.update_catalog(asset_id, changes, asset.version, "test", datetime.now(UTC))


def test_a_quote_uses_the_stored_price_and_status_at_quote_time(local_app, local_store):
    client = local_app.test_client()
    local_store.create(build_asset("BTC", 1, price="64000.10"))
    local_store.create(build_asset("OLD", 2, price="5", age_seconds=301))
    # The worker's catalog snapshot is loaded now and would serve these values for its ttl.
    assert client.get("/inventory/assets/search?q=btc").status_code == 200

    first = body(quote(client, "BTC"))
    # Signed with the dev key: DYNAMODB_ENDPOINT_URL is set and QUOTE_SIGNING_KEY is not.
    assert QuoteSigner([DEV_QUOTE_KEY]).load(first["quote_id"])["items"] == [["BTC", "64000.1", None]]

    set_fields(local_store, "BTC", current_price=Decimal("65000.2"), last_price_update=datetime.now(UTC))
    assert body(quote(client, "BTC"))["items"][0]["price"] == Decimal("65000.2")

    refused = quote(client, "OLD")
    assert refused.status_code == 409 and body(refused)["errors"]["assets"] == {"OLD": "stale_price"}

    set_fields(local_store, "BTC", status=AssetStatus.SUSPENDED)
    refused = quote(client, "BTC")
    assert refused.status_code == 409 and body(refused)["errors"]["assets"] == {"BTC": "suspended"}


def test_operator_priced_and_linked_assets_on_dynamodb_local(local_app, local_store):
    client = local_app.test_client()
    local_store.create(build_asset("BTC", 1, price="64000", age_seconds=3600))  # linked, stale
    items = [
        {"asset_id": "ACME", "symbol": "acme", "name": "Acme", "current_price": "1.0002"},
        {"asset_id": "FAST", "symbol": "fast", "name": "Fast", "current_price": "2", "price_max_age_seconds": 60},
    ]
    results = body(client.post("/inventory/assets/import", headers=ADMIN, json={"items": items}))["results"]
    assert [r["result"] for r in results] == ["created", "created"]
    old = datetime.now(UTC)
    set_fields(local_store, "ACME", last_price_update=old - timedelta(hours=1), price_max_age_seconds=86400)
    set_fields(local_store, "FAST", last_price_update=old - timedelta(seconds=120), price_max_age_seconds=60)

    # The listing's filter runs in DynamoDB: ACME by its own day, FAST past its own minute, BTC past 300 s.
    listing = body(client.get("/inventory/assets"))
    assert [a["asset_id"] for a in listing["data"]] == ["ACME"]
    assert (listing["total_count"], listing["active_count"]) == (3, 1)
    by_status = body(client.get("/inventory/assets?status=ACTIVE"))
    assert [a["asset_id"] for a in by_status["data"]] == ["ACME"]
    assert body(client.get("/inventory/assets/ACME"))["data"]["price_max_age_seconds"] == 86400

    # The same price again renews FAST's age: tradable again, listed again.
    results = body(client.post("/inventory/assets/import", headers=ADMIN, json={"items": items[1:]}))["results"]
    assert results[0]["result"] == "renewed"
    listing = body(client.get("/inventory/assets"))
    assert [a["asset_id"] for a in listing["data"]] == ["ACME", "FAST"]
    assert listing["active_count"] == 2
    assert quote(client, "ACME", "FAST").status_code == 200
