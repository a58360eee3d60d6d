"""The catalog export: every filter of list and search, streamed as CSV row by row from one snapshot."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator

from flask import current_app, request
from flask.views import MethodView
from werkzeug.exceptions import NotAcceptable

from ..bodies import plain_number
from ..errors import ErrorSchema
from ..extension import services
from ..responses import CACHE_CONTROL, STALE_WARNING
from .blueprint import blp
from .schemas import UNCATEGORIZED, ExportArgsSchema, search_query

COLUMNS = (
    "asset_id", "symbol", "name", "category", "categories", "status", "is_active", "price_stale",
    "current_price", "market_cap", "market_cap_rank", "volume_24h", "price_change_percentage_1h",
    "price_change_percentage_24h", "price_change_percentage_7d", "price_change_percentage_30d",
    "circulating_supply", "total_supply", "max_supply", "last_price_update",
    # Appended, so readers of the earlier columns by position keep working.
    "price_source", "price_check_status", "price_check_divergence_bps", "price_check_band_bps",
    "price_check_secondary_price", "price_checked_at",
)
_TEXT = ("symbol", "name")
# A cell starting with one of these is a formula to a spreadsheet (CSV injection):
# text cells get a leading apostrophe; numbers are never text cells.
_FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


def _cell(name: str, value) -> str:
    if value is None:
        return ""
    if name in _TEXT and value.startswith(_FORMULA_LEADS):
        return "'" + value
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "as_tuple"):  # Decimal: exact, plain notation, as the JSON bodies write it
        return plain_number(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(getattr(value, "value", value))


def _rows(assets, now, max_age: int) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def line(cells) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(cells)
        return buffer.getvalue()

    yield line(COLUMNS)
    for asset in assets:
        check = asset.check()
        secondary = check.secondary
        derived = {
            "category": asset.category or UNCATEGORIZED,
            "categories": ";".join(asset.categories),
            "is_active": asset.is_tradable(now, max_age),
            "price_stale": asset.price_stale(now, max_age),
            "price_source": asset.source_of_price,
            "price_check_status": check.status.value,
            "price_check_divergence_bps": check.divergence_bps,
            "price_check_band_bps": check.band_bps,
            "price_check_secondary_price": secondary.price if secondary else None,
            "price_checked_at": check.checked_at,
        }
        yield line([_cell(name, derived[name] if name in derived else getattr(asset, name)) for name in COLUMNS])


_DESCRIBED = ("A header row, then one row per asset in the order asked; Decimal values exact in plain notation, "
              "empty cells for null, `is_active`/`price_stale` as of the request.")


def _wants_csv(args) -> bool:
    return args.get("format") == "csv" or request.accept_mimetypes.best_match(["text/csv"]) == "text/csv"


@blp.route("/export")
class AssetExport(MethodView):
    @blp.arguments(ExportArgsSchema(), location="query")
    @blp.response(200, content_type="text/csv", description=_DESCRIBED)
    @blp.alt_response(406, schema=ErrorSchema, description="Neither `Accept: text/csv` nor `format=csv`")
    @blp.doc(responses={"200": {"description": _DESCRIBED, "content": {"text/csv": {"schema": {"type": "string"}, "example": (
        ",".join(COLUMNS) + "\r\nBTC,btc,Bitcoin,layer-1,layer-1,ACTIVE,true,false,97000.12,1900000000000,1,"
        "40000000000.1,0.1,2.5,-1.25,10,19800000,19800000,21000000,2026-11-25T12:00:00+00:00,"
        "coingecko,ok,3.1416,100,97030.6,2026-11-25T12:00:30+00:00\r\n"
    )}}}})
    def get(self, args):
        """Export the catalog as CSV, with every filter of list and search

        `Accept: text/csv` or `format=csv`. Streamed row by row from one
        catalog snapshot; no pages (`limit`/`cursor` do not apply). The ETag
        covers the snapshot, the filters and the rows' tradability.
        """
        if not _wants_csv(args):
            raise NotAcceptable("The export is CSV: send `Accept: text/csv` or `format=csv`.")
        service = services().catalog
        snapshot = service.catalog_snapshot()
        index, stale = snapshot.value, snapshot.stale
        now = service.clock()
        query = search_query(args, tradable=args["tradable"])
        order, _, _ = index.matching(query, now, service.max_age)
        assets = [index.assets[i] for i in order]
        digest = hashlib.blake2b(f"{index.fingerprint}|{query!r}|".encode(), digest_size=12)
        digest.update(bytes(a.is_tradable(now, service.max_age) + 2 * a.price_stale(now, service.max_age)
                            for a in assets))
        etag = digest.hexdigest()
        if request.if_none_match.contains_weak(etag):
            response = current_app.response_class(status=304)
        else:
            response = current_app.response_class(_rows(assets, now, service.max_age), mimetype="text/csv")
            stamp = now.strftime("%Y%m%dT%H%M%SZ")
            response.headers["Content-Disposition"] = f'attachment; filename="inventory-assets-{stamp}.csv"'
        response.set_etag(etag)
        response.headers["Cache-Control"] = CACHE_CONTROL
        if stale:
            response.headers["Warning"] = STALE_WARNING
        return response
