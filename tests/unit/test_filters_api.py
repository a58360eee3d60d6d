"""Filters, multi-key sort and snapshot-pinned cursors on list and search, over a moto table."""

from datetime import datetime, timezone
from decimal import Decimal

import pytest
import simplejson

from inventory.api.extension import services
from inventory.domain import AssetStatus
from tests.conftest import build_asset


def body(response):
    assert response.status_code == 200, response.get_data(as_text=True)
    return simplejson.loads(response.get_data(), use_decimal=True)


def ids(response):
    return [a["asset_id"] for a in body(response)["data"]]


@pytest.fixture
def market(add_assets):
    d = Decimal
    return add_assets(
        build_asset("BTC", 1, price="97000.12", category="layer-1", name="Bitcoin", market_cap=d("1900000000000"),
                    volume_24h=d("40000000000"), price_change_percentage_24h=d("2.5"),
                    price_change_percentage_7d=d("-1.25"), price_change_percentage_30d=d("10")),
        build_asset("ETH", 2, price="3500.5", category="layer-1", name="Ethereum", market_cap=d("420000000000"),
                    volume_24h=d("20000000000"), price_change_percentage_24h=d("-0.5"),
                    price_change_percentage_7d=d("3"), categories=("layer-1", "defi")),
        build_asset("USDT", 3, price="1.0001", category="stablecoin", name="Tether", market_cap=d("120000000000"),
                    volume_24h=d("60000000000"), price_change_percentage_24h=d("0")),
        build_asset("UNI", 4, price="9.5", category="defi", name="Uniswap", market_cap=d("420000000000"),
                    volume_24h=d("300000000"), price_change_percentage_24h=d("7.75")),
        build_asset("SHIB", 5, price="0.00001234", category="meme", name="Shiba Inu", market_cap=d("7000000000"),
                    volume_24h=d("200000000"), price_change_percentage_24h=d("-4")),
        build_asset("SUSP", 6, price="3", status=AssetStatus.SUSPENDED, name="Suspended", market_cap=d("5000000"),
                    price_change_percentage_24h=d("1")),
    )


@pytest.mark.parametrize("path", ["/inventory/assets?active_only=false&", "/inventory/assets/search?"])
@pytest.mark.parametrize("query, expected", [
    ("min_market_cap=400000000000", ["BTC", "ETH", "UNI"]),
    ("min_market_cap=400000000000&max_market_cap=420000000000", ["ETH", "UNI"]),
    ("min_volume_24h=20000000000&max_price=3500.5", ["ETH", "USDT"]),
    ("min_rank=2&max_rank=4", ["ETH", "USDT", "UNI"]),
    ("min_price_change_percentage_24h=-0.5&max_price_change_percentage_24h=2.5", ["BTC", "ETH", "USDT", "SUSP"]),
    ("max_price_change_percentage_7d=0", ["BTC"]),
    ("min_price_change_percentage_30d=10", ["BTC"]),
    ("category=defi", ["ETH", "UNI"]),
    ("category=meme,stablecoin", ["USDT", "SHIB"]),
    ("status=SUSPENDED", ["SUSP"]),
    ("q=us&min_market_cap=1", ["USDT", "SUSP"]),
    ("category=layer-1,defi&min_price_change_percentage_24h=0&sort=-price_change_percentage_24h", ["UNI", "BTC"]),
    ("sort=-market_cap,name", ["BTC", "ETH", "UNI", "USDT", "SHIB", "SUSP"]),
    ("sort=-market_cap,-name", ["BTC", "UNI", "ETH", "USDT", "SHIB", "SUSP"]),
    ("sort=market_cap&order=desc", ["BTC", "ETH", "UNI", "USDT", "SHIB", "SUSP"]),
    ("sort=volume_24h,rank", ["SUSP", "SHIB", "UNI", "ETH", "BTC", "USDT"][1:] + ["SUSP"]),
])
def test_filters_compose_on_list_and_search(client, market, path, query, expected):
    assert ids(client.get(path + query)) == expected


def test_list_with_filters_lists_only_tradable_by_default_and_counts_matches(client, market):
    payload = body(client.get("/inventory/assets?min_market_cap=1"))
    assert [a["asset_id"] for a in payload["data"]] == ["BTC", "ETH", "USDT", "UNI", "SHIB"]
    assert (payload["total_count"], payload["active_count"]) == (6, 5)
    assert ids(client.get("/inventory/assets/search?tradable=true&status=SUSPENDED")) == []


