"""Operator and service endpoints that change or bulk-read assets (all need a bearer token)."""

from __future__ import annotations

import marshmallow as ma
from flask import g, request
from flask.views import MethodView

from ...domain import (
    Asset,
    InvalidCursor,
    InvalidRequest,
    PreconditionRequired,
    VersionConflict,
)
from ..auth import read_operation, require_scope
from ..categories.schemas import ReleaseCategoriesArgsSchema, SetCategoriesSchema
from ..cursors import decode_cursor, encode_cursor
from ..errors import ErrorSchema
from ..extension import services, state
from ..request_id import current_request_id
from ..responses import etag_version, json_response
from .blueprint import blp
from .routes import _DETAIL
from .schemas import (
    AssetView,
    AuditArgsSchema,
    AuditPageSchema,
    BatchGetResultSchema,
    BatchGetSchema,
    BulkStatusResultSchema,
    BulkStatusSchema,
    ImportItemSchema,
    ImportResultSchema,
    ImportSchema,
    StatusChangeSchema,
    normalise_asset_id,
)

_AUTH_ERRORS = {401: "No or invalid bearer token", 403: "The token lacks the scope"}
# The scheme create_app declares (API_SPEC_OPTIONS): Swagger UI's Authorize takes the token.
BEARER = "bearerAuth"

_IF_MATCH = {
    "in": "header",
    "name": "If-Match",
    "required": True,
    "description": "The `ETag` header of `GET /inventory/assets/{asset_id}`, quotes included; `*` is not accepted.",
    "schema": {"type": "string"},
    "example": '"v3.5f2b9c0e1a7d"',
}

_IMPORT_EXAMPLE = {
    "items": [
        {
            "asset_id": "ACME",
            "symbol": "acme",
            "name": "Acme Settlement Token",
            "category": "stablecoins",
            "image": "https://example.com/acme.png",
            "current_price": 1.0002,
        }
    ],
    "overwrite_linked": False,
}


class ImportBodySchema(ma.Schema):
    """The import body as documented: typed items (the view validates them one by one, so one bad item fails alone)."""

    items = ma.fields.List(ma.fields.Nested(ImportItemSchema), required=True,
                           metadata={"description": "1-100 assets to create or update"})
    overwrite_linked = ma.fields.Boolean(load_default=False, metadata={
        "description": "Also update assets linked to a CoinGecko coin"
    })


def _document_auth(view):
    for status, description in _AUTH_ERRORS.items():
        view = blp.alt_response(status, schema=ErrorSchema, description=description)(view)
    return blp.doc(security=[{BEARER: []}])(view)


def _expected_version() -> int:
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


def _versioned_write(view):
    """An operator's write to one asset at the version its If-Match names: documented, and behind assets:write."""
    view = require_scope("assets:write")(view)
    view = _document_auth(view)
    view = blp.doc(parameters=[_IF_MATCH])(view)
    view = blp.alt_response(428, schema=ErrorSchema, description="If-Match missing or `*`")(view)
    return blp.alt_response(412, schema=ErrorSchema, description="If-Match does not name the current version")(view)


def _view(asset: Asset):
    service = services().catalog
    return {"data": AssetView.of(asset, service.clock(), service.max_age)}


@blp.route("/<asset_id:asset_id>/status")
class AssetStatusChange(MethodView):
    @blp.arguments(StatusChangeSchema)
    @blp.response(200, _DETAIL.__class__)
    @blp.alt_response(409, schema=ErrorSchema, description="Transition not allowed")
    @_versioned_write
    def patch(self, body, asset_id):
        """Change an asset's trading status

        Needs `If-Match` with the asset's current ETag (from GET). Allowed:
        ACTIVE -> SUSPENDED | INACTIVE, SUSPENDED -> ACTIVE | INACTIVE,
        INACTIVE -> ACTIVE. The same status again is a no-op (200, same ETag).
        Every change is audited with the token's name.
        """
        try:
            asset = services().writes.change_status(
                asset_id,
                body["status"],
                body["reason"],
                _expected_version(),
                g.token_name,
                current_request_id(),
            )
        except VersionConflict:
            state().metrics.write_conflict("status")
            raise
        return json_response(_view(asset), _DETAIL, version=asset.version)


@blp.route("/<asset_id:asset_id>/categories")
class AssetCategoriesChange(MethodView):
    @blp.arguments(SetCategoriesSchema)
    @blp.response(200, _DETAIL.__class__)
    @_versioned_write
    def patch(self, body, asset_id):
        """Set an asset's categories

        Needs `If-Match` with the asset's current ETag (from GET). The first
        slug becomes the primary `category`; the category refresh never
        overwrites an operator's choice. Audited with the token's name (in the
        asset's audit log, status unchanged, the reason naming the change).
        """
        asset = services().categories.set_categories(
            asset_id, body["categories"], body["reason"], _expected_version(), g.token_name, current_request_id()
        )
        return json_response(_view(asset), _DETAIL, version=asset.version)

    @blp.arguments(ReleaseCategoriesArgsSchema, location="query")
    @blp.response(200, _DETAIL.__class__)
    @_versioned_write
    def delete(self, args, asset_id):
        """Hand an asset's categories back to the category refresh

        Needs `If-Match` with the asset's current ETag. The categories stay as
        they are until the next membership run sets them from the source.
        Audited like a PATCH.
        """
        asset = services().categories.release(
            asset_id, args["reason"], _expected_version(), g.token_name, current_request_id()
        )
        return json_response(_view(asset), _DETAIL, version=asset.version)


