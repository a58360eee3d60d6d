"""Market overview and movers over a moto table: exact sums against the list, breadth, movers' thresholds."""

from decimal import Decimal

import pytest
import simplejson

from inventory.domain import AssetStatus
from tests.conftest import build_asset

D = Decimal


def body(response):
    assert response.status_code == 200, response.get_data(as_text=True)
    return simplejson.loads(response.get_data(), use_decimal=True)


@pytest.fixture
def market(add_assets):
    # Caps with many digits: float sums would drift, Decimal sums must not.
    return add_assets(
        build_asset("BTC", 1, price="97000.12", market_cap=D("1900000000000.123456789012"),
                    volume_24h=D("40000000000.1"), price_change_percentage_24h=D("2.5"),
                    price_change_percentage_7d=D("-1.25")),
        build_asset("ETH", 2, price="3500.5", market_cap=D("420000000000.000000000001"),
                    volume_24h=D("20000000000"), price_change_percentage_24h=D("-0.5"),
                    price_change_percentage_7d=D("3")),
        build_asset("USDT", 3, price="1.0001", market_cap=D("120000000000"), volume_24h=D("60000000000"),
                    price_change_percentage_24h=D("0")),
        build_asset("UNI", 4, price="9.5", market_cap=D("4200000000"), volume_24h=D("300000000"),
                    price_change_percentage_24h=D("7.75"), price_change_percentage_7d=D("20")),
        build_asset("DUST", 5, price="0.0001", market_cap=D("50000"), volume_24h=D("10"),
                    price_change_percentage_24h=D("900")),
        build_asset("OLD", 6, price="2", age_seconds=3600, market_cap=D("70000000"), volume_24h=D("5000000"),
                    price_change_percentage_24h=D("50")),
        build_asset("SUSP", 7, price="3", status=AssetStatus.SUSPENDED, market_cap=D("5000000"),
                    price_change_percentage_24h=D("-30")),
        build_asset("NEW", None, name="Not priced yet"),
    )


def all_rows(client):
    rows, cursor = [], None
    while True:
        payload = body(client.get("/inventory/assets?active_only=false&limit=3" + (f"&cursor={cursor}" if cursor else "")))
        rows += payload["data"]
        cursor = payload["next_cursor"]
        if cursor is None:
            return rows


def test_overview_totals_equal_the_sums_of_the_listed_rows_exactly(client, market):
    overview = body(client.get("/inventory/market/overview"))["data"]
    rows = all_rows(client)
    assert overview["asset_count"] == len(rows) == 8
    assert overview["total_market_cap"] == sum(D(r["market_cap"]) for r in rows if r["market_cap"] is not None)
    assert overview["total_market_cap"] == D("2444275050000.123456789013")
    assert overview["total_volume_24h"] == sum(D(r["volume_24h"]) for r in rows if r["volume_24h"] is not None)
    assert overview["tradable_count"] == sum(r["is_active"] for r in rows) == 5
    assert overview["stale_count"] == sum(r["price_stale"] for r in rows) == 1
    assert overview["suspended_count"] == sum(r["status"] == "SUSPENDED" for r in rows) == 1
    assert overview["inactive_count"] == 0


def test_overview_dominance_breadth_and_median(client, market):
    overview = body(client.get("/inventory/market/overview"))["data"]
    assert overview["btc_dominance"] == D("77.7327")  # 1900000000000.12... / 2444275050000.12... * 100
    assert overview["eth_dominance"] == D("17.1830")
    assert overview["top10_dominance"] == D("100.0000")  # 7 assets with a cap: the top 10 hold everything
    assert (overview["advancers"], overview["decliners"], overview["unchanged"]) == (4, 2, 1)
    assert overview["median_change_24h"] == D("2.5")  # -30, -0.5, 0, 2.5, 7.75, 50, 900
    assert overview["as_of"] is not None


def test_overview_has_an_etag_and_answers_304(client, market):
    first = client.get("/inventory/market/overview")
    again = client.get("/inventory/market/overview", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304


def test_movers_leave_out_dust_stale_and_suspended_by_default(client, market):
    payload = body(client.get("/inventory/market/movers"))["data"]
    assert [m["asset_id"] for m in payload["gainers"]] == ["UNI", "BTC"]
    assert [m["asset_id"] for m in payload["losers"]] == ["ETH"]
    assert payload["gainers"][0]["change"] == D("7.75")
    assert (payload["min_market_cap"], payload["min_volume_24h"]) == (10_000_000, 1_000_000)


def test_movers_thresholds_window_and_limit_are_overridable(client, market):
    payload = body(client.get("/inventory/market/movers?min_market_cap=0&min_volume_24h=0&limit=1"))["data"]
    assert [m["asset_id"] for m in payload["gainers"]] == ["DUST"]
    week = body(client.get("/inventory/market/movers?window=7d"))["data"]
    assert [m["asset_id"] for m in week["gainers"]] == ["UNI", "ETH"]
    assert [m["asset_id"] for m in week["losers"]] == ["BTC"]


@pytest.mark.parametrize("query, field", [
    ("window=1h", "window"), ("limit=0", "limit"), ("limit=101", "limit"), ("min_market_cap=-1", "min_market_cap"),
    ("min_volume_24h=lots", "min_volume_24h"), ("windows=24h", "windows"),
])
def test_movers_bad_parameters_get_422_naming_them(client, market, query, field):
    response = client.get(f"/inventory/market/movers?{query}")
    assert response.status_code == 422
    assert field in response.get_json()["errors"]["query"]


def test_overview_takes_no_parameters(client, market):
    assert client.get("/inventory/market/overview?x=1").status_code == 422
