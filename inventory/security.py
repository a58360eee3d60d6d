"""Hardening wired by init_security(app): rate limits, security headers, CORS and request checks."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import re
import time

from flask import Flask, Response, current_app, g, request
from flask_limiter import ApplicationLimit, HeaderNames, Limiter, RateLimitExceeded
from werkzeug.exceptions import RequestEntityTooLarge, RequestURITooLarge

from .api.errors import error_response
from .auth import authenticate
from .config import Config
from .domain import InventoryError

READ_METHODS = frozenset({"GET", "HEAD"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# gunicorn refuses request lines over 4094 bytes itself; a longer URL reaching
# the app (another server in front, the test client) gets the same answer in our shape.
MAX_URL_BYTES = 4096

RATE_LIMIT_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After")
CORS_ALLOW_METHODS = "GET, POST, PATCH"
CORS_ALLOW_HEADERS = "Authorization, Content-Type, If-Match, If-None-Match, X-Request-ID"
CORS_EXPOSE_HEADERS = ", ".join(("ETag", "X-Request-ID", *RATE_LIMIT_HEADERS))
CORS_MAX_AGE_SECONDS = 600

API_CSP = "default-src 'none'; frame-ancestors 'none'"
# The docs pages load their scripts and styles from /static and fetch the spec
# from us; anything else (ReDoc's sidebar logo on cdn.redoc.ly) stays blocked.
# Swagger UI's page has one inline <script>, allowed by its hash rather than by
# 'unsafe-inline'. ReDoc injects <style> elements at run time (styled-components)
# and builds its search index in a blob: worker.
_DOCS_CSP = (
    "default-src 'none'; script-src 'self'{script_hashes}; style-src {style_src}; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self';{worker_src} base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
_SWAGGER_UI = {"style_src": "'self'", "worker_src": ""}
_REDOC = {"style_src": "'self' 'unsafe-inline'", "worker_src": " worker-src blob:;"}
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def init_security(app: Flask, config: Config) -> Limiter:
    """Install the hardening on `app`: after the metrics (429s are counted), before auth (floods are throttled)."""
    docs_pages = {
        _doc_path(app, "OPENAPI_SWAGGER_UI_PATH"): _SWAGGER_UI,
        _doc_path(app, "OPENAPI_REDOC_PATH"): _REDOC,
    }
    exempt_paths = {*docs_pages, "/health", "/health/detailed", "/metrics", _doc_path(app, "OPENAPI_JSON_PATH")}
    cors_origins = parse_origins(config.CORS_ORIGINS)
    trusted = parse_networks(config.TRUSTED_PROXIES)
    app.extensions["inventory_security"] = {"trusted_proxies": trusted}

    @app.before_request
    def _answer_preflight():
        origin = request.headers.get("Origin")
        if request.method == "OPTIONS" and origin in cors_origins and "Access-Control-Request-Method" in request.headers:
            response = current_app.response_class(status=204)
            del response.headers["Content-Type"]
            response.headers["Access-Control-Allow-Methods"] = CORS_ALLOW_METHODS
            response.headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
            response.headers["Access-Control-Max-Age"] = str(CORS_MAX_AGE_SECONDS)
            return response
        return None

    # after_request functions run in reverse order of registration: this one is
    # registered before the limiter's, so it sees the headers the limiter added.
    @app.after_request
    def _secure_headers(response: Response) -> Response:
        _security_headers(response, docs_pages)
        _cache_control(response)
        _cors_headers(response, cors_origins)
        _rate_limit_headers(response)
        return response

    limiter = Limiter(
        key_func=rate_limit_key,
        application_limits=[
            ApplicationLimit(config.RATE_LIMIT_READS, scope="reads", exempt_when=_is_write),
            ApplicationLimit(config.RATE_LIMIT_WRITES, scope="writes", exempt_when=_is_read),
        ],
        storage_uri=config.RATE_LIMIT_STORAGE_URI,
        headers_enabled=True,
        header_name_mapping={
            HeaderNames.LIMIT: "RateLimit-Limit",
            HeaderNames.REMAINING: "RateLimit-Remaining",
            HeaderNames.RESET: "RateLimit-Reset",
            HeaderNames.RETRY_AFTER: "Retry-After",
        },
        retry_after="delta-seconds",
        # Requests to unknown paths count too (the default skips them).
        request_identifier=lambda: request.endpoint or "<unmatched>",
        # A broken limit store must not take the API down: fall back to
        # per-process counters and log.
        in_memory_fallback_enabled=True,
        swallow_errors=True,
    )

    @limiter.request_filter
    def _exempt() -> bool:
        return request.method == "OPTIONS" or request.path in exempt_paths or request.path.startswith("/static/")

    limiter.init_app(app)
    app.register_error_handler(RateLimitExceeded, _too_many_requests)

    # Runs before the limiter's header hook: remembers a Retry-After the view set
    # (a 503, say) so the limiter's window reset does not replace it.
    @app.after_request
    def _remember_retry_after(response: Response) -> Response:
        g.view_retry_after = response.headers.get("Retry-After")
        return response

    # Registered after the limiter's check, so throttled clients are refused first.
    @app.before_request
    def _check_request():
        return check_request()

    return limiter


# -- client identity --------------------------------------------------------------


def parse_networks(raw: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Parse comma-separated addresses/CIDRs.

    :raises ValueError: on an entry that is neither.
    """
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in raw.split(",") if part.strip())


