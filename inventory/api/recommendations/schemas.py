"""Schemas of the recommendation endpoints."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from ..assets.schemas import _Body, _Query, normalise_asset_id

MAX_HOLDINGS = 100
MAX_RESULTS = 20


class SimilarArgsSchema(_Query):
    limit = fields.Integer(load_default=5, validate=validate.Range(min=1, max=MAX_RESULTS),
                           metadata={"description": "How many similar assets", "example": 5})


class _AssetIdField(fields.String):
    """An asset id, trimmed and upper-cased; 422 when it is not one."""

    def _deserialize(self, value, attr, data, **kwargs):
        normalised = normalise_asset_id(super()._deserialize(value, attr, data, **kwargs))
        if normalised is None:
            raise ma.ValidationError("Not an asset id.")
        return normalised


class RecommendationHoldingSchema(_Body):
    asset_id = _AssetIdField(required=True, validate=validate.Length(max=64), metadata={"example": "BTC"})
    quantity = fields.Decimal(validate=validate.Range(min=0), metadata={
        "description": "Optional; recommendations look at which assets are held, not how much", "example": "0.5"})


class RecommendationsRequestSchema(_Body):
    holdings = fields.List(fields.Nested(RecommendationHoldingSchema), required=True,
                           validate=validate.Length(min=1, max=MAX_HOLDINGS))
    limit = fields.Integer(load_default=5, validate=validate.Range(min=1, max=MAX_RESULTS))


class RecommendedSchema(ma.Schema):
    asset_id = fields.String(metadata={"example": "LINK"})
    symbol = fields.String(metadata={"example": "link"})
    name = fields.String(metadata={"example": "Chainlink"})
    category = fields.String(allow_none=True, metadata={"example": "oracle"})
    score = fields.Decimal(metadata={"description": "0..1, higher is a better match", "example": "0.7321"})
    reasons = fields.List(fields.String(), metadata={
        "example": ["shares category layer-1", "same market-cap band (100B-1000B USD)"]})


class SimilarSchema(ma.Schema):
    asset_id = fields.String(metadata={"example": "BTC"})
    data = fields.List(fields.Nested(RecommendedSchema), metadata={"description": "Best first; tradable assets only"})


class RecommendationsSchema(ma.Schema):
    data = fields.List(fields.Nested(RecommendedSchema), metadata={"description": "Best first; tradable assets only"})
    unknown = fields.List(fields.String(), metadata={"description": "Held ids not in the catalog"})
    without_history = fields.List(fields.String(), metadata={
        "description": "Held assets with no stored daily returns (only their categories count)"})
