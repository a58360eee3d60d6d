"""An operator's writes to one asset (status, categories) and its audit log: each needs a bearer token."""

from __future__ import annotations

from flask import g
from flask.views import MethodView

from ...domain import Asset, InvalidCursor, VersionConflict
from ..auth import require_scope
from ..categories.schemas import ReleaseCategoriesArgsSchema, SetCategoriesSchema
from ..cursors import decode_cursor, encode_cursor
from ..errors import ErrorSchema
from ..extension import services, state
from ..request_id import current_request_id
from ..responses import json_response
from .blueprint import blp
from .preconditions import document_auth, expected_version, versioned_write
from .routes import _DETAIL
from .schemas import (
    AssetView,
    AuditArgsSchema,
    AuditPageSchema,
    PriceBandSchema,
    StatusChangeSchema,
)


def _view(asset: Asset):
    service = services().catalog
    return {"data": AssetView.of(asset, service.clock(), service.max_age)}


@blp.route("/<asset_id:asset_id>/status")
class AssetStatusChange(MethodView):
    @blp.arguments(StatusChangeSchema)
    @blp.response(200, _DETAIL.__class__)
    @blp.alt_response(409, schema=ErrorSchema, description="Transition not allowed")
    @versioned_write
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
                expected_version(),
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
    @versioned_write
    def patch(self, body, asset_id):
        """Set an asset's categories

        Needs `If-Match` with the asset's current ETag (from GET). The first
        slug becomes the primary `category`; the category refresh never
        overwrites an operator's choice. Audited with the token's name (in the
        asset's audit log, status unchanged, the reason naming the change).
        """
        asset = services().categories.set_categories(
            asset_id, body["categories"], body["reason"], expected_version(), g.token_name, current_request_id()
        )
        return json_response(_view(asset), _DETAIL, version=asset.version)

    @blp.arguments(ReleaseCategoriesArgsSchema, location="query")
    @blp.response(200, _DETAIL.__class__)
    @versioned_write
    def delete(self, args, asset_id):
        """Hand an asset's categories back to the category refresh

        Needs `If-Match` with the asset's current ETag. The categories stay as
        they are until the next membership run sets them from the source.
        Audited like a PATCH.
        """
        asset = services().categories.release(
            asset_id, args["reason"], expected_version(), g.token_name, current_request_id()
        )
        return json_response(_view(asset), _DETAIL, version=asset.version)


@blp.route("/<asset_id:asset_id>/price-band")
class AssetPriceBand(MethodView):
    @blp.arguments(PriceBandSchema, example={"band_bps": 150, "reason": "thin market on the exchange"})
    @blp.response(200, _DETAIL.__class__)
    @versioned_write
    def put(self, body, asset_id):
        """Set the band of an asset's price check

        Needs `If-Match` with the asset's current ETag. `band_bps` is how far
        the second source's price may be from CoinGecko's before the check is
        `diverged` (and quotes refuse the asset); null restores the default
        (stablecoins 50, top 20 by market cap 100, the rest 300). The stored
        check is judged against the new band at once. Audited with the token's
        name (in the asset's audit log, status unchanged, the reason naming the change).
        """
        asset = services().writes.set_price_band(
            asset_id, body["band_bps"], body["reason"], expected_version(), g.token_name, current_request_id()
        )
        return json_response(_view(asset), _DETAIL, version=asset.version)


@blp.route("/<asset_id:asset_id>/audit")
class AssetAudit(MethodView):
    @blp.arguments(AuditArgsSchema, location="query")
    @blp.response(200, AuditPageSchema)
    @document_auth
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
