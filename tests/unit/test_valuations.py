"""Valuations: exact values from one catalog snapshot, unknown assets listed, bad quantities 422 by index."""

from __future__ import annotations

import re
from decimal import Context, Decimal, localcontext

import pytest
import simplejson

from inventory.domain import AssetStatus
from inventory.services.quotes import parse_quantity
from tests.conftest import build_asset


@pytest.fixture
def catalog(add_assets):
    return add_assets(
        build_asset("BTC", 1, price="64012.50", price_change_24h=Decimal("-120.25"),
                    price_change_percentage_24h=Decimal("-0.1875")),
        build_asset("ETH", 2, price="0.0000002584652"),
        build_asset("OLD", 3, price="5", age_seconds=3600),
        build_asset("SUS", 4, price="7", status=AssetStatus.SUSPENDED),
        build_asset("NOP", 5),
    )


def body(response):
    return simplejson.loads(response.data, use_decimal=True)


def value(client, *holdings):
    return client.post("/inventory/valuations", json={"holdings": list(holdings)})


def test_valuation_is_exact_per_holding_and_in_total(client, catalog):
    response = value(
        client,
        {"asset_id": "BTC", "quantity": "0.123456789012345678901234567890123"},
        {"asset_id": "eth", "quantity": 3},
        {"asset_id": "OLD", "quantity": Decimal("2.5")},
    )

    assert response.status_code == 200, response.data
    data = body(response)
    btc, eth, old = data["holdings"]
    with localcontext(Context(prec=100)):
        assert btc["value"] == Decimal("64012.50") * Decimal("0.123456789012345678901234567890123")
        assert btc["value_change_24h"] == Decimal("-120.25") * Decimal("0.123456789012345678901234567890123")
    assert len(btc["value"].as_tuple().digits) > 28  # not rounded to the default context
    assert btc["price_change_percentage_24h"] == Decimal("-0.1875")
    assert (btc["is_active"], btc["price_stale"], btc["status"]) == (True, False, "ACTIVE")
    assert eth["value"] == Decimal("7.753956E-7") and b"0.0000007753956" in response.data
    assert (old["price_stale"], old["is_active"], old["value"]) == (True, False, Decimal("12.5"))
    with localcontext(Context(prec=100)):
        assert data["total"] == btc["value"] + eth["value"] + old["value"]
    assert data["total_change_24h"] == btc["value_change_24h"]
    assert data["stale_count"] == 1 and data["unknown"] == [] and data["unpriced"] == []
    assert "as_of" in data and response.headers["ETag"]


def test_unknown_and_unpriced_assets_are_listed_not_fatal(client, catalog):
    data = body(value(client, {"asset_id": "NOPE", "quantity": 1}, {"asset_id": "NOP", "quantity": 1},
                      {"asset_id": "SUS", "quantity": "2"}))
    assert data["unknown"] == ["NOPE"]
    assert data["unpriced"] == ["NOP"]
    assert [h["asset_id"] for h in data["holdings"]] == ["NOP", "SUS"]
    sus = data["holdings"][1]
    assert (sus["status"], sus["is_active"], sus["value"]) == ("SUSPENDED", False, Decimal(14))
    assert data["total"] == Decimal(14)


def test_valuations_read_the_model_not_the_store_per_request(client, catalog, app):
    calls = []
    value(client, {"asset_id": "BTC", "quantity": 1})  # loads the snapshot
    from inventory.api.extension import services

    with app.app_context():
        service = services().catalog
    service.stores.client.meta.events.register("before-call.dynamodb", lambda **kw: calls.append(kw["model"].name))
    value(client, *({"asset_id": a, "quantity": 1} for a in ("BTC", "ETH", "OLD")))
    # The model's catch-up with the feed (STREAM_POLL_SECONDS=0 in tests: every read polls) and nothing else.
    assert set(calls) == {"Query"} and len(calls) == 1
    client.get("/inventory/assets/BTC/history")  # the hook does see this worker's store calls
    assert "Query" in calls[1:]


@pytest.mark.parametrize(
    "quantity, message",
    [
        ("-1", "negative"),
        (-1, "negative"),
        (Decimal("-0.5"), "negative"),
        ("abc", "decimal number"),
        ("1e5", "decimal number"),
        ("", "decimal number"),
        ("1" * 41, "40 characters"),
        ("0." + "1" * 39, "40 characters"),
        (True, "decimal string or a number"),
        (None, "null"),
        ([1], "decimal string or a number"),
    ],
)
def test_bad_quantities_are_422_naming_the_item_index(client, catalog, quantity, message):
    response = value(client, {"asset_id": "BTC", "quantity": 1}, {"asset_id": "ETH", "quantity": quantity})
    assert response.status_code == 422
    errors = body(response)["errors"]["json"]["holdings"]
    assert list(errors) == ["1"]
    assert message in " ".join(errors["1"]["quantity"]).lower() or message in str(errors["1"]).lower()


@pytest.mark.parametrize("raw", [b"1e999999", b"1e-999999", b"1e40", b"NaN", b"Infinity", b"-0.0e1", b"-0"])
def test_exponent_abuse_in_json_numbers_is_422_not_a_hang(client, catalog, raw):
    # -0 too: refused as the string "-0" is, one rule for both spellings.
    payload = b'{"holdings": [{"asset_id": "BTC", "quantity": ' + raw + b"}]}"
    response = client.post("/inventory/valuations", data=payload, content_type="application/json")
    assert response.status_code in (400, 422), response.data
    if response.status_code == 422:
        assert "0" in body(response)["errors"]["json"]["holdings"]


def test_duplicate_assets_are_422_naming_the_repeat(client, catalog):
    response = value(client, {"asset_id": "BTC", "quantity": 1}, {"asset_id": "ETH", "quantity": 1},
                     {"asset_id": " btc ", "quantity": 2})
    assert response.status_code == 422
    assert "Duplicate of item 0" in body(response)["errors"]["json"]["holdings"]["2"][0]


def test_holdings_are_limited_to_1000(client, catalog):
    holdings = [{"asset_id": f"A{i}", "quantity": 1} for i in range(1001)]
    assert value(client, *holdings).status_code == 422
    data = body(value(client, *holdings[:1000]))
    assert len(data["unknown"]) == 1000


def test_quantity_parser_keeps_every_digit():
    assert parse_quantity("00012.3400") == Decimal("12.34")
    assert str(parse_quantity(Decimal("1E+3"))) == "1E+3" and parse_quantity(Decimal("1E+3")) == 1000
    assert parse_quantity(7) == Decimal(7)


def test_valuation_histogram_counts_holdings(client, catalog):
    value(client, *({"asset_id": a, "quantity": 1} for a in ("BTC", "ETH", "OLD")))
    text = client.get("/metrics").get_data(as_text=True)
    assert re.search(r"^inventory_valuation_holdings_sum 3\.0$", text, re.MULTILINE)
    assert re.search(r'^inventory_valuation_holdings_bucket\{le="5\.0"\} 1\.0$', text, re.MULTILINE)
