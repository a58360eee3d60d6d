"""Quotes: issued from one consistent read, refused per asset with a reason, verified offline and online."""

from __future__ import annotations

import hashlib
import random
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import simplejson
from itsdangerous import BadSignature, URLSafeSerializer

from inventory import create_app
from inventory.domain import AssetStatus
from inventory.services.quotes import DEV_QUOTE_KEY, QUOTE_SALT, QuoteSigner
from tests.conftest import build_asset

KEY = "test-quote-key-0123456789abcdef0123456789"
API_GUIDE = Path(__file__).resolve().parents[2] / "docs" / "api.md"


@pytest.fixture
def config(config):
    return config.replace(QUOTE_SIGNING_KEY=KEY, QUOTE_TTL_SECONDS=30)


@pytest.fixture
def catalog(add_assets):
    return add_assets(
        build_asset("BTC", 1, price="64012.50"),
        build_asset("ETH", 2, price="0.0000002584652"),
        build_asset("OLD", 3, price="5", age_seconds=301),
        build_asset("SUS", 4, price="7", status=AssetStatus.SUSPENDED),
        build_asset("DEL", 5, price="7", status=AssetStatus.INACTIVE),
        build_asset("NOP", 6),
    )


def body(response):
    return simplejson.loads(response.data, use_decimal=True)


def quote(client, *items, **kwargs):
    return client.post("/inventory/quotes", json={"items": list(items)}, **kwargs)


def test_quote_prices_each_asset_exactly_with_amounts_and_expiry(client, catalog):
    response = quote(client, {"asset_id": "btc", "quantity": "0.5"}, {"asset_id": "ETH", "quantity": 3})

    assert response.status_code == 200, response.data
    data = body(response)
    assert [(i["asset_id"], i["price"], i["quantity"], i["amount"]) for i in data["items"]] == [
        ("BTC", Decimal("64012.5"), Decimal("0.5"), Decimal("32006.25")),
        ("ETH", Decimal("2.584652E-7"), Decimal(3), Decimal("7.753956E-7")),
    ]
    assert b"0.0000002584652" in response.data and b"E-7" not in response.data
    assert data["total"] == Decimal("32006.2500007753956")
    as_of, expires = (datetime.fromisoformat(data[k]) for k in ("as_of", "expires_at"))
    assert expires - as_of == timedelta(seconds=30)
    assert abs(as_of - datetime.now(UTC)) < timedelta(seconds=5)
    assert response.headers["Cache-Control"] == "no-store"


def test_quote_without_quantities_has_no_amounts_or_total(client, catalog):
    data = body(quote(client, {"asset_id": "BTC"}))
    assert data["items"][0]["amount"] is None and data["total"] is None


def test_untradable_assets_are_refused_with_409_naming_each_reason(client, catalog):
    response = quote(client, *({"asset_id": a} for a in ("BTC", "OLD", "SUS", "DEL", "NOP")))

    assert response.status_code == 409
    error = body(response)
    assert error["error"] == "quote_refused"
    assert error["errors"]["assets"] == {
        "OLD": "stale_price", "SUS": "suspended", "DEL": "inactive", "NOP": "no_price",
    }
    assert "OLD (stale_price)" in error["message"]


def test_unknown_assets_are_422_naming_them(client, catalog):
    response = quote(client, {"asset_id": "BTC"}, {"asset_id": "NOPE"})
    assert response.status_code == 422
    assert body(response)["error"] == "unknown_assets"
    assert body(response)["errors"]["assets"] == {"NOPE": "unknown_asset"}


def test_quote_reads_the_store_not_the_worker_snapshot(client, catalog, store, app):
    # GIVEN a worker whose catalog snapshot holds BTC as ACTIVE
    assert client.get("/inventory/assets/search?q=btc").status_code == 200
    # WHEN an operator suspends it in the store, and the read model has not applied it yet
    btc = store.get("BTC")
    store.update_catalog("BTC", {"status": AssetStatus.SUSPENDED}, btc.version, "ops", datetime.now(UTC))
    # THEN a quote refuses it at once
    response = quote(client, {"asset_id": "BTC"})
    assert response.status_code == 409 and body(response)["errors"]["assets"] == {"BTC": "suspended"}


