"""URL converters: `<asset_id:...>` matches only a path segment that is an asset id."""

from __future__ import annotations

import functools

from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter, Map, Rule

ASSET_ID_PATH_PATTERN = "^\\s*[A-Za-z0-9]{1,10}\\s*$"


class AssetIdConverter(BaseConverter):
    """An asset id, trimmed and case-insensitive (` btc ` is BTC).

    Any other segment matches no asset route, so routing answers it: 405 with
    Allow when the path exists for other methods (GET /inventory/assets/batch-get),
    and a 404 that `malformed_asset_id` turns into a 422 when the path has the
    shape of an asset route (`/inventory/assets/BTC-USD`).
    """

    regex = r"\s*[A-Za-z0-9]{1,10}\s*"

    def to_python(self, value: str) -> str:
        return value.strip().upper()

    def to_url(self, value: str) -> str:
        return value


def asset_id_parameter(converter: AssetIdConverter) -> dict:
    """The OpenAPI schema of the path parameter (flask-smorest's register_converter)."""
    return {"type": "string", "pattern": ASSET_ID_PATH_PATTERN}


INVALID_ASSET_ID = "An asset id is 1 to 10 letters or digits (BTC, 1INCH); case and surrounding spaces are ignored."


class _AnySegment(BaseConverter):
    """Whatever stands where an asset id would: one path segment."""


def malformed_asset_id(url_map: Map, path: str, method: str) -> str | None:
    """The segment of `path` that stands where an asset id goes but is not one, else None.

    Asked after routing found no rule: the same asset routes with any segment in
    the id's place say whether the path was an asset route with a malformed id.
    """
    try:
        _, args = _shapes(url_map).bind("localhost").match(path, method)
    except HTTPException:
        return None
    return args["asset_id"]


@functools.lru_cache(maxsize=8)
def _shapes(url_map: Map) -> Map:
    return Map([Rule(rule.rule, endpoint=rule.endpoint, methods=rule.methods)
                for rule in url_map.iter_rules() if "asset_id" in rule.arguments],
               converters={"asset_id": _AnySegment})
