"""Query schema and message documentation of the live stream endpoints."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate
from webargs.fields import DelimitedList

from ..domain import ASSET_ID_RE
from ..domain.taxonomy import SLUGS


class StreamArgsSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    error_messages = {"unknown": "Not a query parameter of this endpoint."}
    assets = DelimitedList(
        fields.String(validate=validate.Regexp(ASSET_ID_RE)),
        validate=validate.Length(min=1, max=500),
        metadata={"description": "Asset ids to follow, comma-separated; leave out for every asset",
                  "example": "BTC,ETH"},
    )
    categories = DelimitedList(
        fields.String(validate=validate.OneOf(SLUGS)),
        validate=validate.Length(min=1, max=len(SLUGS)),
        metadata={"description": "Category slugs to follow, comma-separated: every asset carrying one of them "
                                 "(primary or not): an asset that joins one later arrives with a snapshot, one that "
                                 "leaves them all with a `left` message; with `assets`, both are followed",
                  "example": "layer-1,defi"},
    )
    since = fields.Integer(
        validate=validate.Range(min=0),
        metadata={"description": "Resume after this feed seq (SSE clients may send `Last-Event-ID` instead): "
                                 "the missed messages, or a snapshot flagged `resync` when they are no longer kept",
                  "example": 1042},
    )


class StreamMessageSchema(ma.Schema):
    """One stream message (an SSE `data:` line or one WebSocket text frame)."""

    type = fields.String(metadata={"description": "snapshot | price | check (a new cross-check, no new price) | "
                                                  "status | stale | left (the asset left "
                                                  "every followed category; `categories` says where it is now) | "
                                                  "heartbeat (`seq`: all sent up to here; `time`, `interval`) | close",
                                   "example": "price"})
    seq = fields.Integer(metadata={"description": "Feed position; increases across the whole feed (resume point)",
                                   "example": 1042})
    asset_id = fields.String(metadata={"example": "BTC"})
    asset_seq = fields.Integer(metadata={"description": "This asset's change count: +1 per change, so a gap shows",
                                         "example": 87})
    price = fields.String(allow_none=True, metadata={"description": "Exact decimal, as a string", "example": "97123.5"})
    price_change_24h = fields.String(allow_none=True, metadata={"example": "-812.25"})
    price_change_percentage_24h = fields.String(allow_none=True, metadata={"example": "-0.83"})
    as_of = fields.String(allow_none=True, metadata={"description": "Time of the price (ISO 8601)",
                                                     "example": "2026-01-01T12:00:00.000+00:00"})
    status = fields.String(metadata={"example": "ACTIVE"})
    tradable = fields.Boolean(metadata={"description": "ACTIVE, priced and the price is fresh"})
    source = fields.String(metadata={"description": "Where the price came from: coingecko, or the exchange "
                                                    "standing in during an outage", "example": "coingecko"})
    price_check = fields.Dict(metadata={
        "description": "On snapshot, price and check: status, sources (source, price, as_of, pair, quote, "
                       "quote_price), divergence_bps, band_bps, checked_at; numbers as exact strings"})
    resync = fields.Boolean(metadata={"description": "A snapshot sent because the asked-for gap is no longer kept"})
    categories = fields.List(fields.String(), metadata={"description": "On `left`: the asset's categories now"})
    time = fields.String(metadata={"description": "On `heartbeat`: the server's time (ISO 8601)"})
    interval = fields.Float(metadata={"description": "On `heartbeat`: seconds until the next one"})