@pytest.mark.parametrize(
    "items, where",
    [
        ([], ["items"]),
        ([{"asset_id": f"A{i}"} for i in range(101)], ["items"]),
        ([{"asset_id": "BTC"}, {"asset_id": "btc"}], ["items", "1"]),
        ([{"asset_id": "BTC", "quantity": "0"}], ["items", "0", "quantity"]),
        ([{"asset_id": "BTC", "quantity": "-1"}], ["items", "0", "quantity"]),
        ([{"asset_id": "BTC", "price": "1"}], ["items", "0", "price"]),
        ([{"asset_id": "no/such"}], ["items", "0", "asset_id"]),
    ],
)
def test_bad_quote_requests_are_422_naming_the_item(client, catalog, items, where):
    response = quote(client, *items)
    assert response.status_code == 422
    node = body(response)["errors"]["json"]
    for key in where:
        node = node[key]
    assert node


def test_a_valid_quote_verifies_and_repeats_with_its_etag(client, catalog):
    issued = body(quote(client, {"asset_id": "BTC", "quantity": "2"}))

    response = client.get(f"/inventory/quotes/{issued['quote_id']}")

    assert response.status_code == 200
    checked = body(response)
    assert checked["valid"] is True and checked["reason"] is None
    assert {k: checked[k] for k in issued} == issued
    again = client.get(f"/inventory/quotes/{issued['quote_id']}", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


def test_an_expired_quote_is_200_not_valid_with_the_reason(config, moto_client, catalog):
    app = create_app(config.replace(QUOTE_TTL_SECONDS=0), dynamodb_client=moto_client)
    client = app.test_client()
    issued = body(quote(client, {"asset_id": "BTC"}))

    checked = body(client.get(f"/inventory/quotes/{issued['quote_id']}"))

    assert checked["valid"] is False and checked["reason"] == "expired"
    assert checked["items"] == issued["items"]


def _flip(text: str, at: int) -> str:
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1:]


@pytest.mark.parametrize("tamper", [
    lambda q: _flip(q, 5),  # the payload
    lambda q: _flip(q, len(q) - 3),  # the signature
    lambda q: q[:-10],
    lambda q: "x",
    lambda q: "." + q,
])
def test_a_tampered_quote_is_404_never_500(client, catalog, tamper):
    issued = body(quote(client, {"asset_id": "BTC", "quantity": "1"}))
    response = client.get(f"/inventory/quotes/{tamper(issued['quote_id'])}")
    assert response.status_code == 404
    assert body(response)["error"] == "quote_not_found"


def test_a_quote_signed_with_another_key_is_404(client, catalog):
    forged = QuoteSigner(["another-key"]).sign({"v": 1, "as_of": "x", "exp": "y", "items": []})
    assert client.get(f"/inventory/quotes/{forged}").status_code == 404


def test_key_rotation_old_quotes_still_verify_new_ones_use_the_first_key(config, moto_client, catalog):
    old_app = create_app(config.replace(QUOTE_SIGNING_KEY="old-key-xxxxxxxxxxxxxxxxxxxxxxxxxxx"), dynamodb_client=moto_client)
    old_quote = body(quote(old_app.test_client(), {"asset_id": "BTC"}))["quote_id"]
    rotated = create_app(
        config.replace(QUOTE_SIGNING_KEY="new-key-yyyyyyyyyyyyyyyyyyyyyyyyyyy, old-key-xxxxxxxxxxxxxxxxxxxxxxxxxxx"),
        dynamodb_client=moto_client,
    ).test_client()

    assert body(rotated.get(f"/inventory/quotes/{old_quote}"))["valid"] is True
    new_quote = body(quote(rotated, {"asset_id": "BTC"}))["quote_id"]
    URLSafeSerializer("new-key-yyyyyyyyyyyyyyyyyyyyyyyyyyy", salt=QUOTE_SALT,
                      signer_kwargs={"digest_method": hashlib.sha256}).loads(new_quote)


def test_unknown_query_parameters_on_verify_are_422(client, catalog):
    issued = body(quote(client, {"asset_id": "BTC"}))
    assert client.get(f"/inventory/quotes/{issued['quote_id']}?verbose=1").status_code == 422


