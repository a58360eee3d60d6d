"""Opaque, signed pagination cursors bound to the query that produced them."""

from __future__ import annotations

import hashlib
import json

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

from ..domain import InvalidCursor


def _serializer(scope: str) -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=f"cursor:{scope}")


def _fingerprint(filters: dict) -> str:
    canonical = json.dumps(filters, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode_cursor(scope: str, filters: dict, position: list) -> str:
    """Sign `position` together with the filters it belongs to."""
    return _serializer(scope).dumps({"f": _fingerprint(filters), "p": position})


def decode_cursor(scope: str, filters: dict, token: str, arity: int) -> list:
    """Return the position a cursor carries.

    :raises InvalidCursor: tampered, from another endpoint, or from other filters.
    """
    try:
        payload = _serializer(scope).loads(token)
    except BadSignature:
        raise InvalidCursor() from None
    if not isinstance(payload, dict) or payload.get("f") != _fingerprint(filters):
        raise InvalidCursor("The cursor belongs to a different query.")
    position = payload.get("p")
    if not isinstance(position, list) or len(position) != arity:
        raise InvalidCursor()
    return position
