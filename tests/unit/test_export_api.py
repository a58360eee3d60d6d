"""The CSV export: negotiation, filters, exact Decimals, streaming, Content-Disposition, ETag."""

import csv
import io
from decimal import Decimal

import pytest

from inventory.domain import AssetStatus
from tests.conftest import build_asset


@pytest.fixture
def market(add_assets):
    return add_assets(
        build_asset("BTC", 1, price="97000.12", category="layer-1", name="Bitcoin",
                    market_cap=Decimal("1900000000000.123456789012"), price_change_percentage_24h=Decimal("-0.0000001")),
        build_asset("SHIB", 2, price="0.00000002584652", category="meme", name="Shiba, \"Inu\""),
        build_asset("EVIL", 3, price="1", name="=HYPERLINK(\"x\")", status=AssetStatus.SUSPENDED),
        build_asset("NEW", None, name="Not priced"),
    )


def rows(response):
    assert response.status_code == 200, response.get_data(as_text=True)
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_export_is_csv_with_header_exact_decimals_and_a_filename(client, market):
    response = client.get("/inventory/assets/export", headers={"Accept": "text/csv"})
    assert response.mimetype == "text/csv"
    assert response.is_streamed
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="inventory-assets-') and disposition.endswith('.csv"')
    table = rows(response)
    assert [r["asset_id"] for r in table] == ["BTC", "SHIB", "EVIL", "NEW"]
    btc, shib, evil, new = table
    assert btc["market_cap"] == "1900000000000.123456789012"
    assert btc["price_change_percentage_24h"] == "-0.0000001"
    assert shib["current_price"] == "0.00000002584652" and shib["name"] == 'Shiba, "Inu"'
    assert evil["name"] == "'=HYPERLINK(\"x\")"  # never a formula in a spreadsheet
    assert (btc["is_active"], evil["is_active"], evil["status"]) == ("true", "false", "SUSPENDED")
    assert new["current_price"] == "" and new["category"] == "uncategorized"


def test_export_takes_every_filter(client, market):
    assert [r["asset_id"] for r in rows(client.get("/inventory/assets/export?format=csv&category=meme,layer-1"
                                                    "&sort=-price"))] == ["BTC", "SHIB"]
    assert [r["asset_id"] for r in rows(client.get("/inventory/assets/export?format=csv&tradable=true"
                                                    "&max_price=1"))] == ["SHIB"]
    assert [r["asset_id"] for r in rows(client.get("/inventory/assets/export?format=csv&q=evil"))] == ["EVIL"]


def test_export_without_csv_asked_is_406_in_the_error_shape(client, market):
    response = client.get("/inventory/assets/export", headers={"Accept": "application/json"})
    assert response.status_code == 406 and response.get_json()["error"] == "not_acceptable"


@pytest.mark.parametrize("query, field", [
    ("format=xlsx", "format"), ("limit=5", "limit"), ("min_price=2&max_price=1", "min_price"), ("sort=nope", "sort"),
])
def test_export_bad_parameters_are_422(client, market, query, field):
    response = client.get(f"/inventory/assets/export?{query}", headers={"Accept": "text/csv"})
    assert response.status_code == 422 and field in response.get_json()["errors"]["query"]


def test_export_etag_answers_304_until_the_filters_change(client, market):
    first = client.get("/inventory/assets/export?format=csv")
    etag = first.headers["ETag"]
    assert client.get("/inventory/assets/export?format=csv", headers={"If-None-Match": etag}).status_code == 304
    other = client.get("/inventory/assets/export?format=csv&status=ACTIVE", headers={"If-None-Match": etag})
    assert other.status_code == 200
