"""Schemas of the daily report: its query, its JSON body and its CSV columns."""

from __future__ import annotations

from decimal import Decimal

import marshmallow as ma
from marshmallow import fields, validate

from ..assets.schemas import _Query

REPORT_FORMATS = ("json", "csv")
# change_percentage is the one rounded value (a division); every other number is exact.
PERCENT_PLACES = Decimal("0.0001")


class DailyReportArgsSchema(_Query):
    date = fields.Date(required=True, metadata={
        "description": "A finished UTC day, YYYY-MM-DD (kept a year)", "example": "2026-11-24"})
    format = fields.String(validate=validate.OneOf(REPORT_FORMATS), metadata={
        "description": "`csv` for text/csv (as does `Accept: text/csv`); default JSON", "example": "csv"})


class ReportRowSchema(ma.Schema):
    asset_id = fields.String(metadata={"example": "BTC"})
    open = fields.Decimal(metadata={"description": "First price of the day (USD)", "example": "43000.5"})
    high = fields.Decimal(metadata={"example": "43600"})
    low = fields.Decimal(metadata={"example": "42880.01"})
    close = fields.Decimal(metadata={"description": "Last price of the day", "example": "43250.12"})
    change = fields.Decimal(metadata={"description": "close - open, exact", "example": "249.62"})
    change_percentage = fields.Decimal(metadata={
        "description": "change / open * 100, rounded to 4 places", "example": "0.5805"})
    count = fields.Integer(metadata={"description": "Stored price points that day", "example": 1440})
    market_cap = fields.Decimal(allow_none=True, metadata={"description": "At the close", "example": "851234567890"})
    volume_24h = fields.Decimal(allow_none=True, metadata={"description": "At the close", "example": "23456789012"})


class ReportTotalsSchema(ma.Schema):
    assets = fields.Integer(metadata={"description": "Assets with a candle that day", "example": 250})
    market_cap = fields.Decimal(metadata={"description": "Sum of market caps at each asset's close",
                                          "example": "2412345678901"})
    volume_24h = fields.Decimal(metadata={"description": "Sum of 24h volumes at each asset's close",
                                          "example": "98765432101"})
    rolled_at = fields.DateTime(metadata={"description": "When the refresher rolled the day up"})


class DailyReportSchema(ma.Schema):
    date = fields.Date(metadata={"example": "2026-11-24"})
    totals = fields.Nested(ReportTotalsSchema)
    data = fields.List(fields.Nested(ReportRowSchema), metadata={"description": "One row per asset, by asset_id"})


# The CSV's columns: `row` is `asset` for an asset's line and `market` for the one totals line
# (its `count` is the number of assets), so a reader never mistakes one for the other.
CSV_COLUMNS = ("row", "asset_id", "open", "high", "low", "close", "change", "change_percentage", "count",
               "market_cap", "volume_24h")
CSV_EXAMPLE = (",".join(CSV_COLUMNS) + "\r\nasset,BTC,43000.5,43600,42880.01,43250.12,249.62,0.5805,1440,"
               "851234567890,23456789012\r\nmarket,,,,,,,,250,2412345678901,98765432101\r\n")
