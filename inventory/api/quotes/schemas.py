"""Marshmallow schemas for quotes and valuations."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from ...domain import ASSET_ID_RE, AssetStatus
from ...services.quotes import (
    MAX_HOLDINGS,
    MAX_QUANTITY_CHARS,
    MAX_QUOTE_ITEMS,
    parse_quantity,
)


class _Strict(ma.Schema):
    class Meta:
        # A misspelt field would otherwise be ignored and answer another question.
        unknown = ma.RAISE


class NoQuery(_Strict):
    """No query parameters: any one is a 422 naming it."""

    error_messages = {"unknown": "Not a query parameter of this endpoint."}


class Quantity(fields.Field):
    """An exact quantity: a plain decimal string ("0.25") or a JSON number, never negative."""

    def __init__(self, **kwargs):
        metadata = {
            "description": f"Exact decimal, as a string or a number; at most {MAX_QUANTITY_CHARS} characters",
            "example": "0.25",
            "oneOf": [
                {"type": "string", "pattern": r"^\s*[0-9]+(\.[0-9]+)?\s*$", "maxLength": MAX_QUANTITY_CHARS},
                {"type": "number", "minimum": 0},
            ],
            **kwargs.pop("metadata", {}),
        }
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return parse_quantity(value)
        except ValueError as exc:
            raise ma.ValidationError(str(exc)) from None

    def _serialize(self, value, attr, obj, **kwargs):
        return value  # a Decimal: the JSON provider writes it in plain notation


class AssetId(fields.String):
    """An asset id, trimmed and upper-cased like the path parameter (`btc` is `BTC`)."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip().upper()
        if not ASSET_ID_RE.match(text):
            raise ma.ValidationError("1-10 letters or digits.")
        return text


class _OncePerAsset(_Strict):
    """The same asset twice is ambiguous (two quantities for one line): 422 naming the repeats' indexes."""

    LIST = "items"

    @ma.validates_schema
    def _no_duplicates(self, data, **kwargs):
        seen: dict[str, int] = {}
        repeats = {}
        for index, item in enumerate(data[self.LIST]):
            asset_id = item["asset_id"]
            if asset_id in seen:
                repeats[index] = [f"Duplicate of item {seen[asset_id]} ({asset_id}); send each asset once."]
            seen.setdefault(asset_id, index)
        if repeats:
            raise ma.ValidationError(repeats, field_name=self.LIST)


def _positive(value) -> None:
    if value <= 0:
        raise ma.ValidationError("Must be greater than 0.")


class QuoteItemSchema(_Strict):
    asset_id = AssetId(required=True, metadata={"example": "BTC"})
    quantity = Quantity(validate=_positive, metadata={
        "description": "Optional: the quote then carries the amount (price x quantity, exact)",
    })


class QuoteRequestSchema(_OncePerAsset):
    items = fields.List(
        fields.Nested(QuoteItemSchema),
        required=True,
        validate=[validate.Length(min=1, max=MAX_QUOTE_ITEMS)],
        metadata={"description": f"1-{MAX_QUOTE_ITEMS} assets, each at most once"},
    )


class QuoteLineSchema(ma.Schema):
    asset_id = fields.String(metadata={"example": "BTC"})
    price = fields.Decimal(metadata={"description": "USD price, exact, as stored at as_of", "example": "64012.5"})
    quantity = fields.Decimal(allow_none=True, metadata={"description": "As asked; null when not asked"})
    amount = fields.Decimal(allow_none=True, metadata={"description": "price x quantity, exact; null without quantity"})
    price_check = fields.String(allow_none=True, metadata={
        "description": "The price's check when quoted: `ok` (a second source agrees within its band) or "
                       "`single_source` / `secondary_stale` (nothing confirmed it); diverged assets are refused",
        "example": "ok"})
    price_source = fields.String(allow_none=True, metadata={
        "description": "coingecko; the exchange's name while it stands in for CoinGecko", "example": "coingecko"})


class QuoteSchema(ma.Schema):
    quote_id = fields.String(metadata={
        "description": "The signed quote (itsdangerous URLSafeSerializer, HMAC-SHA256): verify it offline "
        "(docs/api.md) or at GET /inventory/quotes/{quote_id}",
    })
    as_of = fields.DateTime(metadata={"description": "When the prices were read from the store"})
    expires_at = fields.DateTime(metadata={"description": "as_of + QUOTE_TTL_SECONDS"})
    ttl_seconds = fields.Integer(metadata={"example": 30})
    items = fields.List(fields.Nested(QuoteLineSchema), metadata={"description": "In request order"})
    total = fields.Decimal(allow_none=True, metadata={"description": "Sum of the amounts; null unless every item has a quantity"})


class QuoteCheckSchema(QuoteSchema):
    valid = fields.Boolean(metadata={"description": "Signed by this service and not expired"})
    reason = fields.String(allow_none=True, metadata={"description": "Why not valid: `expired`; null when valid"})


class QuoteIdSchema(_Strict):
    quote_id = fields.String(required=True, validate=validate.Length(min=1, max=65536), metadata={
        "description": "A quote_id from POST /inventory/quotes",
    })


class HoldingInSchema(_Strict):
    asset_id = AssetId(required=True, metadata={"example": "ETH"})
    quantity = Quantity(required=True)


class ValuationRequestSchema(_OncePerAsset):
    LIST = "holdings"

    holdings = fields.List(
        fields.Nested(HoldingInSchema),
        required=True,
        validate=[validate.Length(min=1, max=MAX_HOLDINGS)],
        metadata={"description": f"1-{MAX_HOLDINGS} holdings, each asset at most once"},
    )


class HoldingValueSchema(ma.Schema):
    asset_id = fields.String(metadata={"example": "ETH"})
    name = fields.String()
    quantity = fields.Decimal()
    status = fields.Enum(AssetStatus)
    price = fields.Decimal(allow_none=True, metadata={"description": "USD, exact; null: no price known"})
    value = fields.Decimal(allow_none=True, metadata={"description": "price x quantity, exact"})
    value_change_24h = fields.Decimal(allow_none=True, metadata={
        "description": "quantity x the price's 24h change (USD); null when the source gave none",
    })
    price_change_percentage_24h = fields.Decimal(allow_none=True)
    price_updated_at = fields.DateTime(allow_none=True)
    price_stale = fields.Boolean(metadata={"description": "The price is older than the asset's staleness bound"})
    is_active = fields.Boolean(metadata={"description": "Tradable now (ACTIVE, priced, fresh)"})
    price_check = fields.String(metadata={
        "description": "The price's check status: ok, diverged, single_source or secondary_stale", "example": "ok"})
    price_source = fields.String(metadata={"description": "Where the price came from", "example": "coingecko"})


class ValuationSchema(ma.Schema):
    as_of = fields.DateTime(metadata={"description": "When the valuation was computed (one catalog snapshot)"})
    holdings = fields.List(fields.Nested(HoldingValueSchema), metadata={"description": "Known assets, in request order"})
    total = fields.Decimal(metadata={"description": "Sum of the values of priced holdings (stale ones included)"})
    total_change_24h = fields.Decimal(metadata={"description": "Sum of the known value_change_24h"})
    unknown = fields.List(fields.String(), metadata={"description": "Asset ids not in the catalog (not valued)"})
    unpriced = fields.List(fields.String(), metadata={"description": "Known assets without a price"})
    stale_count = fields.Integer(metadata={"description": "Holdings whose price is stale"})
