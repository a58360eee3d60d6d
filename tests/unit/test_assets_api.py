"""The asset read endpoints over a moto table."""

from decimal import Decimal

import pytest
import simplejson

from inventory.api.converters import INVALID_ASSET_ID
from inventory.domain import AssetStatus
from tests.conftest import build_asset


def body(response):
    return simplejson.loads(response.get_data(), use_decimal=True)


@pytest.fixture
def catalog(add_assets):
    return add_assets(
        build_asset("BTC", 1, price="97000.12", category="layer-1", name="Bitcoin"),
        build_asset("ETH", 2, price="3500.5", category="layer-1", name="Ethereum"),
        build_asset("USDT", 3, price="1.0001", category="stablecoin", name="Tether"),
        build_asset("SHIB", 4, price="0.00001234", category="meme", name="Shiba Inu"),
        build_asset("OLD", 5, price="2", age_seconds=3600, name="Old price"),
        build_asset("SUSP", 6, price="3", status=AssetStatus.SUSPENDED, name="Suspended"),
        build_asset("NOPRICE", 7, name="No price yet"),
        build_asset("UNRANKED", None, price="4", name="Unranked"),
    )


@pytest.mark.parametrize("raw", ["BTC", "btc", "%20btc%20", "Btc"])
def test_get_asset_is_trimmed_and_case_insensitive(client, catalog, raw):
    response = client.get(f"/inventory/assets/{raw}")
    assert response.status_code == 200
    assert body(response)["data"]["asset_id"] == "BTC"


@pytest.mark.parametrize("raw", ["%20%20%20", "BTC!", "BTC@123", "BTC-USD", "ABCDEFGHIJK", "A" * 100])
@pytest.mark.parametrize("route", ["/inventory/assets/{}", "/inventory/assets/{}/history",
                                   "/inventory/assets/{}/similar", "/inventory/assets/{}/audit"])
def test_a_malformed_asset_id_is_422_saying_what_an_id_is(client, catalog, raw, route):
    # The original's contract (and its integration suite): a malformed id is a 422, not a 404.
    response = client.get(route.format(raw))
    assert response.status_code == 422
    payload = body(response)
    assert payload["error"] == "validation_failed" and "1 to 10 letters or digits" in payload["message"]
    assert payload["errors"] == {"path": {"asset_id": [INVALID_ASSET_ID]}}
    assert payload["request_id"] == response.headers["X-Request-ID"]
    assert raw.replace("%20", " ") not in payload["message"]  # the input is not echoed back


@pytest.mark.parametrize("path", ["/inventory/assets/B%2FC", "/inventory/assets/BTC/nothing-here", "/inventory/nope"])
def test_a_path_that_is_no_asset_route_is_404(client, catalog, path):
    response = client.get(path)
    assert response.status_code == 404 and body(response)["error"] == "not_found"


def test_a_wrong_method_on_a_fixed_path_stays_405_with_allow(client):
    response = client.get("/inventory/assets/batch-get")
    assert response.status_code == 405 and "POST" in response.headers["Allow"]
    assert body(response)["error"] == "method_not_allowed"


def test_get_asset_unknown_id_returns_404(client, catalog):
    response = client.get("/inventory/assets/ZZZZ")
    assert response.status_code == 404
    assert body(response)["code"] == 404


def test_tiny_price_is_returned_exactly(client, catalog):
    raw = client.get("/inventory/assets/SHIB").get_data(as_text=True)
    assert '"current_price": 0.00001234' in raw or '"current_price":0.00001234' in raw
    data = body(client.get("/inventory/assets/SHIB"))["data"]
    assert data["current_price"] == Decimal("0.00001234")
    assert data["price_usd"] == data["current_price"]


@pytest.mark.parametrize(
    "asset_id, is_active, stale, availability",
    [
        ("BTC", True, False, "available"),
        ("OLD", False, True, "unavailable"),
        ("SUSP", False, False, "unavailable"),
        ("NOPRICE", False, False, "unavailable"),
    ],
)
def test_detail_derives_tradability(client, catalog, asset_id, is_active, stale, availability):
    data = body(client.get(f"/inventory/assets/{asset_id}"))["data"]
    assert (data["is_active"], data["price_stale"], data["availability_status"]) == (
        is_active, stale, availability,
    )


def test_list_defaults_to_tradable_assets_in_rank_order(client, catalog):
    payload = body(client.get("/inventory/assets"))
    assert [a["asset_id"] for a in payload["data"]] == ["BTC", "ETH", "USDT", "SHIB", "UNRANKED"]
    assert payload["total_count"] == 8
    assert payload["active_count"] == 5
    assert payload["next_cursor"] is None


def test_list_all_puts_unranked_last(client, catalog):
    payload = body(client.get("/inventory/assets?active_only=false"))
    assert [a["asset_id"] for a in payload["data"]][-1] == "UNRANKED"
    assert len(payload["data"]) == 8


