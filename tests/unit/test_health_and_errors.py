"""Health endpoints, the one error shape, X-Request-ID handling and Config.from_env."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import simplejson
from botocore.exceptions import EndpointConnectionError

from inventory.config import Config
from inventory.domain import AssetStatus, RefreshState, utcnow
from tests.conftest import build_asset

GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")
ERROR_KEYS = {"code", "status", "error", "message", "request_id"}


def body(response):
    return simplejson.loads(response.get_data(), use_decimal=True)


def fail_every_call(client):
    """Make every DynamoDB call on this client fail as if the endpoint were unreachable."""

    def fail(**_):
        raise EndpointConnectionError(endpoint_url="x")

    client.meta.events.register("before-call.dynamodb", fail)


@pytest.fixture
def config(config, fake_coingecko):
    # The health report pings the price source: here the local fake, which answers.
    return config.replace(COINGECKO_API_URL=fake_coingecko.url)


@pytest.fixture
def catalog(add_assets):
    # Only BTC and ETH (fresh) and SUSP (an operator's choice) are among the watched
    # top assets; OLD and NOPRICE have no rank, so they are counted but not watched.
    return add_assets(
        build_asset("BTC", 1, price="97000", category="layer-1"),
        build_asset("ETH", 2, price="3500", category="layer-1"),
        build_asset("OLD", None, price="2", age_seconds=3600),
        build_asset("SUSP", 4, price="3", status=AssetStatus.SUSPENDED),
        build_asset("NOPRICE", None),
    )


# -- health ----------------------------------------------------------------------


def test_health_is_200(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert body(response) == {"status": "ok"}


def test_health_stays_up_when_the_store_is_down(client, moto_client):
    fail_every_call(moto_client)
    assert client.get("/health").status_code == 200


def test_detailed_health_is_degraded_before_any_price_refresh(client, catalog):
    response = client.get("/health/detailed")
    assert response.status_code == 200
    report = body(response)
    assert report["status"] == "degraded"
    assert report["reasons"] == ["no successful price refresh yet"]
    assert report["store"]["reachable"] is True and report["store"]["table_status"] == "ACTIVE"
    assert report["prices"]["last_success_at"] is None


def test_detailed_health_is_healthy_after_a_recent_refresh(client, refresh_state, catalog, config):
    last = utcnow() - timedelta(seconds=30)
    refresh_state.put(RefreshState(last_success_at=last, last_attempt_at=last, breaker_state="closed"))
    response = client.get("/health/detailed")
    assert response.status_code == 200
    report = body(response)
    assert (report["status"], report["reasons"]) == ("healthy", [])
    now = utcnow()
    tradable = sum(a.is_tradable(now, config.PRICE_MAX_AGE_SECONDS) for a in catalog)
    assert report["assets"] == {"total": len(catalog), "tradable": tradable}
    assert 30 <= report["prices"]["age_seconds"] < 60
    assert report["prices"]["max_age_seconds"] == config.PRICE_MAX_AGE_SECONDS
    assert report["prices"]["breaker_state"] == "closed"


@pytest.mark.parametrize(
    "age, last_error, reason",
    [
        (3600, None, "prices are stale"),
        (30, "CoinGecko answered 429", "last price refresh failed: CoinGecko answered 429"),
    ],
)
def test_detailed_health_is_degraded_with_a_reason(client, refresh_state, catalog, age, last_error, reason):
    last = utcnow() - timedelta(seconds=age)
    refresh_state.put(RefreshState(last_success_at=last, last_attempt_at=utcnow(), last_error=last_error))
    response = client.get("/health/detailed")
    assert response.status_code == 200
    report = body(response)
    assert report["status"] == "degraded"
    assert len(report["reasons"]) == 1 and report["reasons"][0].startswith(reason)


def test_detailed_health_is_503_when_the_store_is_down(client, moto_client, catalog):
    fail_every_call(moto_client)
    response = client.get("/health/detailed")
    assert response.status_code == 503
    report = body(response)
    assert report["status"] == "unhealthy"
    assert report["store"]["reachable"] is False
    text = response.get_data(as_text=True)
    for leak in ("botocore", "Endpoint", "Traceback"):
        assert leak not in text


# -- the error shape ---------------------------------------------------------------


def test_post_on_assets_is_405_in_error_shape(client):
    response = client.post("/inventory/assets", json={"asset_id": "BTC"})
    assert response.status_code == 405
    payload = body(response)
    assert set(payload) == ERROR_KEYS
    assert (payload["code"], payload["status"]) == (405, "Method Not Allowed")
    assert payload["request_id"] == response.headers["X-Request-ID"]
    # RFC 9110 15.5.6: a 405 must say which methods the resource supports.
    assert "GET" in response.headers.get("Allow", "")


def test_unknown_path_is_404_in_error_shape(client):
    response = client.get("/no/such/path")
    assert response.status_code == 404
    assert set(body(response)) == ERROR_KEYS


def test_unexpected_exception_is_500_without_details(app, client):
    @app.get("/boom")
    def boom():
        raise RuntimeError("secret detail")

    response = client.get("/boom", headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500
    payload = body(response)
    assert set(payload) == ERROR_KEYS
    assert (payload["code"], payload["status"], payload["request_id"]) == (
        500, "Internal Server Error", "req-500",
    )
    text = response.get_data(as_text=True)
    for leak in ("secret detail", "RuntimeError", "Traceback"):
        assert leak not in text


# -- X-Request-ID -----------------------------------------------------------------


@pytest.mark.parametrize("supplied", ["abc-123", "A" * 128, "svc.orders:9f2e_01"])
def test_valid_request_id_is_echoed_in_header_and_error_body(client, supplied):
    response = client.get("/inventory/assets/NOPE", headers={"X-Request-ID": supplied})
    assert response.status_code == 404
    assert response.headers["X-Request-ID"] == supplied
    assert body(response)["request_id"] == supplied


def test_valid_request_id_is_echoed_on_success(client):
    response = client.get("/health", headers={"X-Request-ID": "ok-1"})
    assert response.headers["X-Request-ID"] == "ok-1"


@pytest.mark.parametrize(
    "supplied",
    ["A" * 129, "has space", "", "semi;colon", "<script>", "naïve", "abc\n", "a\nb", "abc\r\n"],
)
def test_invalid_request_id_is_replaced_by_a_generated_one(client, supplied):
    # Set in the WSGI environ directly: the test client refuses newlines in headers.
    response = client.get("/inventory/assets/NOPE", environ_overrides={"HTTP_X_REQUEST_ID": supplied})
    assert response.status_code == 404
    generated = response.headers["X-Request-ID"]
    assert GENERATED_ID.match(generated) and generated != supplied
    assert body(response)["request_id"] == generated


def test_generated_request_ids_differ_per_request(client):
    first = client.get("/health").headers["X-Request-ID"]
    second = client.get("/health").headers["X-Request-ID"]
    assert GENERATED_ID.match(first) and GENERATED_ID.match(second) and first != second


# -- Config.from_env ----------------------------------------------------------------


def test_from_env_converts_each_type():
    config = Config.from_env({
        "DYNAMODB_TABLE_NAME": "inventory-prod",
        "DYNAMODB_MAX_ATTEMPTS": "7",
        "CACHE_TTL_SECONDS": "2.5",
        "PRICE_REFRESH_ENABLED": "false",
        "DYNAMODB_ENDPOINT_URL": "http://localhost:8000",
        "COINGECKO_API_KEY": "",
        "UNRELATED_VARIABLE": "ignored",
    })
    assert config.DYNAMODB_TABLE_NAME == "inventory-prod"
    assert config.DYNAMODB_MAX_ATTEMPTS == 7 and type(config.DYNAMODB_MAX_ATTEMPTS) is int
    assert config.CACHE_TTL_SECONDS == 2.5 and type(config.CACHE_TTL_SECONDS) is float
    assert config.PRICE_REFRESH_ENABLED is False
    assert config.DYNAMODB_ENDPOINT_URL == "http://localhost:8000"
    assert config.COINGECKO_API_KEY is None  # empty means unset for optional settings
    # Everything not given keeps its default.
    assert config.PRICE_MAX_AGE_SECONDS == Config().PRICE_MAX_AGE_SECONDS


def test_from_env_with_nothing_set_is_the_defaults():
    assert Config.from_env({}) == Config()


@pytest.mark.parametrize(
    "raw, expected",
    [("1", True), ("true", True), ("YES", True), (" on ", True),
     ("0", False), ("False", False), ("no", False), ("off", False), ("", False)],
)
def test_from_env_parses_booleans(raw, expected):
    assert Config.from_env({"PRICE_REFRESH_ENABLED": raw}).PRICE_REFRESH_ENABLED is expected


@pytest.mark.parametrize(
    "name, raw",
    [
        ("DYNAMODB_MAX_ATTEMPTS", "four"),
        ("PRICE_MAX_AGE_SECONDS", "1.5"),
        ("CACHE_TTL_SECONDS", "soon"),
        ("MAX_CONTENT_LENGTH", ""),
        ("PRICE_REFRESH_ENABLED", "maybe"),
    ],
)
def test_from_env_bad_value_raises_value_error_naming_the_variable(name, raw):
    with pytest.raises(ValueError, match=name):
        Config.from_env({name: raw})
