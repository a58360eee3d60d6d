"""Hardening: rate limits, client identity, security headers, caching headers, CORS and request checks."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import pytest
import simplejson

from inventory import create_app
from inventory.auth import hash_token
from inventory.security import MAX_URL_BYTES, client_address

ERROR_KEYS = {"code", "status", "message", "request_id"}
TOKENS = {"svc-a": "inv_svc-a-token", "svc-b": "inv_svc-b-token"}
ALLOWED_ORIGIN = "https://ops.example.com"
EXEMPT_PATHS = [
    "/health",
    "/health/detailed",
    "/metrics",
    "/docs",
    "/redoc",
    "/openapi.json",
    "/static/vendor/swagger-ui/swagger-ui.css",
]


def body(response):
    return simplejson.loads(response.get_data(), use_decimal=True)


def bearer(name):
    return {"Authorization": f"Bearer {TOKENS[name]}"}


def peer(address):
    return {"REMOTE_ADDR": address}


@pytest.fixture
def make_app(config, moto_client):
    """Build an app from the test config with some fields changed."""

    def make(**changes):
        tokens = [{"name": n, "scopes": ["assets:write"], "hash": hash_token(t)} for n, t in TOKENS.items()]
        app = create_app(config.replace(API_TOKENS=json.dumps(tokens), **changes), dynamodb_client=moto_client)
        app.config["TESTING"] = True
        return app

    return make


def assert_error_shape(response, status):
    assert response.status_code == status
    payload = body(response)
    assert ERROR_KEYS <= set(payload), payload
    assert payload["code"] == status
    assert response.headers["Cache-Control"] == "no-store"
    return payload


# -- rate limits ---------------------------------------------------------------------


def test_reads_over_the_limit_get_429_in_our_shape_with_rate_limit_headers(make_app):
    client = make_app(RATE_LIMIT_READS="2/minute").test_client()
    first, second, third = (client.get("/inventory/assets/BTC") for _ in range(3))

    assert first.status_code == second.status_code == 404  # counted, whatever the answer
    assert (first.headers["RateLimit-Limit"], first.headers["RateLimit-Remaining"]) == ("2", "1")
    assert second.headers["RateLimit-Remaining"] == "0"
    assert "Retry-After" not in first.headers  # only a 429 says when to come back

    payload = assert_error_shape(third, 429)
    assert "rate limit" in payload["message"].lower()
    assert third.headers["RateLimit-Limit"] == "2"
    assert third.headers["RateLimit-Remaining"] == "0"
    # Both are seconds from now (the IETF draft's RateLimit-Reset), not a timestamp.
    assert 0 <= int(third.headers["Retry-After"]) <= 60
    assert 0 <= int(third.headers["RateLimit-Reset"]) <= 61


def test_writes_have_their_own_budget(make_app):
    client = make_app(RATE_LIMIT_READS="100/minute", RATE_LIMIT_WRITES="1/minute").test_client()
    assert client.post("/inventory/assets/batch-get", json={"ids": ["BTC"]}).status_code == 200
    assert_error_shape(client.post("/inventory/assets/batch-get", json={"ids": ["BTC"]}), 429)
    assert client.get("/inventory/assets/BTC").status_code == 404  # reads are still allowed


def test_unknown_paths_count_against_the_budget(make_app):
    client = make_app(RATE_LIMIT_READS="1/minute").test_client()
    assert client.get("/no/such/path").status_code == 404
    assert_error_shape(client.get("/no/such/path"), 429)


@pytest.mark.parametrize("path", EXEMPT_PATHS)
def test_operational_and_docs_paths_are_never_limited(make_app, path):
    client = make_app(RATE_LIMIT_READS="1/minute").test_client()
    for _ in range(3):
        with client.get(path) as response:  # closes the static file
            assert response.status_code == 200, path
            assert "RateLimit-Limit" not in response.headers


def test_each_client_address_has_its_own_budget(make_app):
    client = make_app(RATE_LIMIT_READS="1/minute").test_client()
    assert client.get("/inventory/assets/BTC", environ_base=peer("192.0.2.1")).status_code == 404
    assert client.get("/inventory/assets/BTC", environ_base=peer("192.0.2.2")).status_code == 404
    assert client.get("/inventory/assets/BTC", environ_base=peer("192.0.2.1")).status_code == 429


def test_forwarded_for_from_an_untrusted_peer_is_ignored(make_app):
    client = make_app(RATE_LIMIT_READS="1/minute").test_client()
    spoof = lambda ip: {"X-Forwarded-For": ip}  # noqa: E731
    assert client.get("/inventory/assets/BTC", headers=spoof("198.51.100.1")).status_code == 404
    assert client.get("/inventory/assets/BTC", headers=spoof("198.51.100.2")).status_code == 429


def test_forwarded_for_from_a_trusted_proxy_names_the_client(make_app):
    client = make_app(RATE_LIMIT_READS="1/minute", TRUSTED_PROXIES="10.0.0.0/8").test_client()
    proxy = peer("10.1.2.3")
    get = lambda xff: client.get("/inventory/assets/BTC", headers={"X-Forwarded-For": xff}, environ_base=proxy)  # noqa: E731
    assert get("198.51.100.1").status_code == 404
    assert get("198.51.100.2").status_code == 404
    # A client cannot escape its budget by prepending addresses of its own.
    assert get("203.0.113.9, 198.51.100.1").status_code == 429


@pytest.mark.parametrize(
    ("remote", "xff", "trusted", "expected"),
    [
        ("192.0.2.1", None, "", "192.0.2.1"),
        ("192.0.2.1", "198.51.100.1", "", "192.0.2.1"),  # peer not a proxy of ours
        ("10.0.0.1", "198.51.100.1", "10.0.0.0/8", "198.51.100.1"),
        ("10.0.0.1", "203.0.113.5, 198.51.100.1", "10.0.0.0/8", "198.51.100.1"),  # right-most untrusted
        ("10.0.0.1", "198.51.100.1, 10.0.0.7", "10.0.0.0/8", "198.51.100.1"),  # skips trusted hops
        ("10.0.0.1", "10.0.0.9, 10.0.0.7", "10.0.0.0/8", "10.0.0.9"),  # all ours: the furthest
        ("10.0.0.1", "garbage, 10.0.0.7", "10.0.0.0/8", "10.0.0.7"),  # unparsable: stop before it
        ("10.0.0.1", None, "10.0.0.0/8", "10.0.0.1"),  # proxy without the header
        ("10.0.0.1", "198.51.100.1", "192.0.2.10, 10.0.0.1", "198.51.100.1"),  # single addresses
        ("::ffff:10.0.0.1", "198.51.100.1", "10.0.0.0/8", "198.51.100.1"),  # v4-mapped peer
        ("2001:db8::1", "2001:db8:ffff::2", "2001:db8::/64", "2001:db8:ffff::2"),
    ],
)
def test_client_address(make_app, remote, xff, trusted, expected):
    app = make_app(TRUSTED_PROXIES=trusted)
    headers = {"X-Forwarded-For": xff} if xff else {}
    with app.test_request_context("/", headers=headers, environ_base=peer(remote)):
        assert client_address() == expected


def test_bad_trusted_proxies_refuse_to_start(make_app):
    with pytest.raises(ValueError):
        make_app(TRUSTED_PROXIES="10.0.0.0/8, not-an-address")


def test_a_token_is_limited_by_its_name_wherever_it_comes_from(make_app):
    client = make_app(RATE_LIMIT_WRITES="1/minute").test_client()
    post = lambda headers, ip: client.post(  # noqa: E731
        "/inventory/assets/batch-get", json={"ids": ["BTC"]}, headers=headers, environ_base=peer(ip)
    )
    assert post(bearer("svc-a"), "192.0.2.1").status_code == 200
    # Another token, and the bare address, each have a budget of their own ...
    assert post(bearer("svc-b"), "192.0.2.1").status_code == 200
    assert post({}, "192.0.2.1").status_code == 200
    # ... while the same token from another address shares its budget.
    assert post(bearer("svc-a"), "192.0.2.99").status_code == 429


def test_an_invalid_token_counts_against_the_address(make_app):
    client = make_app(RATE_LIMIT_WRITES="1/minute").test_client()
    post = lambda token: client.post(  # noqa: E731
        "/inventory/assets/batch-get", json={"ids": ["BTC"]}, headers={"Authorization": f"Bearer {token}"}
    )
    assert post("inv_made-up-1").status_code == 200  # batch-get is public; the token is just wrong
    assert post("inv_made-up-2").status_code == 429


# -- security headers ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/health", "/inventory/assets", "/inventory/assets/NOPE", "/nope", "/openapi.json"])
def test_api_responses_carry_the_security_headers(client, path):
    response = client.get(path)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"


def csp_directives(response) -> dict[str, list[str]]:
    policy = response.headers["Content-Security-Policy"]
    return {d.split()[0]: d.split()[1:] for d in (p.strip() for p in policy.split(";")) if d}


def test_swagger_ui_csp_allows_its_inline_script_by_hash_only(client):
    response = client.get("/docs")
    inline = re.findall(rb"<script>(.*?)</script>", response.get_data(), re.DOTALL)
    assert len(inline) == 1
    expected = "'sha256-" + base64.b64encode(hashlib.sha256(inline[0]).digest()).decode() + "'"
    csp = csp_directives(response)
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == ["'self'", expected]
    assert csp["style-src"] == ["'self'"]  # Swagger UI needs no inline styles
    assert "worker-src" not in csp
    assert csp["frame-ancestors"] == ["'none'"]
    assert response.headers["X-Frame-Options"] == "DENY"


def test_redoc_csp_allows_its_worker_and_inline_styles(client):
    csp = csp_directives(client.get("/redoc"))
    assert csp["script-src"] == ["'self'"]
    assert csp["worker-src"] == ["blob:"]
    assert "'unsafe-inline'" in csp["style-src"]
    assert csp["connect-src"] == ["'self'"]


# -- Cache-Control ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/health", "no-store"),
        ("/health/detailed", "no-store"),
        ("/inventory/assets/NOPE", "no-store"),  # an error
        ("/nope", "no-store"),
        ("/inventory/assets", "no-cache"),  # set by the view
        ("/openapi.json", "no-cache"),  # JSON without a view's own choice
    ],
)
def test_cache_control(client, path, expected):
    assert client.get(path).headers["Cache-Control"] == expected


def test_a_views_own_cache_control_is_kept(make_app):
    app = make_app()

    @app.get("/_test/cached")
    def cached():
        return {"ok": True}, 200, {"Cache-Control": "max-age=60"}

    assert app.test_client().get("/_test/cached").headers["Cache-Control"] == "max-age=60"


# -- CORS ------------------------------------------------------------------------------------


def test_cors_allows_exactly_the_configured_origins(make_app):
    client = make_app(CORS_ORIGINS=f"{ALLOWED_ORIGIN}, https://other.example.com").test_client()
    allowed = client.get("/inventory/assets", headers={"Origin": ALLOWED_ORIGIN})
    assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "Origin" in allowed.headers["Vary"]
    exposed = {h.strip() for h in allowed.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"ETag", "X-Request-ID", "Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= exposed
    assert "Access-Control-Allow-Credentials" not in allowed.headers

    for origin in ("https://evil.example.com", ALLOWED_ORIGIN + ".evil.com", "null"):
        refused = client.get("/inventory/assets", headers={"Origin": origin})
        assert "Access-Control-Allow-Origin" not in refused.headers, origin
        assert "Origin" in refused.headers["Vary"]  # a cache must not reuse it for an allowed origin


def test_no_cors_headers_when_no_origins_are_configured(client):
    response = client.get("/inventory/assets", headers={"Origin": ALLOWED_ORIGIN})
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Vary" not in response.headers


def test_preflight_from_an_allowed_origin(make_app):
    client = make_app(CORS_ORIGINS=ALLOWED_ORIGIN).test_client()
    response = client.options(
        "/inventory/assets/BTC/status",
        headers={
            "Origin": ALLOWED_ORIGIN,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization, content-type, if-match",
        },
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    methods = {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")}
    assert methods == {"GET", "POST", "PATCH"}
    headers = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert headers == {"authorization", "content-type", "if-match", "if-none-match", "x-request-id"}
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_preflight_from_another_origin_gets_no_permission(make_app):
    client = make_app(CORS_ORIGINS=ALLOWED_ORIGIN).test_client()
    response = client.options(
        "/inventory/assets", headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "GET"}
    )
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Methods" not in response.headers


def test_wildcard_cors_origin_refuses_to_start(make_app):
    with pytest.raises(ValueError, match="CORS_ORIGINS"):
        make_app(CORS_ORIGINS="*")


# -- request checks ----------------------------------------------------------------------------


@pytest.fixture
def small_body_app(make_app):
    """MAX_CONTENT_LENGTH of 1 KiB and a POST route that never reads its body."""
    app = make_app(MAX_CONTENT_LENGTH=1024)

    @app.post("/_test/ignores-body")
    def ignores_body():
        return {"ok": True}

    return app


def test_too_large_body_is_413_even_when_the_view_never_reads_it(small_body_app):
    response = small_body_app.test_client().post("/_test/ignores-body", json={"pad": "x" * 2000})
    payload = assert_error_shape(response, 413)
    assert "1024" in payload["message"]


def test_too_large_body_to_a_real_endpoint_is_413(small_body_app):
    response = small_body_app.test_client().post("/inventory/assets/batch-get", json={"ids": ["BTC"] * 300})
    assert_error_shape(response, 413)


def test_a_body_within_the_limit_passes(small_body_app):
    assert small_body_app.test_client().post("/_test/ignores-body", json={"pad": "x" * 100}).status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [("post", "/inventory/assets/batch-get"), ("patch", "/inventory/assets/BTC/status"), ("post", "/_test/ignores-body")],
)
@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None]
)
def test_a_write_whose_body_is_not_json_is_415(small_body_app, method, path, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    client = small_body_app.test_client()
    response = getattr(client, method)(path, data=b'{"ids": ["BTC"]}', headers=headers)
    payload = assert_error_shape(response, 415)
    assert "application/json" in payload["message"]


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", "application/merge-patch+json"])
def test_json_content_types_are_accepted(small_body_app, content_type):
    response = small_body_app.test_client().post(
        "/_test/ignores-body", data=b'{"ids": ["BTC"]}', headers={"Content-Type": content_type}
    )
    assert response.status_code == 200


def test_a_write_without_a_body_needs_no_content_type(small_body_app):
    assert small_body_app.test_client().post("/_test/ignores-body").status_code == 200


def test_non_json_to_an_unknown_path_is_still_404(client):
    assert_error_shape(client.post("/inventory/nothing-here", data=b"x", content_type="text/plain"), 404)


@pytest.mark.parametrize("raw", [b'{"ids": ["BTC"', b"{'ids': ['BTC']}", b"\xff\xfe{}", b"not json"])
def test_malformed_json_is_400_with_a_clear_message(client, raw):
    response = client.post("/inventory/assets/batch-get", data=raw, content_type="application/json")
    payload = assert_error_shape(response, 400)
    assert payload["message"] == "The request body is not valid JSON."
    assert payload["errors"]["json"][0].startswith("Invalid JSON body")


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/inventory/assets?cursor=" + "a" * 3000, 422),  # within the URL limit: the schema says no
        ("/inventory/assets/search?q=" + "b" * 3000, 422),
        ("/inventory/assets/" + "C" * 3000, 422),
        ("/inventory/assets?cursor=" + "a" * MAX_URL_BYTES, 414),
        ("/inventory/assets?unknown=" + "x" * 100_000, 414),
        ("/inventory/assets/search?" + "&".join(f"p{i}=1" for i in range(2000)), 414),
        ("/inventory/assets/" + "C" * 10_000, 414),
        ("/inventory/assets/" + "C" * 10_000 + "/history", 414),
    ],
)
def test_long_urls_and_values_are_4xx_in_our_shape(client, url, status):
    assert_error_shape(client.get(url), status)