def parse_origins(raw: str) -> frozenset[str]:
    """Parse comma-separated exact origins (scheme://host[:port]).

    :raises ValueError: on `*`: only named origins may read responses.
    """
    origins = frozenset(part.strip().rstrip("/") for part in raw.split(",") if part.strip())
    if "*" in origins:
        raise ValueError("CORS_ORIGINS: '*' is not allowed; list the exact origins")
    return origins


def _ip(value: str):
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    # An IPv4 peer seen on a dual-stack socket arrives as ::ffff:a.b.c.d.
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def _trusted(address, networks) -> bool:
    return address is not None and any(address in network for network in networks)


def client_address() -> str:
    """The client's address: the peer, or, behind a trusted proxy, the right-most untrusted X-Forwarded-For hop."""
    peer = request.remote_addr or ""
    networks = current_app.extensions["inventory_security"]["trusted_proxies"]
    address = _ip(peer)
    if not _trusted(address, networks):
        return peer
    hops = [hop.strip() for value in request.headers.getlist("X-Forwarded-For") for hop in value.split(",")]
    client = str(address)
    for hop in reversed([hop for hop in hops if hop]):
        hop_address = _ip(hop)
        if hop_address is None:
            # Not an address: whoever wrote it is the last hop we can vouch for.
            break
        client = str(hop_address)
        if not _trusted(hop_address, networks):
            break
    return client


def rate_limit_key() -> str:
    """Who a request counts against: its token's name when it carries a valid token, else its client address."""
    token_name = g.get("token_name")
    if token_name is None and "Authorization" in request.headers:
        # Writes authenticate inside the view, after this hook has run, so the
        # token is checked here (a bad one counts against the address).
        try:
            authenticate()
        except InventoryError:
            pass
        token_name = g.get("token_name")
    if token_name:
        return f"token:{token_name}"
    return f"addr:{client_address()}"


def _is_read() -> bool:
    return request.method in READ_METHODS


def _is_write() -> bool:
    return request.method not in READ_METHODS


def _too_many_requests(error: RateLimitExceeded):
    # Retry-After and RateLimit-* are added by the limiter's after_request hook.
    return error_response(429, f"Rate limit exceeded ({error.description}); retry after the Retry-After delay.")


# -- request checks -----------------------------------------------------------------


def check_request():
    """Refuse over-long URLs (414), over-large bodies (413), non-JSON writes (415) and malformed JSON (400)."""
    if len(request.path.encode()) + len(request.query_string) > MAX_URL_BYTES:
        raise RequestURITooLarge(f"The URL is longer than {MAX_URL_BYTES} bytes.")
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if limit is not None and (request.content_length or 0) > limit:
        # Refused before anything reads the body, whether or not the view would.
        raise RequestEntityTooLarge(f"The request body is larger than {limit} bytes.")
    if request.method not in BODY_METHODS or not _has_body():
        return None
    rule = request.url_rule
    if rule is None or request.method not in (rule.methods or ()):
        return None  # routing answers 404/405 in our shape
    if not _is_json(request.mimetype):
        return error_response(
            415,
            "The request body must be JSON (Content-Type: application/json).",
            errors={"headers": {"Content-Type": ["Must be application/json."]}},
        )
    try:
        json.loads(request.get_data(cache=True))
    except (ValueError, UnicodeDecodeError) as exc:
        return error_response(
            400,
            "The request body is not valid JSON.",
            errors={"json": [f"Invalid JSON body: {_json_error(exc)}"]},
        )
    return None


def _has_body() -> bool:
    return bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "").lower()


def _is_json(mimetype: str) -> bool:
    return mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))


def _json_error(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}."
    return "not UTF-8 text."


# -- response headers ---------------------------------------------------------------


def _doc_path(app: Flask, key: str) -> str:
    prefix = app.config.get("OPENAPI_URL_PREFIX") or "/"
    return "/" + "/".join(p for p in (prefix.strip("/"), app.config[key].strip("/")) if p)


def _security_headers(response: Response, docs_pages: dict[str, dict]) -> None:
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    page = docs_pages.get(request.path)
    if page is not None and response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = docs_csp(response.get_data(), **page)
    else:
        response.headers["Content-Security-Policy"] = API_CSP


def docs_csp(page: bytes, style_src: str, worker_src: str) -> str:
    """The CSP for a docs page: 'self' plus the hashes of the inline scripts it really has."""
    hashes = "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(page)
    )
    return _DOCS_CSP.format(script_hashes=hashes, style_src=style_src, worker_src=worker_src)


def _cache_control(response: Response) -> None:
    if response.status_code >= 400 or request.path == "/health" or request.path.startswith("/health/"):
        response.headers["Cache-Control"] = "no-store"
    elif "Cache-Control" not in response.headers and response.is_json:
        response.headers["Cache-Control"] = "no-cache"


def _cors_headers(response: Response, origins: frozenset[str]) -> None:
    if not origins:
        return
    # Whether the allow header is sent depends on Origin, so caches must key on it.
    response.vary.add("Origin")
    origin = request.headers.get("Origin")
    if origin in origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS


def _rate_limit_headers(response: Response) -> None:
    # Flask-Limiter writes the reset as an epoch timestamp; the IETF draft's
    # RateLimit-Reset is the seconds left in the window, like Retry-After.
    reset = response.headers.get("RateLimit-Reset")
    if reset and reset.isdigit():
        response.headers["RateLimit-Reset"] = str(max(0, int(int(reset) - time.time())))
    # It also writes Retry-After on every limited response (a 200 included, or a
    # 503 that means "the store is down", not "slow down"); only a 429 keeps its value.
    if response.status_code != 429:
        original = g.get("view_retry_after")
        if original is None:
            response.headers.pop("Retry-After", None)
        else:
            response.headers["Retry-After"] = original
