"""The earlier service's asset bodies: field names and JSON types pinned, one number format on every endpoint."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal

import pytest
import simplejson

from inventory.api.bodies import plain_number
from inventory.domain import AssetStatus
from tests.conftest import ADMIN, build_asset

NUMBER, STRING, BOOL, INT, NULL = "number", "string", "boolean", "integer", "null"

# What clients of the earlier service parse (issue 14): name -> JSON types allowed.
LIST_ITEM_FIELDS = {
    "asset_id": {STRING},
    "name": {STRING},
    "description": {STRING, NULL},
    "category": {STRING},
    "price_usd": {NUMBER, NULL},
    "is_active": {BOOL},
    "symbol": {STRING},
    "image": {STRING, NULL},
    "market_cap_rank": {INT, NULL},
    "price_change_percentage_24h": {NUMBER, NULL},
    "market_cap": {NUMBER, NULL},
    "total_volume_24h": {NUMBER, NULL},
}
DETAIL_FIELDS = {
    **LIST_ITEM_FIELDS,
    "availability_status": {STRING},
    "price_change_24h": {NUMBER, NULL},
    "price_change_percentage_7d": {NUMBER, NULL},
    "price_change_percentage_30d": {NUMBER, NULL},
    "high_24h": {NUMBER, NULL},
    "low_24h": {NUMBER, NULL},
    "circulating_supply": {NUMBER, NULL},
    "total_supply": {NUMBER, NULL},
    "max_supply": {NUMBER, NULL},
    "ath": {NUMBER, NULL},
    "ath_change_percentage": {NUMBER, NULL},
    "ath_date": {STRING, NULL},
    "atl": {NUMBER, NULL},
    "atl_change_percentage": {NUMBER, NULL},
    "atl_date": {STRING, NULL},
    "last_updated": {STRING, NULL},
    # The original frontend's "7d trend" reads sparkline_7d.price (a list of numbers).
    "sparkline_7d": {"object"},
}
# Every figure a fully known asset carries, each a different value so a swapped
# alias shows.
FULL = {
    "image": "https://coin-images.coingecko.com/coins/images/1/large/bitcoin.png",
    "market_cap": Decimal("1923456789012"),
    "volume_24h": Decimal("35123456789.12"),
    "high_24h": Decimal("98000.5"),
    "low_24h": Decimal("95000.25"),
    "price_change_24h": Decimal("-812.34"),
    "price_change_percentage_24h": Decimal("-0.83"),
    "price_change_percentage_7d": Decimal("4.1"),
    "price_change_percentage_30d": Decimal("12.7"),
    "circulating_supply": Decimal("19800000"),
    "total_supply": Decimal("21000000"),
    "max_supply": Decimal("21000001"),
    "ath": Decimal("108000"),
    "ath_change_percentage": Decimal("-9.9"),
    "ath_date": datetime(2025, 1, 20, 9, 11, 54, tzinfo=timezone.utc),
    "atl": Decimal("67.81"),
    "atl_change_percentage": Decimal("143000.5"),
    "atl_date": datetime(2013, 7, 6, tzinfo=timezone.utc),
}


def json_type(value) -> str:
    if value is None:
        return NULL
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        return INT
    if isinstance(value, Decimal):
        return NUMBER
    return {str: STRING, list: "array", dict: "object"}[type(value)]


def with_integers(types: set[str]) -> set[str]:
    # A JSON number without a fraction (a market cap) parses as an int; it is still a number.
    return types | {INT} if NUMBER in types else types


def body(response):
    assert response.status_code == 200, response.get_data(as_text=True)
    return simplejson.loads(response.get_data(), use_decimal=True)


def etag(client, asset_id):
    return client.get(f"/inventory/assets/{asset_id}").headers["ETag"]


def patch_status(client, asset_id, status):
    return client.patch(
        f"/inventory/assets/{asset_id}/status",
        json={"status": status},
        headers={**ADMIN, "If-Match": etag(client, asset_id)},
    )


@pytest.fixture
def catalog(add_assets):
    return add_assets(
        build_asset("BTC", 1, price="97000.12", category="layer-1", name="Bitcoin", **FULL),
        build_asset("BARE", None, name="Nothing known"),
    )


def bodies(client) -> dict[str, list[dict]]:
    """Asset bodies from every endpoint that writes one, by endpoint."""
    return {
        "list": body(client.get("/inventory/assets?active_only=false"))["data"],
        "search": body(client.get("/inventory/assets/search"))["data"],
        "batch-get": body(client.post("/inventory/assets/batch-get", json={"ids": ["BTC", "BARE"]}))["data"],
        "detail": [body(client.get(f"/inventory/assets/{i}"))["data"] for i in ("BTC", "BARE")],
        "patch": [body(patch_status(client, i, "SUSPENDED"))["data"] for i in ("BTC", "BARE")],
    }


def test_every_asset_body_carries_the_earlier_fields_with_their_types(client, catalog):
    for endpoint, items in bodies(client).items():
        expected = DETAIL_FIELDS if endpoint in ("detail", "patch") else LIST_ITEM_FIELDS
        assert len(items) == 2, endpoint
        for item in items:
            for name, types in expected.items():
                assert name in item, (endpoint, name)
                assert json_type(item[name]) in with_integers(types), (endpoint, item["asset_id"], name, item[name])


def test_a_fully_known_asset_has_no_null_among_the_earlier_fields(client, catalog):
    btc = body(client.get("/inventory/assets/BTC"))["data"]
    assert [name for name in DETAIL_FIELDS if btc[name] is None] == ["description"]  # no source has one
    assert btc["price_usd"] == btc["current_price"] == Decimal("97000.12")
    assert btc["total_volume_24h"] == btc["volume_24h"] == FULL["volume_24h"]
    assert btc["last_updated"] == btc["last_price_update"]
    assert (btc["ath_change_percentage"], btc["atl_change_percentage"]) == (Decimal("-9.9"), Decimal("143000.5"))
    assert (btc["category"], btc["availability_status"], btc["is_active"]) == ("layer-1", "available", True)


def test_the_sparkline_has_the_shape_the_original_frontend_reads(client, catalog):
    for asset_id in ("BTC", "BARE"):
        sparkline = body(client.get(f"/inventory/assets/{asset_id}"))["data"]["sparkline_7d"]
        assert list(sparkline) == ["price"] and isinstance(sparkline["price"], list)
        assert all(json_type(p) in with_integers({NUMBER}) for p in sparkline["price"])


def test_category_is_a_string_even_when_unknown(client, catalog):
    bare = body(client.get("/inventory/assets/BARE"))["data"]
    assert bare["category"] == "uncategorized"
    assert (bare["price_usd"], bare["image"], bare["availability_status"]) == (None, None, "unavailable")


def test_openapi_declares_the_earlier_fields_with_the_same_types(client):
    schemas = client.get("/openapi.json").get_json()["components"]["schemas"]
    for schema_name, expected in (("Asset", LIST_ITEM_FIELDS), ("AssetDetail", DETAIL_FIELDS)):
        properties = schemas[schema_name]["properties"]
        for name, types in expected.items():
            declared = properties[name].get("type") or ("object" if "allOf" in properties[name] else None)
            declared = set(declared) if isinstance(declared, list) else {declared}
            if properties[name].get("nullable"):
                declared.add(NULL)
            assert declared == types, (schema_name, name, declared)


# -- one number format ----------------------------------------------------------

@pytest.mark.parametrize(
    "stored, written",
    [
        ("0.0000002584652", "0.0000002584652"),  # str() gives 2.584652E-7
        ("0.00001234", "0.00001234"),
        ("388.35561730", "388.3556173"),  # as the source sends it; DynamoDB keeps 388.3556173
        ("388.3556173", "388.3556173"),
        ("1.5E+12", "1500000000000"),
        ("123456789012345678901234567890.123456789", "123456789012345678901234567890.123456789"),
        ("100.00", "100"),
        ("-0.00", "0"),
        ("0", "0"),
    ],
)
def test_plain_number_keeps_every_digit_and_no_trailing_zero(stored, written):
    assert plain_number(Decimal(stored)) == written


@pytest.mark.parametrize(
    "field, stored, written",
    [
        ("current_price", "0.0000002584652", "0.0000002584652"),
        ("current_price", "388.35561730", "388.3556173"),
        ("current_price", "123456789012.5000", "123456789012.5"),
        ("market_cap", "1.5E+12", "1500000000000"),
    ],
)
def test_every_endpoint_writes_a_decimal_the_same_way(client, add_assets, field, stored, written):
    if field == "current_price":
        add_assets(build_asset("X", 1, price=stored, category="layer-1"))
    else:
        add_assets(build_asset("X", 1, price="1", category="layer-1", **{field: Decimal(stored)}))
    raw = {
        "GET": client.get("/inventory/assets/X"),
        "list": client.get("/inventory/assets"),
        "search": client.get("/inventory/assets/search?q=x"),
        "batch-get": client.post("/inventory/assets/batch-get", json={"ids": ["X"]}),
        "PATCH": patch_status(client, "X", "SUSPENDED"),
    }
    for endpoint, response in raw.items():
        text = response.get_data(as_text=True)
        assert response.status_code == 200, (endpoint, text)
        assert f'"{field}":{written},' in text, (endpoint, text)
        assert not re.search(r"\d[eE][-+]?\d", text), (endpoint, text)


def test_the_json_layout_is_the_same_on_every_endpoint(app, client, catalog):
    responses = [
        client.get("/inventory/assets/BTC"),  # rendered by the response cache
        client.get("/inventory/assets"),
        client.post("/inventory/assets/batch-get", json={"ids": ["BTC"]}),  # by flask-smorest's jsonify
        client.get("/inventory/assets/NOPE"),  # an error body
        client.get("/health"),
    ]
    for response in responses:
        text = response.get_data(as_text=True)
        # The bytes our dumps gives for what was parsed: compact separators,
        # sorted keys, plain numbers, no indent and no trailing newline.
        assert text == app.json.dumps(simplejson.loads(text, use_decimal=True)), text
        assert ", " not in text.replace('", "', "") and not text.endswith("\n")


# -- lookup by CoinGecko id -------------------------------------------------------

def linked(asset_id, rank, price, coingecko_id, **kwargs):
    return build_asset(asset_id, rank, price=price, **kwargs).replace(coingecko_id=coingecko_id)


def test_coingecko_ids_return_those_assets_in_the_order_asked(client, add_assets):
    add_assets(
        linked("BTC", 1, "97000", "bitcoin"),
        linked("ETH", 2, "3500", "ethereum"),
        linked("SOL", 3, "200", "solana"),
    )
    payload = body(client.get("/inventory/assets?coingecko_ids=ethereum,bitcoin,nope,bitcoin"))
    assert [a["asset_id"] for a in payload["data"]] == ["ETH", "BTC"]
    assert (payload["total_count"], payload["active_count"], payload["next_cursor"]) == (2, 2, None)


def test_coingecko_ids_are_filtered_like_a_listing(client, add_assets):
    add_assets(
        linked("BTC", 1, "97000", "bitcoin"),
        linked("SUSP", 2, "3", "suspended-coin", status=AssetStatus.SUSPENDED),
    )
    url = "/inventory/assets?coingecko_ids=bitcoin,suspended-coin"
    assert [a["asset_id"] for a in body(client.get(url))["data"]] == ["BTC"]
    everything = body(client.get(url + "&active_only=false"))
    assert [(a["asset_id"], a["is_active"]) for a in everything["data"]] == [("BTC", True), ("SUSP", False)]
    assert (everything["total_count"], everything["active_count"]) == (2, 1)
    suspended = body(client.get(url + "&active_only=false&status=SUSPENDED"))
    assert [a["asset_id"] for a in suspended["data"]] == ["SUSP"]


@pytest.mark.parametrize(
    "query",
    [
        "coingecko_ids=",
        "coingecko_ids=Bitcoin",
        "coingecko_ids=" + ",".join(f"c{i}" for i in range(101)),
        "coingecko_ids=bitcoin&cursor=abc",
    ],
)
def test_bad_coingecko_ids_get_422(client, query):
    response = client.get(f"/inventory/assets?{query}")
    assert response.status_code == 422
    assert response.get_json()["errors"]["query"]


def test_a_lookup_after_a_write_reads_the_new_status(client, add_assets):
    add_assets(linked("BTC", 1, "97000", "bitcoin"))
    assert body(client.get("/inventory/assets?coingecko_ids=bitcoin"))["data"][0]["status"] == "ACTIVE"
    assert patch_status(client, "BTC", "SUSPENDED").status_code == 200
    after = body(client.get("/inventory/assets?coingecko_ids=bitcoin&active_only=false"))["data"]
    assert after[0]["status"] == "SUSPENDED"  # the writer applied its own write: no stale read