def test_without_a_key_quotes_are_off_on_aws_and_use_the_dev_key_locally(config, moto_client, catalog):
    aws = create_app(config.replace(QUOTE_SIGNING_KEY=None), dynamodb_client=moto_client).test_client()
    response = quote(aws, {"asset_id": "BTC"})
    assert response.status_code == 503 and body(response)["error"] == "quotes_unavailable"

    local = create_app(
        config.replace(QUOTE_SIGNING_KEY=None, DYNAMODB_ENDPOINT_URL="http://localhost:1"), dynamodb_client=moto_client
    ).test_client()
    issued = body(quote(local, {"asset_id": "BTC"}))
    assert QuoteSigner([DEV_QUOTE_KEY]).load(issued["quote_id"])["items"][0][0] == "BTC"


def test_a_typical_100_asset_quote_id_fits_in_a_url(client, add_assets):
    # 100 assets, distinct 14-digit prices and 8-decimal quantities: under gunicorn's 4,094-byte request line.
    add_assets(*(build_asset(f"X{i:03d}", i + 1, price=f"{i * 7919 + 1}.{i * 104729:08d}") for i in range(100)))
    items = [{"asset_id": f"X{i:03d}", "quantity": f"{i * 13 + 1}.{i * 15485863 % 10**8:08d}"} for i in range(100)]
    quote_id = body(quote(client, *items))["quote_id"]
    assert len(quote_id) + len("GET /inventory/quotes/ HTTP/1.1") < 4094, len(quote_id)
    assert body(client.get(f"/inventory/quotes/{quote_id}"))["valid"] is True


def test_quotes_need_a_read_token_only_when_reads_do(config, moto_client, catalog):
    app = create_app(config.replace(REQUIRE_AUTH_FOR_READS=True), dynamodb_client=moto_client)
    assert quote(app.test_client(), {"asset_id": "BTC"}).status_code == 401


def test_quote_metrics_count_issued_and_refused_by_reason(client, catalog):
    quote(client, {"asset_id": "BTC"})
    quote(client, {"asset_id": "OLD"}, {"asset_id": "SUS"})
    quote(client, {"asset_id": "NOPE"})
    text = client.get("/metrics").get_data(as_text=True)
    assert re.search(r"^inventory_quotes_issued_total 1\.0$", text, re.MULTILINE)
    for reason in ("stale_price", "suspended", "unknown_asset"):
        assert re.search(rf'^inventory_quotes_refused_total\{{reason="{reason}"\}} 1\.0$', text, re.MULTILINE), reason


def _guide_example() -> str:
    section = API_GUIDE.read_text().split("### Verifying a quote in the order service", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_the_api_guide_verification_example_runs_against_a_real_quote(client, catalog):
    issued = body(quote(client, {"asset_id": "BTC", "quantity": "0.5"}))
    code = _guide_example()
    assert len([line for line in code.splitlines() if line.strip()]) <= 10

    namespace = {}
    exec(compile(code, "docs/api.md", "exec"), namespace)  # noqa: S102 - our own API guide
    verify = namespace["verify_quote"]

    prices = verify(issued["quote_id"], KEY)
    assert prices == {"BTC": (Decimal("64012.50"), Decimal("0.5"))}
    with pytest.raises(BadSignature):
        verify(_flip(issued["quote_id"], 5), KEY)
    with pytest.raises(BadSignature):
        verify(issued["quote_id"], "wrong-key")


def test_a_quote_id_too_long_for_a_url_verifies_by_post(client, add_assets):
    # 100 assets with random 20-digit prices and 40-character quantities: an id well over 4,000 characters.
    digits = random.Random(14)

    def number(whole: int, fraction: int) -> str:
        return f"{digits.randrange(10 ** (whole - 1), 10 ** whole)}.{digits.randrange(10 ** fraction):0{fraction}d}"

    add_assets(*(build_asset(f"X{i:03d}", i + 1, price=number(8, 12)) for i in range(100)))
    items = [{"asset_id": f"X{i:03d}", "quantity": number(20, 19)} for i in range(100)]
    quote_id = body(quote(client, *items))["quote_id"]
    assert len(quote_id) > 4096

    checked = body(client.post("/inventory/quotes/verify", json={"quote_id": quote_id}))
    assert checked["valid"] is True and len(checked["items"]) == 100
    assert client.get(f"/inventory/quotes/{quote_id}").status_code == 414
    tampered = client.post("/inventory/quotes/verify", json={"quote_id": _flip(quote_id, 9)})
    assert tampered.status_code == 404 and body(tampered)["error"] == "quote_not_found"