def test_list_filters_count_matching_assets(client, catalog):
    payload = body(client.get("/inventory/assets?category=layer-1&active_only=false"))
    assert [a["asset_id"] for a in payload["data"]] == ["BTC", "ETH"]
    assert (payload["total_count"], payload["active_count"]) == (2, 2)
    payload = body(client.get("/inventory/assets?status=SUSPENDED&active_only=false"))
    assert [a["asset_id"] for a in payload["data"]] == ["SUSP"]
    assert (payload["total_count"], payload["active_count"]) == (1, 0)


def test_list_walks_every_page_without_gaps_or_duplicates(client, catalog):
    def walk():
        seen, cursor = [], None
        while True:
            url = "/inventory/assets?limit=3&active_only=false" + (f"&cursor={cursor}" if cursor else "")
            payload = body(client.get(url))
            seen += [a["asset_id"] for a in payload["data"]]
            cursor = payload["next_cursor"]
            if cursor is None:
                return seen

    first = walk()
    assert first == ["BTC", "ETH", "USDT", "SHIB", "OLD", "SUSP", "NOPRICE", "UNRANKED"]
    assert walk() == first


def test_exactly_full_last_page_has_no_next_cursor(client, add_assets):
    add_assets(*(build_asset(f"A{i}", i, price="1") for i in range(1, 5)))
    payload = body(client.get("/inventory/assets?limit=2"))
    second = body(client.get(f"/inventory/assets?limit=2&cursor={payload['next_cursor']}"))
    assert [a["asset_id"] for a in second["data"]] == ["A3", "A4"]
    assert second["next_cursor"] is None


def test_tampered_or_foreign_cursor_is_400(client, catalog):
    cursor = body(client.get("/inventory/assets?limit=2"))["next_cursor"]
    tampered = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    assert client.get(f"/inventory/assets?limit=2&cursor={tampered}").status_code == 400
    # A cursor from one filter set is refused for another.
    response = client.get(f"/inventory/assets?limit=2&category=meme&cursor={cursor}")
    assert response.status_code == 400
    assert body(response)["code"] == 400
    assert client.get("/inventory/assets?cursor=garbage").status_code == 400


@pytest.mark.parametrize("query", ["limit=0", "limit=251", "limit=abc", "status=active", "category=BAD!", "active_only=maybe"])
def test_list_rejects_bad_parameters_with_422(client, catalog, query):
    response = client.get(f"/inventory/assets?{query}")
    assert response.status_code == 422
    assert body(response)["errors"]


@pytest.mark.parametrize(
    "url, name",
    [
        ("/inventory/assets?limt=5", "limt"),
        ("/inventory/assets/search?query=btc", "query"),
        ("/inventory/assets/BTC/history?intervl=1h", "intervl"),
    ],
)
def test_unknown_query_parameters_get_422_naming_them(client, catalog, url, name):
    response = client.get(url)
    assert response.status_code == 422
    assert body(response)["errors"]["query"] == {name: ["Not a query parameter of this endpoint."]}


def test_conditional_headers_are_not_query_parameters(client, catalog):
    etag = client.get("/inventory/assets?limit=2").headers["ETag"]
    assert client.get("/inventory/assets?limit=2", headers={"If-None-Match": etag}).status_code == 304


def test_search_matches_prefix_and_name_with_exact_ticker_first(client, add_assets):
    add_assets(
        build_asset("USDC", 7, price="1", name="USD Coin"),
        build_asset("USDT", 3, price="1", name="Tether"),
        build_asset("SUSD", 2, price="1", name="Synth usd"),
        build_asset("US", 50, price="1", name="Unrelated"),
    )
    payload = body(client.get("/inventory/assets/search?q=us"))
    assert [a["asset_id"] for a in payload["data"]] == ["US", "SUSD", "USDT", "USDC"]
    assert payload["total_count"] == 4


def test_search_is_unicode_safe(client, add_assets):
    add_assets(build_asset("ZURI", 1, price="1", name="Zürich Straße Token"))
    assert body(client.get("/inventory/assets/search?q=STRASSE"))["total_count"] == 1
    assert body(client.get("/inventory/assets/search?q=zürich"))["total_count"] == 1


def test_search_sorts_and_pages_by_price(client, catalog):
    def walk(order):
        seen, cursor = [], None
        while True:
            url = f"/inventory/assets/search?sort=price&order={order}&limit=2" + (f"&cursor={cursor}" if cursor else "")
            payload = body(client.get(url))
            seen += [a["asset_id"] for a in payload["data"]]
            if not (cursor := payload["next_cursor"]):
                return seen

    descending = walk("desc")
    assert descending[:4] == ["BTC", "ETH", "UNRANKED", "SUSP"]
    assert descending[-1] == "NOPRICE"  # unpriced last in either order
    assert walk("asc")[0] == "SHIB"


def test_search_price_range_and_validation(client, catalog):
    payload = body(client.get("/inventory/assets/search?min_price=1&max_price=3"))
    assert sorted(a["asset_id"] for a in payload["data"]) == ["OLD", "SUSP", "USDT"]
    assert client.get("/inventory/assets/search?min_price=5&max_price=1").status_code == 422
    assert client.get("/inventory/assets/search?min_price=NaN").status_code == 422
    assert client.get("/inventory/assets/search?sort=bogus").status_code == 422
