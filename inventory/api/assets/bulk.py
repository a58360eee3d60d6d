"""Many assets in one request: batch-get (the order service), bulk status changes, imports (admin)."""

from __future__ import annotations

import marshmallow as ma
from flask import g
from flask.views import MethodView

from ...domain import InvalidRequest, VersionConflict
from ..auth import read_operation, require_scope
from ..extension import services, state
from ..request_id import current_request_id
from ..responses import etag_version
from .blueprint import blp
from .preconditions import document_auth
from .schemas import (
    IMPORT_EXAMPLE,
    AssetView,
    BatchGetResultSchema,
    BatchGetSchema,
    BulkStatusResultSchema,
    BulkStatusSchema,
    ImportBodySchema,
    ImportItemSchema,
    ImportResultSchema,
    ImportSchema,
    normalise_asset_id,
)


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
    @document_auth
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
    @blp.arguments(ImportSchema, example=IMPORT_EXAMPLE)
    @blp.response(200, ImportResultSchema)
    @blp.doc(requestBody={"content": {"application/json": {"schema": ImportBodySchema}}})
    @document_auth
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
