"""URL converters: `<asset_id:...>` matches only a path segment that is an asset id."""

from __future__ import annotations

from werkzeug.routing import BaseConverter

ASSET_ID_PATH_PATTERN = "^\\s*[A-Za-z0-9]{1,10}\\s*$"


class AssetIdConverter(BaseConverter):
    """An asset id, trimmed and case-insensitive (` btc ` is BTC).

    Any other segment matches no asset route, so routing answers it: 404 for an
    unknown path, 405 with Allow when the path exists for other methods
    (GET /inventory/assets/batch-get).
    """

    regex = r"\s*[A-Za-z0-9]{1,10}\s*"

    def to_python(self, value: str) -> str:
        return value.strip().upper()

    def to_url(self, value: str) -> str:
        return value


def asset_id_parameter(converter: AssetIdConverter) -> dict:
    """The OpenAPI schema of the path parameter (flask-smorest's register_converter)."""
    return {"type": "string", "pattern": ASSET_ID_PATH_PATTERN}
