"""The API's response cache: JSON rendered once per fill, hits and 304s answered from bytes."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

import marshmallow as ma
from flask import Response, current_app, request

from ..config import Config
from ..services.cache import Cached, LoadingCache
from .extension import services

# How long an unchanged detail body is kept at most (its key changes with the asset).
ASSET_BODY_SECONDS = 3600
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
    quoted_etag: str = field(init=False)  # the header value, quoted once per fill

    def __post_init__(self):
        object.__setattr__(self, "quoted_etag", f'"{self.etag}"')


def render(payload, schema: ma.Schema, stale: bool = False, version: int | None = None) -> Rendered:
    return rendered_bytes(current_app.json.dumps(schema.dump(payload)).encode(), stale, version)


def rendered_bytes(body: bytes, stale: bool = False, version: int | None = None) -> Rendered:
    """Any representation (JSON, CSV) with its ETag."""
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


class ResponseCache:
    """Rendered responses (body + ETag) by request, one LoadingCache per endpoint.

    What the read model serves is keyed by the version it is rendered from (an
    asset's own change count, the model's version for pages and market data),
    so a body never outlives its data (docs/design.md "Read model and caching").
    """

    NAMES = ("asset", "list", "search", "history", "reports", "recommendations", "categories", "market")

    def __init__(self, config: Config, on_lookup: Callable[[str, bool], None] | None = None):
        ttl, grace = config.CACHE_TTL_SECONDS, config.CACHE_STALE_GRACE_SECONDS
        bounds = {"asset": (config.CACHE_MAX_ASSETS, config.CACHE_MAX_ASSET_BYTES)}
        # A detail body's key holds everything it renders, what depends on the clock included
        # (asset_state): it may stay until the size bounds evict it.
        ttls = {"asset": ASSET_BODY_SECONDS}
        self.caches = {}
        for name in self.NAMES:
            entries, size = bounds.get(name, (config.CACHE_MAX_PAGES, config.CACHE_MAX_PAGE_BYTES))
            self.caches[name] = LoadingCache(
                name,
                size,
                ttls.get(name, ttl),
                grace,
                on_lookup=on_lookup,
                sizeof=_sizeof(size // entries),
            )

    def get(self, cache: str, key: Hashable, build: Callable[[], Rendered]) -> Cached[Rendered]:
        """:raises StoreError: the build failed and nothing within the grace period is cached."""
        return self.caches[cache].get(key, build)


# What an entry holds beside its body: the Rendered, its two ETag strings, the
# cache's key, timestamps and links (measured with tracemalloc, rounded up).
ENTRY_OVERHEAD_BYTES = 512


def _sizeof(least: int) -> Callable[[Rendered], int]:
    """An entry's share of its cache's byte bound: its body and overhead, and at least
    `least` (the bound over the entry count), so the count bound holds as well."""

    def sizeof(rendered: Rendered) -> int:
        return max(len(rendered.body) + ENTRY_OVERHEAD_BYTES, least)

    return sizeof


def get_model():
    """This worker's read model (the service's)."""
    return services().catalog.model


def catalog_version() -> tuple[str, bool]:
    """What identifies the read model's current version (pages and market bodies are keyed by it),
    and whether the store answers (a body rendered while it did not is marked stale)."""
    model = get_model()
    return model.view().fingerprint, model.store_answering()


def asset_state(asset, now, max_age_seconds: int) -> tuple:
    """What one detail body of an asset renders from: the state every write moves, and what
    the clock moves (tradable, stale)."""
    return (asset.stream_seq, asset.version, asset.updated_at, asset.last_price_update,
            asset.is_tradable(now, max_age_seconds), asset.price_stale(now, max_age_seconds))


def cached_json(
    cache: str, key: Hashable, build: Callable[[], Rendered], *, mimetype: str = "application/json",
    cache_control: str = CACHE_CONTROL, headers: dict | None = None, version: Hashable = None,
) -> Response:
    """Serve `key` from the named response cache, filling it with `build()` on a miss (JSON unless told).

    `version`: what the read model's data behind the body is identified by (it joins the key, and
    the answer carries the model's position, X-Catalog-Seq).
    """
    if version is not None:
        key = (key, version)
    cached = services().responses.get(cache, key, build)
    rendered = cached.value
    # A hit builds one Response around shared bytes; the ETag header is quoted
    # once per fill, not per request.
    if "If-None-Match" in request.headers and request.if_none_match.contains_weak(rendered.etag):
        response = current_app.response_class(status=304)
    else:
        response = current_app.response_class(rendered.body, mimetype=mimetype)
    if headers:
        response.headers.update(headers)
    headers = response.headers
    headers["ETag"] = rendered.quoted_etag
    headers["Cache-Control"] = cache_control
    if cached.stale or rendered.stale:
        headers["Warning"] = STALE_WARNING
    if version is not None:
        catalog_headers(headers)
    return response


def catalog_headers(headers) -> None:
    """The read model's position and lag: how current a read from it is."""
    model = get_model()
    headers["X-Catalog-Seq"] = str(model.seq)
    lag = model.lag_seconds()
    if lag is not None:
        headers["X-Catalog-Lag"] = f"{lag:.1f}"
