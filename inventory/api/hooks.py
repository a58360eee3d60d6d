"""The request pipeline: one before_request and one after_request hook that call the pieces in a written order."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request
from flask.globals import request_ctx
from werkzeug.middleware.proxy_fix import ProxyFix

from ..config import Config
from ..services.tokens import TokenBook
from ..telemetry.logs import log_request
from ..telemetry.metrics import HttpMetrics
from .auth import READ_METHODS, access_table, bearer_token, check_access
from .bodies import check_body, check_url
from .headers import doc_path, docs_pages, parse_origins, preflight, response_headers
from .ratelimit import RateLimits, too_many_requests
from .request_id import REQUEST_ID_HEADER, current_request_id

log = logging.getLogger(__name__)


def install_hooks(app: Flask, config: Config, http_metrics: HttpMetrics, on_rate_limit_storage_error=None) -> None:
    """Wire the request pipeline; call after the blueprints and the metrics exporter are registered.

    In front of the app (WSGI): with TRUSTED_PROXY_HOPS = N > 0, werkzeug's
    ProxyFix takes the client address from the N-th X-Forwarded-For entry from
    the right; with 0 (the default) the header is never believed.

    Before the view, in this order; the first answer ends the request:
      1. start time and request id (every later log line and answer carries it);
      2. CORS preflight from an allowed origin: 204;
      3. URL over 4096 bytes: 414;
      4. caller: the bearer token, if any (a bad one is remembered, not refused yet);
      5. rate limit: one hit on the caller's read or write budget: 429
         (never for docs, health, metrics, static files or OPTIONS);
      6. access: the scope the route needs: 401, 403, before the body is looked at;
      7. body: 413, 415, 400 (unreadable, malformed, nested too deep); the JSON
         is parsed once here and cached for the view's webargs parser.
    After the view and the error handlers (429s and errors included):
      1. headers, added in one go: RateLimit-* of the budget counted in step 5
         (a 429 has them already), security headers and CSP, Cache-Control,
         CORS, X-Request-ID;
      2. the HTTP metrics (duration by method, route template and status; not
         for /metrics itself and static files) and the access log line.
    A request whose exception no handler answered also counts in
    flask_http_request_exceptions_total (teardown).
    """
    if config.TRUSTED_PROXY_HOPS < 0:
        raise ValueError("TRUSTED_PROXY_HOPS: must be 0 or more")
    if config.TRUSTED_PROXY_HOPS:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=config.TRUSTED_PROXY_HOPS)
    trust_client_address = config.TRUSTED_PROXY_HOPS > 0
    # Raises on a malformed setting, so the app is never built with one (settings.py says it in one line).
    tokens = TokenBook(config.API_TOKENS, config.API_TOKENS_FILE,
                       on_error=lambda exc: log.error("token file not reloaded, the tokens read before stay: %s", exc))
    routes = access_table(app, config.REQUIRE_AUTH_FOR_READS)
    limits = RateLimits(
        config.RATE_LIMIT_READS,
        config.RATE_LIMIT_WRITES,
        config.RATE_LIMIT_STORAGE_URI,
        config.WEB_CONCURRENCY,
        on_rate_limit_storage_error,
    )
    origins = parse_origins(config.CORS_ORIGINS)
    pages = docs_pages(app)
    unlimited = {*pages, "/health", "/health/detailed", "/metrics", doc_path(app, "OPENAPI_JSON_PATH")}
    max_body = config.MAX_CONTENT_LENGTH

    def rate_limit_key(token_name: str | None, read: bool) -> str | None:
        if token_name is not None:
            return "token:" + token_name
        if trust_client_address or not read:
            return "addr:" + (request.remote_addr or "")
        # Without a trusted proxy every anonymous read comes from the gateway's
        # one address: a budget for that address would be one budget for all
        # end users together, so anonymous reads are not limited (docs/design.md, Hardening).
        return None

    @app.before_request
    def before_request():
        g.started = time.perf_counter()
        current_request_id()
        answer = preflight(origins)
        if answer is not None:
            return answer
        check_url()
        entry, auth_error = bearer_token(tokens.entries())
        if entry is not None:
            g.token_name = entry.name
        access = routes.get((request.endpoint, request.method))
        read = access.read if access is not None else request.method in READ_METHODS
        path = request.path
        if request.method != "OPTIONS" and path not in unlimited and not path.startswith("/static/"):
            key = rate_limit_key(entry.name if entry is not None else None, read)
            window = limits.hit(read, key) if key is not None else None
            if window is not None:
                if window.exceeded:
                    return too_many_requests(window)
                g.rate_window = window
        check_access(access, entry, auth_error)
        return check_body(max_body)

    @app.after_request
    def after_request(response: Response) -> Response:
        ctx = request_ctx._get_current_object()
        req, ctx_g = ctx.request, g._get_current_object()
        path = req.path
        request_id = getattr(ctx_g, "request_id", None)
        extra = [(REQUEST_ID_HEADER, request_id)] if request_id is not None else []
        window = getattr(ctx_g, "rate_window", None)
        if window is not None:
            extra += window.headers().items()
        response_headers(response, path, pages, origins, req.headers.get("Origin") if origins else None, extra)
        started = getattr(ctx_g, "started", None)
        seconds = time.perf_counter() - started if started is not None else None
        route = req.url_rule.rule if req.url_rule is not None else "<unmatched>"
        status = response.status_code
        if seconds is not None and path != "/metrics" and not path.startswith("/static/"):
            http_metrics.request(req.method, route, status, seconds)
        log_request(req.method, route, status, round(seconds * 1000, 2) if seconds is not None else None,
                    getattr(ctx_g, "token_name", None), request_id)
        return response

    @app.teardown_request
    def count_exception(exc: BaseException | None) -> None:
        if exc is not None:
            http_metrics.exception(request.method)
