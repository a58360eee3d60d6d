"""The daily market report: every asset's OHLC of a finished UTC day and the market totals, as JSON or CSV."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from flask import request
from flask.views import MethodView

from ..bodies import Blueprint, plain_number
from ..errors import ErrorSchema
from ..extension import services
from ..responses import Rendered, cached_json, render, rendered_bytes
from .schemas import (
    CSV_COLUMNS,
    CSV_EXAMPLE,
    PERCENT_PLACES,
    DailyReportArgsSchema,
    DailyReportSchema,
)

blp = Blueprint("reports", __name__, url_prefix="/inventory/reports", description="Market reports")

_REPORT = DailyReportSchema()
# A finished day's report changes only when a backfill adds an asset to it (rare, and
# seen within the hour): clients and proxies may keep it that long, then revalidate by ETag.
PAST_DAY_CACHE_CONTROL = "max-age=3600"


def report_rows(candles) -> list[dict]:
    rows = []
    for asset_id, candle in sorted(candles.items()):
        change = candle.change
        rows.append({
            "asset_id": asset_id, "open": candle.open, "high": candle.high, "low": candle.low,
            "close": candle.close, "change": change,
            "change_percentage": (change / candle.open * 100).quantize(PERCENT_PLACES) if candle.open else None,
            "count": candle.count, "market_cap": candle.market_cap, "volume_24h": candle.volume_24h,
        })
    return rows


def _cell(value) -> str:
    if value is None:
        return ""
    return plain_number(value) if isinstance(value, Decimal) else str(value)


def report_csv(rows: list[dict], totals) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(["asset"] + [_cell(row.get(c)) for c in CSV_COLUMNS[1:]])
    market = {"count": totals.assets, "market_cap": totals.market_cap, "volume_24h": totals.volume_24h}
    writer.writerow(["market"] + [_cell(market.get(c)) for c in CSV_COLUMNS[1:]])
    return out.getvalue().encode()


def _wants_csv(args) -> bool:
    if "format" in args:
        return args["format"] == "csv"
    return request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv"


@blp.route("/daily")
class DailyReport(MethodView):
    @blp.arguments(DailyReportArgsSchema, location="query")
    @blp.response(200, DailyReportSchema)
    # Both representations (a doc'd content replaces the one @blp.response would write).
    @blp.doc(responses={"200": {"content": {
        "application/json": {"schema": DailyReportSchema},
        "text/csv": {"schema": {"type": "string"}, "example": CSV_EXAMPLE},
    }}})
    @blp.alt_response(404, schema=ErrorSchema,
                      description="`report_not_found`: the day was not rolled up; `report_expired`: older than a year")
    @blp.alt_response(422, schema=ErrorSchema,
                      description="`day_not_finished`: today or a future date; `validation_failed`: not a date")
    def get(self, args):
        """The market on one finished UTC day

        Per asset the day's open, high, low, close, change and point count,
        plus the market totals at the close. JSON, or CSV with `format=csv` or
        `Accept: text/csv` (a header row; numbers exact, in plain notation).
        """
        day = args["date"]
        as_csv = _wants_csv(args)

        def build() -> Rendered:
            candles, totals = services().history.daily_report(day)
            rows = report_rows(candles)
            if as_csv:
                return rendered_bytes(report_csv(rows, totals))
            return render({"date": day, "totals": totals, "data": rows}, _REPORT)

        # One URL, two representations: shared caches must key on Accept.
        if as_csv:
            disposition = f'attachment; filename="inventory-daily-{day.isoformat()}.csv"'
            return cached_json("reports", (day, "csv"), build, mimetype="text/csv",
                               cache_control=PAST_DAY_CACHE_CONTROL, headers={"Content-Disposition": disposition, "Vary": "Accept"})
        return cached_json("reports", (day, "json"), build, cache_control=PAST_DAY_CACHE_CONTROL, headers={"Vary": "Accept"})