@blp.route("/<asset_id:asset_id>/audit")
class AssetAudit(MethodView):
    @blp.arguments(AuditArgsSchema, location="query")
    @blp.response(200, AuditPageSchema)
    @_document_auth
    @require_scope("assets:read")
    def get(self, args, asset_id):
        """Status changes of an asset, newest first"""
        service = services().catalog
        service.get_asset(asset_id)
        after = None
        if "cursor" in args:
            (after,) = decode_cursor("audit", {"asset_id": asset_id}, args["cursor"], arity=1)
            if not isinstance(after, str):
                raise InvalidCursor()
        entries, next_key = service.audit(asset_id, args["limit"], after)
        cursor = encode_cursor("audit", {"asset_id": asset_id}, [next_key]) if next_key else None
        return {"data": entries, "next_cursor": cursor}


@blp.route("/batch-get")
class AssetBatchGet(MethodView):
    @blp.arguments(BatchGetSchema())
    @blp.response(200, BatchGetResultSchema)
    @read_operation
    def post(self, body):
        """Read up to 100 assets at once

        For validating a basket: returns the assets found (in request order),
        the ids not found, and the entries that are not asset ids. A read:
        public unless REQUIRE_AUTH_FOR_READS.
        """
        valid, invalid = [], []
        for raw in body["ids"]:
            normalised = normalise_asset_id(raw)
            (valid if normalised else invalid).append(normalised or raw)
        state().metrics.batch("batch_get", len(body["ids"]))
        found, missing = services().catalog.batch_get(list(dict.fromkeys(valid)))
        service = services().catalog
        now = service.clock()
        return {
            "data": [AssetView.of(a, now, service.max_age) for a in found],
            "not_found": missing,
            "invalid": invalid,
        }


@blp.route("/bulk-status")
class AssetBulkStatus(MethodView):
    @blp.arguments(BulkStatusSchema)
    @blp.response(200, BulkStatusResultSchema)
    @_document_auth
    @require_scope("assets:write")
    def post(self, body):
        """Change the status of up to 100 assets

        `atomic: true` applies all or none (one DynamoDB transaction, at most 49
        items); otherwise each item is applied on its own. `expected_etag`
        makes an item conditional on the version it names.
        """
        items, invalid = [], []
        for index, item in enumerate(body["items"]):
            asset_id = normalise_asset_id(item["asset_id"])
            version = etag_version(item["expected_etag"].strip('W/"')) if "expected_etag" in item else None
            if asset_id is None or ("expected_etag" in item and version is None):
                invalid.append(index)
            items.append({"asset_id": asset_id or item["asset_id"], "status": item["status"], "expected_version": version})
        if invalid:
            raise InvalidRequest(
                "Some items are not valid.",
                errors={"json": {"items": {str(i): ["Bad asset_id or expected_etag."] for i in invalid}}},
            )
        results = services().writes.bulk_status(
            items, body["atomic"], body["reason"], g.token_name, current_request_id()
        )
        state().metrics.bulk_results(results)
        return {"results": results}


@blp.route("/import")
class AssetImport(MethodView):
    @blp.arguments(ImportSchema, example=_IMPORT_EXAMPLE)
    @blp.response(200, ImportResultSchema)
    @blp.doc(requestBody={"content": {"application/json": {"schema": ImportBodySchema}}})
    @_document_auth
    @require_scope("assets:admin")
    def post(self, body):
        """Create or update assets that CoinGecko does not list (admin)

        Validated item by item and idempotent on asset_id. An asset linked to a
        CoinGecko coin is left alone unless `overwrite_linked` is true. An asset
        without a CoinGecko id is operator-priced: an import with a price renews
        its age (`renewed` when nothing else changed), and its staleness bound is
        `price_max_age_seconds` (default OPERATOR_PRICE_MAX_AGE_SECONDS).
        """
        service = services().catalog
        schema = ImportItemSchema()
        results, changed = [], []
        for index, raw in enumerate(body["items"]):
            result = {"index": index, "asset_id": raw.get("asset_id") if isinstance(raw.get("asset_id"), str) else None}
            try:
                item = schema.load(raw)
            except ma.ValidationError as exc:
                results.append({**result, "result": "invalid", "errors": exc.messages})
                continue
            try:
                outcome = services().writes.import_item(item, body["overwrite_linked"], g.token_name)
            except VersionConflict:
                outcome = "conflict"
            results.append({**result, "result": outcome})
            if outcome in ("created", "updated", "renewed"):
                changed.append(item["asset_id"])
        if changed:
            service.after_write(changed)
        state().metrics.import_results(results)
        return {"results": results}

