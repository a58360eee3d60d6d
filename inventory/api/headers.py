"""Response headers: security headers and CSP, Cache-Control, and CORS (exact origins, preflights)."""

from __future__ import annotations

import base64
import hashlib
import re

from flask import Flask, Response, current_app, request

from .ratelimit import RATE_LIMIT_HEADERS

CORS_ALLOW_METHODS = "GET, POST, PATCH"
CORS_ALLOW_HEADERS = "Authorization, Content-Type, If-Match, If-None-Match, X-Request-ID"
CORS_EXPOSE_HEADERS = ", ".join(("ETag", "X-Request-ID", "X-Catalog-Seq", "X-Catalog-Lag", *RATE_LIMIT_HEADERS))
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
_STATIC_HEADERS = (("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"), ("Referrer-Policy", "no-referrer"))
# What every API answer carries, built once (the views never set these names).
_API_HEADERS = (*_STATIC_HEADERS, ("Content-Security-Policy", API_CSP))


def doc_path(app: Flask, key: str) -> str:
    """The URL path of one of flask-smorest's docs settings (OPENAPI_*_PATH)."""
    prefix = app.config.get("OPENAPI_URL_PREFIX") or "/"
    return "/" + "/".join(p for p in (prefix.strip("/"), app.config[key].strip("/")) if p)


def docs_pages(app: Flask) -> dict[str, dict]:
    """The docs pages and the CSP ingredients of each."""
    return {doc_path(app, "OPENAPI_SWAGGER_UI_PATH"): _SWAGGER_UI, doc_path(app, "OPENAPI_REDOC_PATH"): _REDOC,
            # The live stream's board (inventory/stream/socket.py): own scripts and styles only.
            "/board": _SWAGGER_UI}


def parse_origins(raw: str) -> frozenset[str]:
    """Parse comma-separated exact origins (scheme://host[:port]).

    :raises ValueError: on `*`: only named origins may read responses.
    """
    origins = frozenset(part.strip().rstrip("/") for part in raw.split(",") if part.strip())
    if "*" in origins:
        raise ValueError("CORS_ORIGINS: '*' is not allowed; list the exact origins")
    return origins


def preflight(origins: frozenset[str]) -> Response | None:
    """The 204 answer to a CORS preflight from an allowed origin; None for anything else."""
    if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
        return None
    if request.headers.get("Origin") not in origins:
        return None
    response = current_app.response_class(status=204)
    del response.headers["Content-Type"]
    response.headers["Access-Control-Allow-Methods"] = CORS_ALLOW_METHODS
    response.headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
    response.headers["Access-Control-Max-Age"] = str(CORS_MAX_AGE_SECONDS)
    return response


def response_headers(response: Response, path: str, pages: dict[str, dict], origins: frozenset[str], origin: str | None,
                     extra: list[tuple[str, str]]) -> None:
    """Security headers and CSP, Cache-Control, CORS and `extra`, added to the response in one extend."""
    headers = response.headers
    page = pages.get(path)
    if page is not None and response.mimetype == "text/html":
        add = [*_STATIC_HEADERS, ("Content-Security-Policy", docs_csp(response.get_data(), **page))]
    else:
        add = [*_API_HEADERS]
    add += extra
    if response.status_code >= 400 or path == "/health" or path.startswith("/health/"):
        # Replaces what a view set: an error or a health answer is never cached.
        headers.pop("Cache-Control", None)
        add.append(("Cache-Control", "no-store"))
    elif "Cache-Control" not in headers and response.is_json:
        add.append(("Cache-Control", "no-cache"))
    if origins:
        # Whether the allow header is sent depends on Origin, so caches must key on it.
        response.vary.add("Origin")
        if origin in origins:
            add += (("Access-Control-Allow-Origin", origin), ("Access-Control-Expose-Headers", CORS_EXPOSE_HEADERS))
    headers.extend(add)


def docs_csp(page: bytes, style_src: str, worker_src: str) -> str:
    """The CSP for a docs page: 'self' plus the hashes of the inline scripts it really has."""
    hashes = "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(page)
    )
    return _DOCS_CSP.format(script_hashes=hashes, style_src=style_src, worker_src=worker_src)
