"""Marshmallow schemas for the category endpoints."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from ...domain.taxonomy import SLUGS, TAXONOMY, UNCATEGORIZED
from ..assets.schemas import AssetSchema

MAX_TOP = 100


class _Query(ma.Schema):
    class Meta:
        # A misspelt parameter would otherwise answer a different question: 422 naming it.
        unknown = ma.RAISE

    error_messages = {"unknown": "Not a query parameter of this endpoint."}


class CategoryListArgsSchema(_Query):
    """No parameters: every category, always."""


class CategoryArgsSchema(_Query):
    limit = fields.Integer(
        load_default=10,
        validate=validate.Range(min=1, max=MAX_TOP),
        metadata={"description": f"How many top assets (by market cap) to return, 1-{MAX_TOP}", "example": 5},
    )


def _usd(description: str, example: str):
    return fields.Decimal(metadata={"description": description, "example": example})


class CategorySummarySchema(ma.Schema):
    slug = fields.String(metadata={"description": "The category's slug", "enum": list(SLUGS), "example": "stablecoin"})
    asset_count = fields.Integer(metadata={
        "description": "Assets carrying this category (any of their categories, not only the primary)", "example": 16,
    })
    tradable_count = fields.Integer(metadata={
        "description": "Of those, tradable now (ACTIVE, priced, price fresh)", "example": 15,
    })
    market_cap = _usd("Sum of their market caps, USD, exact (assets without one add nothing)", "312456789012.5")
    volume_24h = _usd("Sum of their 24h volumes, USD, exact", "98765432101")
    market_cap_weighted_change_24h = fields.Decimal(
        attribute="market_cap_change_24h",
        allow_none=True,
        metadata={
            "description": (
                "Market-cap-weighted 24h price change, percent: sum(market_cap x price_change_percentage_24h) "
                "/ sum(market_cap) over assets having both (market cap > 0), rounded half-even to 8 places; "
                "null when none has both"
            ),
            "example": "-0.01234567",
        },
    )


class CategoryListSchema(ma.Schema):
    data = fields.List(fields.Nested(CategorySummarySchema), metadata={
        "description": f"Every category of the taxonomy ({', '.join(TAXONOMY)}), then `{UNCATEGORIZED}`",
    })


class CategoryDetailSchema(CategorySummarySchema):
    top_assets = fields.List(fields.Nested(AssetSchema), metadata={
        "description": "Its largest assets by market cap (none last), ties by asset_id",
    })


class CategoryEnvelopeSchema(ma.Schema):
    data = fields.Nested(CategoryDetailSchema)


class SetCategoriesSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    categories = fields.List(
        fields.String(validate=validate.OneOf(TAXONOMY, error="Not a category of the taxonomy.")),
        required=True,
        validate=validate.Length(min=1, max=len(TAXONOMY)),
        metadata={"description": "Slugs; the first is the primary, the rest are kept in precedence order",
                  "example": ["defi", "layer-2"]},
    )
    reason = fields.String(load_default="", validate=validate.Length(max=300), metadata={"example": "listed as L2"})


class ReleaseCategoriesArgsSchema(_Query):
    reason = fields.String(load_default="", validate=validate.Length(max=300), metadata={
        "description": "Why, for the audit log", "example": "source lists it now",
    })
