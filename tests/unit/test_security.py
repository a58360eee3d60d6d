"""The request pipeline: rate limits, client identity, auth order, security headers, CORS, bodies and routing."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import pytest
import simplejson
from flask import request
from limits.errors import StorageError

from inventory import create_app
from inventory.api.bodies import MAX_JSON_DEPTH, MAX_URL_BYTES
from inventory.api.ratelimit import RateLimits
from inventory.services.tokens import hash_token
from tests.conftest import build_asset

ERROR_KEYS = {"code", "status", "error", "message", "request_id"}
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
    first, second, third = (client.get("/inventory/assets/BTC", headers=bearer("svc-a")) for _ in range(3))

    assert first.status_code == second.status_code == 404  # counted, whatever the answer
    assert (first.headers["RateLimit-Limit"], first.headers["RateLimit-Remaining"]) == ("2", "1")
    assert second.headers["RateLimit-Remaining"] == "0"
    assert "Retry-After" not in first.headers  # only a 429 says when to come back

    payload = assert_error_shape(third, 429)
    assert "rate limit" in payload["message"].lower()
    assert third.headers["RateLimit-Limit"] == "2"
    assert third.headers["RateLimit-Remaining"] == "0"
    # Both are seconds from now (the IETF draft's RateLimit-Reset), not a timestamp.
    assert 0 < int(third.headers["Retry-After"]) <= 60
    assert 0 < int(third.headers["RateLimit-Reset"]) <= 60


def test_one_address_can_read_2000_times_in_a_row_with_default_settings(config, moto_client, add_assets):
    # GIVEN the defaults: every anonymous read arrives from the gateway's one address
    add_assets(build_asset("BTC", 1, price="97000"))
    app = create_app(config, dynamodb_client=moto_client)
    client = app.test_client()
    # WHEN it reads one asset 2,000 times in a row
    statuses = {client.get("/inventory/assets/BTC", environ_base=peer("10.0.0.1")).status_code for _ in range(2000)}
    # THEN none of them is refused
    assert statuses == {200}


def test_writes_have_their_own_budget(make_app):
    client = make_app(RATE_LIMIT_READS="100/minute", RATE_LIMIT_WRITES="1/minute").test_client()
    patch = lambda: client.patch("/inventory/assets/BTC/status", json={"status": "SUSPENDED"}, headers=bearer("svc-a"))  # noqa: E731
    assert patch().status_code == 428  # authenticated and counted; only If-Match is missing
    assert_error_shape(patch(), 429)
    assert client.get("/inventory/assets/BTC", headers=bearer("svc-a")).status_code == 404  # reads still allowed


def test_batch_get_is_a_read(make_app):
    client = make_app(RATE_LIMIT_READS="1/minute", RATE_LIMIT_WRITES="100/minute").test_client()
    post = lambda: client.post("/inventory/assets/batch-get", json={"ids": ["BTC"]}, headers=bearer("svc-a"))  # noqa: E731
    assert post().status_code == 200
    assert_error_shape(post(), 429)


def test_unknown_paths_count_against_the_budget(make_app):
    client = make_app(RATE_LIMIT_READS="1/minute").test_client()
    assert client.get("/no/such/path", headers=bearer("svc-a")).status_code == 404
    assert_error_shape(client.get("/no/such/path", headers=bearer("svc-a")), 429)


@pytest.mark.parametrize("path", EXEMPT_PATHS)
def test_operational_and_docs_paths_are_never_limited(make_app, path):
    client = make_app(RATE_LIMIT_READS="1/minute", TRUSTED_PROXY_HOPS=1).test_client()
    for _ in range(3):
        with client.get(path, headers=bearer("svc-a")) as response:  # closes the static file
            assert response.status_code == 200, path
            assert "RateLimit-Limit" not in response.headers


def test_without_a_trusted_proxy_anonymous_reads_are_not_limited(make_app):
    client = make_app(RATE_LIMIT_READS="1/minute").test_client()
    for _ in range(5):
        response = client.get("/inventory/assets/BTC")
        assert response.status_code == 404
        assert "RateLimit-Limit" not in response.headers


def test_without_a_trusted_proxy_forwarded_for_changes_nothing(make_app):
    # Anonymous writes count against the peer address, whatever X-Forwarded-For claims.
    client = make_app(RATE_LIMIT_WRITES="1/minute").test_client()
    patch = lambda xff: client.patch(  # noqa: E731
        "/inventory/assets/BTC/status", json={"status": "SUSPENDED"}, headers={"X-Forwarded-For": xff}
    )
    assert patch("198.51.100.1").status_code == 401
    assert_error_shape(patch("198.51.100.2"), 429)


def test_with_a_trusted_hop_forwarded_clients_are_limited_separately(make_app):
    client = make_app(RATE_LIMIT_READS="1/minute", TRUSTED_PROXY_HOPS=1).test_client()
    gateway = peer("10.1.2.3")
    get = lambda xff: client.get("/inventory/assets/BTC", headers={"X-Forwarded-For": xff}, environ_base=gateway)  # noqa: E731
    assert get("198.51.100.1").status_code == 404
    assert get("198.51.100.2").status_code == 404
    assert_error_shape(get("198.51.100.1"), 429)
    # A client cannot escape its budget by prepending addresses of its own.
    assert_error_shape(get("203.0.113.9, 198.51.100.2"), 429)


@pytest.mark.parametrize(
    ("hops", "xff", "expected"),
    [
        (0, "198.51.100.1", "192.0.2.1"),  # never believed by default
        (1, None, "192.0.2.1"),  # a proxy that sent no header
        (1, "198.51.100.1", "198.51.100.1"),
        (1, "203.0.113.5, 198.51.100.1", "198.51.100.1"),  # what the client wrote itself is ignored
        (2, "203.0.113.5, 198.51.100.1, 10.0.0.7", "198.51.100.1"),  # two proxies of ours
        (2, "198.51.100.1", "192.0.2.1"),  # fewer entries than hops: not believed
    ],
)
def test_the_client_address_behind_trusted_hops(make_app, hops, xff, expected):
    app = make_app(TRUSTED_PROXY_HOPS=hops)

    @app.get("/_test/addr")
    def addr():
        return {"addr": request.remote_addr}

    headers = {"X-Forwarded-For": xff} if xff else {}
    response = app.test_client().get("/_test/addr", headers=headers, environ_base=peer("192.0.2.1"))
    assert response.get_json()["addr"] == expected


@pytest.mark.parametrize(
    ("changes", "name"), [({"RATE_LIMIT_READS": "lots"}, "RATE_LIMIT_READS"), ({"TRUSTED_PROXY_HOPS": -1}, "TRUSTED_PROXY_HOPS")]
)
def test_bad_settings_refuse_to_start(make_app, changes, name):
    with pytest.raises(ValueError, match=name):
        make_app(**changes)


def test_a_token_is_limited_by_its_name_wherever_it_comes_from(make_app):
    client = make_app(RATE_LIMIT_READS="1/minute", TRUSTED_PROXY_HOPS=1).test_client()
    get = lambda headers, ip: client.get(  # noqa: E731
        "/inventory/assets/BTC", headers={**headers, "X-Forwarded-For": ip}
    )
    assert get(bearer("svc-a"), "192.0.2.1").status_code == 404
    # Another token, and the bare address, each have a budget of their own ...
    assert get(bearer("svc-b"), "192.0.2.1").status_code == 404
    assert get({}, "192.0.2.1").status_code == 404
    # ... while the same token from another address shares its budget.
    assert get(bearer("svc-a"), "192.0.2.99").status_code == 429


def test_an_invalid_token_counts_against_the_address(make_app):
    client = make_app(RATE_LIMIT_WRITES="1/minute").test_client()
    patch = lambda token: client.patch(  # noqa: E731
        "/inventory/assets/BTC/status", json={"status": "SUSPENDED"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert patch("inv_made-up-1").status_code == 401
    assert patch("inv_made-up-2").status_code == 429


def test_with_memory_storage_each_worker_enforces_its_share():
    limits = RateLimits("10/minute", "3/minute", "memory://", workers=4)
    windows = [limits.hit(True, "token:a") for _ in range(4)]
    assert [w.exceeded for w in windows] == [False, False, False, True]  # ceil(10 / 4) = 3
    assert windows[0].limit == 3
    assert limits.hit(False, "token:a").limit == 1


def test_a_failing_limit_storage_lets_reads_through_and_counts_writes_per_process():
    failures = []
    limits = RateLimits("1/minute", "1/minute", "memory://", workers=1, on_storage_error=failures.append)

    def unreachable(*args, **kwargs):
        raise StorageError(ConnectionError("limit storage down"))

    working = limits._storage.incr
    limits._storage.incr = unreachable  # the third-party storage object, as a dead Redis would behave
    assert [limits.hit(True, "token:a") for _ in range(3)] == [None, None, None]  # fail open
    assert [limits.hit(False, "token:a").exceeded for _ in range(2)] == [False, True]  # in-memory fallback
    assert failures == ["reads"] * 3 + ["writes"] * 2
    # Once the storage answers again, it counts again.
    limits._storage.incr = working
    assert limits.hit(True, "token:a").remaining == 0
    assert limits.hit(True, "token:a").exceeded


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
    assert {"ETag", "X-Request-ID", "X-Catalog-Seq", "X-Catalog-Lag", "Retry-After", "RateLimit-Limit", "RateLimit-Remaining",
            "RateLimit-Reset"} <= exposed
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
    # With a token: without one the PATCH is refused (401) before its body is looked at.
    headers = {"Content-Type": content_type, **bearer("svc-a")} if content_type else bearer("svc-a")
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
        ("/inventory/assets/" + "C" * 3000, 422),  # not an asset id
        ("/inventory/assets?cursor=" + "a" * MAX_URL_BYTES, 414),
        ("/inventory/assets?unknown=" + "x" * 100_000, 414),
        ("/inventory/assets/search?" + "&".join(f"p{i}=1" for i in range(2000)), 414),
        ("/inventory/assets/" + "C" * 10_000, 414),
        ("/inventory/assets/" + "C" * 10_000 + "/history", 414),
    ],
)
def test_long_urls_and_values_are_4xx_in_our_shape(client, url, status):
    assert_error_shape(client.get(url), status)


# -- authentication before validation --------------------------------------------------------

WRITES = [
    ("patch", "/inventory/assets/BTC/status"),
    ("post", "/inventory/assets/bulk-status"),
    ("post", "/inventory/assets/import"),
]
BAD_BODIES = [
    {"json": {"status": "NOT-A-STATUS", "items": "x"}},  # valid JSON, invalid for every schema
    {"data": b'{"status": ', "content_type": "application/json"},  # malformed
    {"data": b"[" * 1000, "content_type": "application/json"},  # nested far too deep
    {"data": b"status=SUSPENDED", "content_type": "text/plain"},  # not JSON at all
    {"data": b"x" * 2048, "content_type": "application/json"},  # over MAX_CONTENT_LENGTH
]


@pytest.mark.parametrize(("method", "path"), WRITES)
@pytest.mark.parametrize("bad", BAD_BODIES, ids=["invalid", "malformed", "deep", "not-json", "oversized"])
def test_a_write_without_a_token_is_401_whatever_its_body(make_app, method, path, bad):
    client = make_app(MAX_CONTENT_LENGTH=1024).test_client()
    response = getattr(client, method)(path, **bad)
    assert_error_shape(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("bad", BAD_BODIES, ids=["invalid", "malformed", "deep", "not-json", "oversized"])
def test_a_token_without_the_scope_is_403_whatever_its_body(make_app, bad):
    client = make_app(MAX_CONTENT_LENGTH=1024).test_client()
    assert_error_shape(client.post("/inventory/assets/import", headers=bearer("svc-a"), **bad), 403)


@pytest.mark.parametrize(
    ("bad", "status"),
    [(BAD_BODIES[0], 422), (BAD_BODIES[1], 400), (BAD_BODIES[2], 400), (BAD_BODIES[3], 415), (BAD_BODIES[4], 413)],
    ids=["invalid", "malformed", "deep", "not-json", "oversized"],
)
def test_only_an_authorised_write_gets_its_body_checked(make_app, bad, status):
    client = make_app(MAX_CONTENT_LENGTH=1024).test_client()
    response = client.patch("/inventory/assets/BTC/status", headers={**bearer("svc-a"), "If-Match": '"v1.x"'}, **bad)
    assert_error_shape(response, status)


# -- one depth-limited parse --------------------------------------------------------------------


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1000, 100_000])
def test_deeply_nested_json_to_the_public_batch_get_is_400(client, depth):
    raw = b"[" * depth + b"]" * depth
    response = client.post("/inventory/assets/batch-get", data=raw, content_type="application/json")
    payload = assert_error_shape(response, 400)
    assert payload["errors"]["json"] == [f"Invalid JSON body: nested deeper than {MAX_JSON_DEPTH} levels."]


def test_unclosed_brackets_are_400_not_500(make_app):
    client = make_app().test_client()
    deep = {"data": b"[" * 100_000, "content_type": "application/json"}
    assert_error_shape(client.post("/inventory/assets/batch-get", **deep), 400)
    assert_error_shape(client.patch("/inventory/assets/BTC/status", **deep), 401)
    assert_error_shape(client.patch("/inventory/assets/BTC/status", headers=bearer("svc-a"), **deep), 400)


def test_nesting_within_the_limit_reaches_the_schema(client):
    raw = b'{"ids": ' + b"[" * (MAX_JSON_DEPTH - 1) + b"]" * (MAX_JSON_DEPTH - 1) + b"}"
    assert_error_shape(client.post("/inventory/assets/batch-get", data=raw, content_type="application/json"), 422)


def test_a_body_is_parsed_once_and_decimals_stay_exact(make_app):
    app = make_app()
    parse = app.json.loads
    calls = []

    def counting_loads(s, **kwargs):
        calls.append(s)
        return parse(s, **kwargs)

    app.json.loads = counting_loads
    seen = {}

    from inventory.api.assets.routes import blp  # noqa: F401  (a view that uses the body through webargs)

    @app.post("/_test/echo")
    def echo():
        seen["first"] = request.get_json()
        seen["again"] = request.get_json()
        return {"ok": True}

    client = app.test_client()
    assert client.post("/_test/echo", data=b'{"price": 0.00001234}', content_type="application/json").status_code == 200
    assert str(seen["first"]["price"]) == "0.00001234" and seen["again"] is seen["first"]
    assert len(calls) == 1
    calls.clear()
    response = client.post("/inventory/assets/batch-get", data=b'{"ids": ["BTC"]}', content_type="application/json")
    assert response.status_code == 200
    assert len(calls) == 1  # the hook's parse; webargs took the cached result


# -- routing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("get", "/inventory/assets/batch-get", {"POST"}),
        ("get", "/inventory/assets/bulk-status", {"POST"}),
        ("patch", "/inventory/assets/BTC", {"GET", "HEAD"}),
        ("get", "/inventory/assets/BTC/status", {"PATCH"}),
        ("post", "/inventory/assets/search", {"GET", "HEAD"}),
    ],
)
def test_a_wrong_method_is_405_with_allow(client, method, path, allowed):
    response = getattr(client, method)(path)
    assert_error_shape(response, 405)
    assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}


@pytest.mark.parametrize(
    "path", ["/inventory/assets/BTC/", "/inventory/assets/BTC/nothing", "/inventory/assets/B/C"]
)
def test_paths_that_are_not_routes_are_404(client, path):
    assert_error_shape(client.get(path), 404)
