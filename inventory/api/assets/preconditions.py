"""What every operator write shares: the bearer token it takes (documented per operation) and the
asset version its If-Match names (optimistic locking)."""

from __future__ import annotations

from flask import request

from ...domain import PreconditionRequired
from ..auth import require_scope
from ..errors import ErrorSchema
from ..responses import etag_version
from .blueprint import blp

AUTH_ERRORS = {401: "No or invalid bearer token", 403: "The token lacks the scope"}
# The scheme create_app declares (API_SPEC_OPTIONS): Swagger UI's Authorize takes the token.
BEARER = "bearerAuth"

IF_MATCH = {
    "in": "header",
    "name": "If-Match",
    "required": True,
    "description": "The `ETag` header of `GET /inventory/assets/{asset_id}`, quotes included; `*` is not accepted.",
    "schema": {"type": "string"},
    "example": '"v3.5f2b9c0e1a7d"',
}

def document_auth(view):
    for status, description in AUTH_ERRORS.items():
        view = blp.alt_response(status, schema=ErrorSchema, description=description)(view)
    return blp.doc(security=[{BEARER: []}])(view)


def expected_version() -> int:
    """The asset version named by If-Match.

    :raises PreconditionRequired: no usable If-Match (a write must name what it saw).
    """
    tags = request.if_match
    if tags and tags.star_tag:
        raise PreconditionRequired(
            "If-Match: * is not accepted: send the asset's ETag from GET /inventory/assets/{id}."
        )
    if not tags:
        raise PreconditionRequired()
    # werkzeug yields None for an empty tag (`If-Match: ""`), which names no version.
    versions = {etag_version(tag) for tag in tags.as_set(include_weak=True) if tag}
    versions.discard(None)
    if len(versions) != 1:
        raise PreconditionRequired("If-Match must carry one ETag from GET /inventory/assets/{id}.")
    return versions.pop()


def versioned_write(view):
    """An operator's write to one asset at the version its If-Match names: documented, and behind assets:write."""
    view = require_scope("assets:write")(view)
    view = document_auth(view)
    view = blp.doc(parameters=[IF_MATCH])(view)
    view = blp.alt_response(428, schema=ErrorSchema, description="If-Match missing or `*`")(view)
    return blp.alt_response(412, schema=ErrorSchema, description="If-Match does not name the current version")(view)