@pytest.mark.parametrize("path, tradable_by_default", [
    ("/inventory/assets?", True), ("/inventory/assets/search?", False),
])
def test_tradable_is_the_filter_everywhere_and_active_only_its_alias(client, market, path, tradable_by_default):
    everything, tradable = ["BTC", "ETH", "USDT", "UNI", "SHIB", "SUSP"], ["BTC", "ETH", "USDT", "UNI", "SHIB"]
    assert ids(client.get(path)) == (tradable if tradable_by_default else everything)
    for name in ("tradable", "active_only"):
        assert ids(client.get(f"{path}{name}=true")) == tradable
        assert ids(client.get(f"{path}{name}=false")) == everything
    assert ids(client.get(f"{path}tradable=true&active_only=true")) == tradable
    conflict = client.get(f"{path}tradable=true&active_only=false")
    assert conflict.status_code == 422 and "active_only" in conflict.get_json()["errors"]["query"]


def test_export_takes_either_name_of_the_tradable_filter(client, market):
    for name in ("tradable", "active_only"):
        rows = client.get(f"/inventory/assets/export?format=csv&{name}=true").get_data(as_text=True).splitlines()
        assert len(rows) == 1 + 5 and not any(row.startswith("SUSP,") for row in rows)


@pytest.mark.parametrize("query, field", [
    ("min_market_cap=5&max_market_cap=1", "min_market_cap"),
    ("min_rank=9&max_rank=2", "min_rank"),
    ("min_price_change_percentage_7d=3&max_price_change_percentage_7d=-3", "min_price_change_percentage_7d"),
    ("sort=-market_cap,bogus", "sort"),
    ("sort=name,-name", "sort"),
    ("sort=", "sort"),
    ("min_volume_24h=lots", "min_volume_24h"),
    ("min_price=NaN", "min_price"),
    ("min_market_cap=-1", "min_market_cap"),
    ("max_rank=1.5", "max_rank"),
    ("category=Not_A_Slug", "category"),
    ("tradeable=true", "tradeable"),
])
@pytest.mark.parametrize("path", ["/inventory/assets", "/inventory/assets/search"])
def test_bad_filters_get_422_naming_the_field(client, market, path, query, field):
    response = client.get(f"{path}?{query}")
    assert response.status_code == 422
    payload = response.get_json()
    assert payload["error"] == "validation_failed"
    assert field in payload["errors"]["query"], payload


def move_prices(store, app, caps: dict):
    """A refresh: new market caps (feed entries every read then applies)."""
    now = datetime.now(timezone.utc)
    for asset_id, cap in caps.items():
        store.update_fields(asset_id, {"market_cap": Decimal(cap), "last_price_update": now}, now)


def walk(client, url, between=lambda page: None):
    seen, cursor, page = [], None, 0
    while True:
        payload = body(client.get(url + (f"&cursor={cursor}" if cursor else "")))
        seen += [a["asset_id"] for a in payload["data"]]
        cursor = payload["next_cursor"]
        if cursor is None:
            return seen
        between(page)
        page += 1


@pytest.mark.parametrize("url", [
    "/inventory/assets/search?sort=-market_cap,name&limit=3",
    "/inventory/assets?active_only=false&sort=-market_cap&limit=2",
])
def test_cursor_walk_neither_repeats_nor_skips_while_prices_move(app, client, store, add_assets, url):
    # GIVEN 12 assets by market cap
    add_assets(*[build_asset(f"C{n:02}", n + 1, price="1", market_cap=Decimal(1000 - n)) for n in range(12)])
    before = walk(client, url)
    # WHEN a refresh reverses the caps after every page
    flips = iter(range(100))

    def refresh(page):
        sign = 1 if next(flips) % 2 else -1
        move_prices(store, app, {f"C{n:02}": 1000 + sign * n for n in range(12)})

    during = walk(client, url, refresh)
    # THEN the walk saw every asset once, in the order it started in
    assert during == before and len(set(during)) == 12


def test_cursor_whose_walk_order_is_gone_resumes_by_key(app, client, store, add_assets):
    add_assets(*[build_asset(f"C{n:02}", n + 1, price="1", market_cap=Decimal(1000 - n)) for n in range(6)])
    first = body(client.get("/inventory/assets/search?sort=-market_cap&limit=3"))
    with app.app_context():
        services().catalog.walks._orders.clear()  # expired, or another worker served the first page
    move_prices(store, app, {"C00": 1})  # C00 drops to last
    rest = body(client.get(f"/inventory/assets/search?sort=-market_cap&limit=3&cursor={first['next_cursor']}"))
    assert [a["asset_id"] for a in rest["data"]] == ["C03", "C04", "C05"]


def test_cursor_of_other_filters_or_tampered_is_400(client, market):
    cursor = body(client.get("/inventory/assets/search?sort=-market_cap&limit=2"))["next_cursor"]
    assert client.get(f"/inventory/assets/search?sort=market_cap&limit=2&cursor={cursor}").status_code == 400
    assert client.get(f"/inventory/assets/search?sort=-market_cap&limit=2&cursor={cursor[:-2]}xx").status_code == 400
    assert client.get(f"/inventory/assets?sort=-market_cap&limit=2&cursor={cursor}").status_code == 400
