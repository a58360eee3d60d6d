"""The category endpoints and the operator's categories PATCH, against moto (and the emulator for the job)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

import pytest

from inventory.domain import AssetStatus
from inventory.domain.taxonomy import SLUGS, UNCATEGORIZED
from inventory.jobs.categories import refresh_categories
from inventory.source.client import CircuitBreaker, CoinGeckoClient
from inventory.store import CategoryStore
from tests.conftest import ADMIN, build_asset
from tests.fakes.coingecko import FakeCoinGecko, generate_catalog


def money(**figures):
    return {name: Decimal(value) for name, value in figures.items()}


@pytest.fixture
def catalog(add_assets):
    return add_assets(
        build_asset("BTC", 1, price="97000.12", category="layer-1", name="Bitcoin",
                    **money(market_cap="1930000000000.10", volume_24h="41000000000.5", price_change_percentage_24h="1.25")),
        build_asset("USDT", 2, price="1.0001", category="stablecoin", categories=("stablecoin", "defi"),
                    **money(market_cap="184000000000.333", volume_24h="90000000000", price_change_percentage_24h="-0.01")),
        build_asset("USDE", 3, price="0.9998", category="stablecoin", categories=("stablecoin", "defi"),
                    **money(market_cap="12000000000.5", volume_24h="100000000.25", price_change_percentage_24h="0.02")),
        build_asset("AAVE", 4, price="180.5", category="defi", age_seconds=3600,
                    **money(market_cap="2700000000", volume_24h="300000000")),
        build_asset("SUSP", 5, price="3", category="defi", status=AssetStatus.SUSPENDED,
                    **money(market_cap="5.5", price_change_percentage_24h="-50")),
        build_asset("BARE", None, name="Unknown coin"),
    )


def get(client, url, status=200, **headers):
    response = client.get(url, headers=headers)
    assert response.status_code == status, response.get_data(as_text=True)
    return response


def test_the_list_has_every_category_and_its_sums_equal_the_asset_rows(client, catalog):
    rows = get(client, "/inventory/assets?active_only=false&limit=250").get_json()["data"]
    listed = {c["slug"]: c for c in get(client, "/inventory/categories").get_json()["data"]}
    assert list(listed) == list(SLUGS)
    for slug, summary in listed.items():
        members = [r for r in rows if slug in r["categories"]]
        assert summary["asset_count"] == len(members), slug
        assert summary["tradable_count"] == sum(r["is_active"] for r in members), slug
        assert summary["market_cap"] == sum((r["market_cap"] for r in members if r["market_cap"] is not None),
                                            Decimal(0)), slug
        assert summary["volume_24h"] == sum((r["volume_24h"] for r in members if r["volume_24h"] is not None),
                                            Decimal(0)), slug
        weighted = [(r["market_cap"], r["price_change_percentage_24h"]) for r in members
                    if r["market_cap"] and r["price_change_percentage_24h"] is not None]
        expected = None
        if weighted:
            with localcontext() as ctx:
                ctx.prec = 60
                expected = (sum(m * c for m, c in weighted) / sum(m for m, _ in weighted)).quantize(
                    Decimal("1e-8"), ROUND_HALF_EVEN)
        assert summary["market_cap_weighted_change_24h"] == expected, slug
    defi = listed["defi"]
    assert (defi["asset_count"], defi["tradable_count"]) == (4, 2)  # AAVE stale, SUSP suspended
    assert defi["market_cap"] == Decimal("198700000006.333")
    assert listed[UNCATEGORIZED]["asset_count"] == 1


def test_one_category_has_its_top_assets_by_market_cap(client, catalog):
    body = get(client, "/inventory/categories/defi?limit=2").get_json()["data"]
    assert [a["asset_id"] for a in body["top_assets"]] == ["USDT", "USDE"]
    assert body["top_assets"][0]["categories"] == ["stablecoin", "defi"]
    assert body["asset_count"] == 4
    assert len(get(client, "/inventory/categories/defi").get_json()["data"]["top_assets"]) == 4


@pytest.mark.parametrize(
    ("url", "status", "error"),
    [
        ("/inventory/categories/layer-3", 404, "not_found"),
        ("/inventory/categories?limit=3", 422, "validation_failed"),
        ("/inventory/categories/defi?limit=0", 422, "validation_failed"),
        ("/inventory/categories/defi?limt=2", 422, "validation_failed"),
    ],
)
def test_bad_requests_get_the_one_error_shape(client, catalog, url, status, error):
    assert get(client, url, status).get_json()["error"] == error


def test_reads_are_cached_with_etags(client, catalog):
    first = get(client, "/inventory/categories")
    assert get(client, "/inventory/categories", 304, **{"If-None-Match": first.headers["ETag"]}).data == b""
    detail = get(client, "/inventory/categories/meme")
    assert detail.headers["ETag"] != first.headers["ETag"]


def test_the_openapi_document_describes_the_endpoints(client):
    spec = get(client, "/openapi.json").get_json()
    path = spec["paths"]["/inventory/categories/{slug}"]
    detail = path["get"]
    slug = next(p for p in path["parameters"] if p["name"] == "slug")
    assert slug["schema"]["enum"] == list(SLUGS) and slug["description"] and slug["example"] == "stablecoin"
    assert "404" in detail["responses"]
    limit = next(p for p in detail["parameters"] if p["name"] == "limit")
    assert limit["description"] and "example" in limit["schema"]
    summary = spec["components"]["schemas"]["CategorySummary"]["properties"]
    assert all(prop.get("description") for prop in summary.values())
    assert "/inventory/assets/{asset_id}/categories" in spec["paths"]


# -- the operator's write ---------------------------------------------------------------


def etag(client, asset_id):
    return get(client, f"/inventory/assets/{asset_id}").headers["ETag"]


def patch(client, asset_id, body, **headers):
    return client.patch(f"/inventory/assets/{asset_id}/categories", json=body, headers={**ADMIN, **headers})


def test_an_operator_sets_categories_with_if_match_and_it_is_audited(client, catalog):
    before = etag(client, "BTC")
    response = patch(client, "BTC", {"categories": ["other", "layer-1", "other"], "reason": "desk request"},
                     **{"If-Match": before})
    assert response.status_code == 200, response.get_data(as_text=True)
    data = response.get_json()["data"]
    assert (data["category"], data["categories"]) == ("other", ["other", "layer-1"])
    assert response.headers["ETag"] != before
    # The list's category filter matches any of an asset's categories.
    assert get(client, "/inventory/assets?category=other").get_json()["total_count"] == 1
    listed = get(client, "/inventory/assets?category=layer-1&active_only=false").get_json()["data"]
    assert "BTC" in [a["asset_id"] for a in listed]
    entry = get(client, "/inventory/assets/BTC/audit", **ADMIN).get_json()["data"][0]
    assert entry["actor"] == "test-admin" and entry["from_status"] == entry["to_status"] == "ACTIVE"
    assert entry["reason"] == "categories layer-1 -> other,layer-1: desk request"
    # The same ETag again is stale.
    stale = patch(client, "BTC", {"categories": ["meme"]}, **{"If-Match": before})
    assert (stale.status_code, stale.get_json()["error"]) == (412, "precondition_failed")


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        ({"categories": ["meme"]}, {}, 428),
        ({"categories": ["not-a-slug"]}, None, 422),
        ({"categories": []}, None, 422),
        ({"categories": [UNCATEGORIZED]}, None, 422),
        ({"categories": ["meme"], "extra": 1}, None, 422),
    ],
)
def test_bad_category_writes_are_refused(client, catalog, body, headers, status):
    headers = {"If-Match": etag(client, "BTC")} if headers is None else headers
    assert patch(client, "BTC", body, **headers).status_code == status


def test_a_write_needs_a_token(client, catalog):
    response = client.patch("/inventory/assets/BTC/categories", json={"categories": ["meme"]},
                            headers={"If-Match": etag(client, "BTC")})
    assert response.status_code == 401


def test_the_membership_job_never_overwrites_what_an_operator_set(client, catalog, store, moto_client, config):
    # GIVEN BTC linked to the emulator's bitcoin (layer-1 there) and set to `other` by an operator
    store.update_fields("BTC", {"coingecko_id": "bitcoin"}, datetime.now(timezone.utc))
    assert patch(client, "BTC", {"categories": ["other"]}, **{"If-Match": etag(client, "BTC")}).status_code == 200
    with FakeCoinGecko(generate_catalog(14)) as cg:
        source = CoinGeckoClient(cg.url, retries=0, calls_per_minute=0, breaker=CircuitBreaker(100, 60))
        # WHEN the membership job runs
        report = refresh_categories(source, CategoryStore(moto_client, config.DYNAMODB_TABLE_NAME),
                                    datetime.now(timezone.utc), max_pages=2)
    # THEN BTC keeps the operator's choice
    assert report.error is None and report.operator_set == 1
    assert store.get("BTC").categories == ("other",)
    assert get(client, "/inventory/assets/BTC").get_json()["data"]["categories"] == ["other"]


def test_an_import_that_changes_the_category_replaces_the_list(client, catalog):
    def import_(category):
        item = {"asset_id": "INTX", "symbol": "intx", "name": "Internal token", "category": category}
        response = client.post("/inventory/assets/import", json={"items": [item]}, headers=ADMIN)
        assert response.status_code == 200, response.get_data(as_text=True)
        return get(client, "/inventory/assets/INTX").get_json()["data"]

    assert import_("defi")["categories"] == ["defi"]
    assert patch(client, "INTX", {"categories": ["meme", "defi"]}, **{"If-Match": etag(client, "INTX")}).status_code == 200
    changed = import_("gaming")
    assert (changed["category"], changed["categories"]) == ("gaming", ["gaming"])


def test_an_operator_hands_categories_back_and_the_job_sets_them_again(client, catalog, store, moto_client, config):
    store.update_fields("BTC", {"coingecko_id": "bitcoin"}, datetime.now(timezone.utc))
    assert patch(client, "BTC", {"categories": ["other"]}, **{"If-Match": etag(client, "BTC")}).status_code == 200
    released = client.delete("/inventory/assets/BTC/categories?reason=source+knows",
                             headers={**ADMIN, "If-Match": etag(client, "BTC")})
    assert released.status_code == 200, released.get_data(as_text=True)
    assert released.get_json()["data"]["categories"] == ["other"]  # until the next run
    entry = get(client, "/inventory/assets/BTC/audit", **ADMIN).get_json()["data"][0]
    assert entry["reason"] == "categories handed to the source: source knows"
    with FakeCoinGecko(generate_catalog(14)) as cg:
        source = CoinGeckoClient(cg.url, retries=0, calls_per_minute=0, breaker=CircuitBreaker(100, 60))
        report = refresh_categories(source, CategoryStore(moto_client, config.DYNAMODB_TABLE_NAME),
                                    datetime.now(timezone.utc), max_pages=2)
    assert report.operator_set == 0
    assert store.get("BTC").categories == ("layer-1",)


def test_handing_back_needs_if_match_and_knows_its_parameters(client, catalog):
    assert client.delete("/inventory/assets/BTC/categories", headers=ADMIN).status_code == 428
    bad = client.delete("/inventory/assets/BTC/categories?why=x", headers={**ADMIN, "If-Match": etag(client, "BTC")})
    assert bad.status_code == 422
