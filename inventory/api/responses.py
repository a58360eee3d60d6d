"""Cached JSON responses with ETags: render once per cache fill, answer hits and 304s from bytes."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import marshmallow as ma
from flask import Response, current_app, request

from ..extensions import get_service

# RFC 7234's warning for a response served past its freshness, sent when the
# store is failing and a recently expired value stands in.
STALE_WARNING = '110 - "Response is Stale"'
# Clients may keep a copy but must revalidate it (a cheap 304) before each use:
# prices move every minute.
CACHE_CONTROL = "no-cache"


@dataclass(frozen=True)
class Rendered:
    body: bytes
    etag: str
    stale: bool = False  # built from data served stale by an inner cache


def render(payload, schema: ma.Schema, stale: bool = False, version: int | None = None) -> Rendered:
    body = current_app.json.dumps(schema.dump(payload)).encode()
    # The ETag is a digest of the body, computed once per fill, so it changes
    # exactly when the representation does (price, status, freshness). An asset's
    # ETag also leads with its version, which is what If-Match on a write checks:
    # a price refresh between read and write does not void an operator's change.
    digest = hashlib.blake2b(body, digest_size=12).hexdigest()
    return Rendered(body, f"v{version}.{digest}" if version is not None else digest, stale)


def etag_version(tag: str) -> int | None:
    """The asset version an ETag from `render` carries, or None."""
    head, dot, _ = tag.partition(".")
    if dot and head.startswith("v") and head[1:].isdigit() and len(head) < 12:
        return int(head[1:])
    return None


def json_response(payload, schema: ma.Schema, status: int = 200, version: int | None = None) -> Response:
    """An uncached JSON response in the same form (used by writes)."""
    rendered = render(payload, schema, version=version)
    response = current_app.response_class(rendered.body, status=status, mimetype="application/json")
    response.set_etag(rendered.etag)
    response.headers["Cache-Control"] = "no-store"
    return response


def cached_json(cache: str, key: Hashable, build: Callable[[], Rendered]) -> Response:
    """Serve `key` from the named response cache, filling it with `build()` on a miss."""
    cached = get_service().responses[cache].get(key, build)
    rendered = cached.value
    if request.if_none_match.contains_weak(rendered.etag):
        response = current_app.response_class(status=304)
    else:
        response = current_app.response_class(rendered.body, mimetype="application/json")
    response.set_etag(rendered.etag)
    response.headers["Cache-Control"] = CACHE_CONTROL
    if cached.stale or rendered.stale:
        response.headers["Warning"] = STALE_WARNING
    return response
