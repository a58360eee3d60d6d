"""Marshmallow schemas for the market overview and movers."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from ...domain.market import WINDOWS
from ..assets.schemas import _Query


def _usd(description: str, example: str):
    return fields.Decimal(allow_none=True, metadata={"description": description, "example": example})


def _percent(description: str, example: str):
    return fields.Decimal(allow_none=True, metadata={"description": description + " (percent)", "example": example})


class OverviewArgsSchema(_Query):
    pass


class OverviewSchema(ma.Schema):
    """The catalog's market picture, from one catalog snapshot."""

    asset_count = fields.Integer(metadata={"description": "Assets in the catalog, every status", "example": 250})
    total_market_cap = _usd("Sum of market_cap over the catalog, exact (assets without one add nothing)",
                            "3412345678901.25")
    total_volume_24h = _usd("Sum of volume_24h over the catalog, exact", "98765432101.5")
    btc_dominance = _percent("BTC's share of total_market_cap, 4 places, half-even; null without BTC", "55.6789")
    eth_dominance = _percent("ETH's share of total_market_cap", "12.3456")
    top10_dominance = _percent("The 10 largest market caps' share of total_market_cap", "88.1234")
    advancers = fields.Integer(metadata={"description": "Assets whose 24h change is above 0", "example": 140})
    decliners = fields.Integer(metadata={"description": "Assets whose 24h change is below 0", "example": 100})
    unchanged = fields.Integer(metadata={"description": "Assets whose 24h change is exactly 0", "example": 2})
    median_change_24h = _percent("Median 24h change over assets that have one; null when none", "0.8125")
    tradable_count = fields.Integer(metadata={"description": "Tradable now (ACTIVE, priced, fresh)", "example": 230})
    stale_count = fields.Integer(metadata={"description": "Priced, but the price is older than PRICE_MAX_AGE_SECONDS",
                                           "example": 3})
    suspended_count = fields.Integer(metadata={"description": "Status SUSPENDED", "example": 2})
    inactive_count = fields.Integer(metadata={"description": "Status INACTIVE", "example": 1})
    as_of = fields.DateTime(allow_none=True, metadata={
        "description": "The newest price time in the snapshot: the refresh these figures come from"})


class MoversArgsSchema(_Query):
    window = fields.String(load_default="24h", validate=validate.OneOf(tuple(WINDOWS)), metadata={
        "description": "The change compared: `24h` (price_change_percentage_24h) or `7d`", "example": "24h"})
    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=100), metadata={
        "description": "Gainers and losers each, at most", "example": 10})
    min_market_cap = fields.Decimal(allow_nan=False, validate=validate.Range(min=0), metadata={
        "description": "Leave out assets below this market cap in USD (default MOVERS_MIN_MARKET_CAP, 10,000,000)",
        "example": "10000000"})
    min_volume_24h = fields.Decimal(allow_nan=False, validate=validate.Range(min=0), metadata={
        "description": "Leave out assets below this 24h volume in USD (default MOVERS_MIN_VOLUME_24H, 1,000,000)",
        "example": "1000000"})


class MoverSchema(ma.Schema):
    asset_id = fields.String(metadata={"example": "SOL"})
    symbol = fields.String(metadata={"example": "sol"})
    name = fields.String(metadata={"example": "Solana"})
    market_cap_rank = fields.Integer(allow_none=True, metadata={"example": 5})
    current_price = _usd("USD price, exact", "187.42")
    market_cap = _usd("USD", "90000000000")
    volume_24h = _usd("USD", "4000000000")
    change = _percent("The change over the window asked", "12.5")


class MoversSchema(ma.Schema):
    window = fields.String(metadata={"example": "24h"})
    min_market_cap = fields.Decimal(metadata={"description": "The minimum applied", "example": "10000000"})
    min_volume_24h = fields.Decimal(metadata={"description": "The minimum applied", "example": "1000000"})
    as_of = fields.DateTime(allow_none=True, metadata={"description": "As in the overview"})
    gainers = fields.List(fields.Nested(MoverSchema), metadata={
        "description": "Tradable assets with the highest positive change, highest first (ties: asset_id)"})
    losers = fields.List(fields.Nested(MoverSchema), metadata={
        "description": "Tradable assets with the lowest negative change, lowest first (ties: asset_id)"})


class OverviewEnvelopeSchema(ma.Schema):
    data = fields.Nested(OverviewSchema)


class MoversEnvelopeSchema(ma.Schema):
    data = fields.Nested(MoversSchema)
