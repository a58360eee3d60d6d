"""Operator-created assets: linked ones follow the refresher's bound, operator-priced ones their own, renewed by import."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from inventory.domain import Asset
from inventory.domain.search import SearchIndex, SearchQuery
from inventory.services.tokens import hash_token
from tests.conftest import build_asset

ADMIN = {"Authorization": "Bearer inv_admin"}


@pytest.fixture
def config(config):
    tokens = [{"name": "admin", "scopes": ["assets:admin"], "hash": hash_token("inv_admin")}]
    return config.replace(API_TOKENS=json.dumps(tokens), QUOTE_SIGNING_KEY="operator-assets-test-key")


def imported(client, *items):
    response = client.post("/inventory/assets/import", headers=ADMIN, json={"items": list(items)})
    assert response.status_code == 200, response.data
    return [r["result"] for r in response.get_json()["results"]]


def age(store, asset_id: str, seconds: float) -> None:
    """Move the asset's price time back, as if it had been priced `seconds` ago (both fields, as imports write them)."""
    asset = store.get(asset_id)
    changes = {"last_price_update": datetime.now(UTC) - timedelta(seconds=seconds),
               "price_max_age_seconds": asset.price_max_age_seconds}
    store.update_catalog(asset_id, changes, asset.version, "test", datetime.now(UTC))


def detail(client, asset_id):
    return client.get(f"/inventory/assets/{asset_id}").get_json()["data"]


@pytest.fixture
def catalog(add_assets):
    # A linked asset, priced by the refresher an hour ago: stale under the default 300 s bound.
    return add_assets(build_asset("BTC", 1, price="64000", age_seconds=3600))


def test_an_operator_priced_asset_keeps_its_own_bound_everywhere(client, store, catalog, app):
    assert imported(client, {"asset_id": "ACME", "symbol": "acme", "name": "Acme", "current_price": "1.0002"}) == ["created"]
    age(store, "ACME", 3600)

    acme, btc = detail(client, "ACME"), detail(client, "BTC")
    assert (acme["price_max_age_seconds"], acme["is_active"], acme["price_stale"]) == (86400, True, False)
    assert (btc["price_max_age_seconds"], btc["is_active"], btc["price_stale"]) == (None, False, True)
    listing = client.get("/inventory/assets").get_json()
    assert [a["asset_id"] for a in listing["data"]] == ["ACME"]
    assert (listing["total_count"], listing["active_count"]) == (2, 1)
    search = client.get("/inventory/assets/search?q=a").get_json()
    assert search["active_count"] == 1
    quote = client.post("/inventory/quotes", json={"items": [{"asset_id": "ACME"}]})
    assert quote.status_code == 200 and Decimal(str(quote.get_json()["items"][0]["price"])) == Decimal("1.0002")


def test_a_short_own_bound_is_stricter_than_the_default(client, store, catalog, app):
    imported(client, {"asset_id": "FAST", "symbol": "fast", "name": "Fast", "current_price": "2",
                      "price_max_age_seconds": 60})
    age(store, "FAST", 120)  # within the default 300 s, past its own 60 s

    fast = detail(client, "FAST")
    assert (fast["price_max_age_seconds"], fast["is_active"], fast["price_stale"]) == (60, False, True)
    assert client.get("/inventory/assets").get_json()["data"] == []
    refused = client.post("/inventory/quotes", json={"items": [{"asset_id": "FAST"}]})
    assert refused.status_code == 409 and refused.get_json()["errors"]["assets"] == {"FAST": "stale_price"}


def test_reimporting_the_same_price_renews_its_age(client, store, catalog, app):
    item = {"asset_id": "ACME", "symbol": "acme", "name": "Acme", "current_price": "1.5", "price_max_age_seconds": 600}
    imported(client, item)
    age(store, "ACME", 3600)
    assert detail(client, "ACME")["is_active"] is False

    assert imported(client, item) == ["renewed"]

    acme = detail(client, "ACME")
    assert acme["is_active"] is True and acme["current_price"] == 1.5
    renewed_at = datetime.fromisoformat(acme["last_price_update"])
    assert datetime.now(UTC) - renewed_at < timedelta(seconds=10)
    assert client.get("/inventory/assets").get_json()["active_count"] == 1
    # A new bound alone is an update, not a renewal.
    assert imported(client, {**item, "price_max_age_seconds": 900}) == ["updated"]
    assert detail(client, "ACME")["price_max_age_seconds"] == 900


def test_a_linked_asset_is_not_renewed_by_an_import(client, catalog):
    item = {"asset_id": "BTC", "symbol": "btc", "name": "BTC coin", "current_price": "64000"}
    forced = client.post("/inventory/assets/import", headers=ADMIN, json={"items": [item], "overwrite_linked": True})
    assert forced.get_json()["results"][0]["result"] == "unchanged"
    assert detail(client, "BTC")["is_active"] is False  # the refresher owns its price and its age


def test_counts_place_an_own_bound_asset_by_its_deadline():
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    operator = Asset("ACME", "acme", "Acme", current_price=Decimal(1), last_price_update=now - timedelta(hours=1),
                     price_max_age_seconds=86400)
    short = Asset("FAST", "fast", "Fast", current_price=Decimal(1), last_price_update=now - timedelta(seconds=120),
                  price_max_age_seconds=60)
    linked = build_asset("BTC", 1, price="1", age_seconds=120, now=now)
    catalog = SearchIndex([operator, short, linked])

    def counts(at):
        result = catalog.search(SearchQuery(), 1, None, at, 300)
        return result.total, result.active

    assert counts(now) == (3, 2)
    assert counts(now + timedelta(hours=22)) == (3, 1)
    assert counts(now + timedelta(hours=24)) == (3, 0)
