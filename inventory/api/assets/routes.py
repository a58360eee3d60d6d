"""Asset read endpoints: list, search, detail."""

from __future__ import annotations

from flask.views import MethodView

from ...domain import InvalidCursor
from ...domain.search import SearchQuery, key_from_cursor, key_to_cursor
from ..cursors import decode_cursor, encode_cursor
from ..errors import ErrorSchema
from ..extension import services
from ..responses import Rendered, asset_state, cached_json, catalog_version, render
from .blueprint import blp
from .schemas import (
    INTERVALS,
    AssetEnvelopeSchema,
    AssetPageSchema,
    AssetView,
    HistoryArgsSchema,
    HistorySchema,
    ListArgsSchema,
    SearchArgsSchema,
    search_query,
)

# Pages leave the sparklines out unless asked (`sparkline=true`): up to 168 numbers an asset.
_PAGE = AssetPageSchema(exclude=("data.sparkline_7d",))
_PAGE_WITH_SPARKLINES = AssetPageSchema()
_DETAIL = AssetEnvelopeSchema()
_HISTORY = HistorySchema()


def _render_page(listing, next_cursor, sparklines: bool = False) -> Rendered:
    service = services().catalog
    now = service.clock()
    body = {
        "data": [AssetView.of(a, now, service.max_age) for a in listing.assets],
        "total_count": listing.total_count,
        "active_count": listing.active_count,
        "next_cursor": next_cursor,
    }
    return render(body, _PAGE_WITH_SPARKLINES if sparklines else _PAGE, listing.stale)


@blp.route("")
class AssetList(MethodView):
    @blp.arguments(ListArgsSchema(), location="query")
    @blp.response(200, AssetPageSchema)
    @blp.alt_response(400, schema=ErrorSchema, description="Tampered or foreign cursor")
    def get(self, args):
        """List assets in market-cap-rank order, or filtered and sorted

        Unranked assets come last; ties are broken by asset_id. Page with
        `next_cursor`. With `tradable` (the default; `active_only` is its earlier name) only assets tradable
        now are listed; the counts always cover every asset matching the
        filters. Answered from the catalog this process holds in memory
        (docs/read-model.md), like search.
        `coingecko_ids` looks assets up by their CoinGecko ids instead: one
        page, in the order asked.
        """
        if "coingecko_ids" in args:
            return _lookup(args)
        return _snapshot_page("list", search_query(args, tradable=args["tradable"]), args)


def _lookup(args):
    ids = tuple(args["coingecko_ids"])
    category = (args.get("category") or [None])[0]
    filters = (ids, args.get("status"), category, args["tradable"], args["sparkline"])

    def build() -> Rendered:
        listing = services().catalog.by_coingecko_ids(
            list(ids), status=args.get("status"), category=category, active_only=args["tradable"]
        )
        return _render_page(listing, None, args["sparkline"])

    return cached_json("list", ("coingecko_ids", filters), build, version=catalog_version())


def _snapshot_page(scope: str, query: SearchQuery, args):
    """One page of the snapshot ordering; its cursor pins the ordering its walk began in (search.WalkOrders)."""
    limit = args["limit"]
    filters = {"query": repr(query), "limit": limit}
    after, pin = None, None
    if "cursor" in args:
        position = decode_cursor(scope, filters, args["cursor"], arity=4)
        pin = position.pop()
        try:
            if not isinstance(pin, str):
                raise ValueError("malformed snapshot")
            after = key_from_cursor(position, query.sort)
        except ValueError:
            raise InvalidCursor() from None

    def build() -> Rendered:
        listing = services().catalog.search(query, limit, after, pin)
        key = listing.next_key
        cursor = encode_cursor(scope, filters, [*key_to_cursor(key), listing.snapshot]) if key else None
        return _render_page(listing, cursor, args["sparkline"])

    return cached_json(scope, (query, limit, after, pin, args["sparkline"]), build, version=catalog_version())


@blp.route("/search")
class AssetSearch(MethodView):
    @blp.arguments(SearchArgsSchema(), location="query")
    @blp.response(200, AssetPageSchema)
    @blp.alt_response(400, schema=ErrorSchema, description="Tampered or foreign cursor")
    def get(self, args):
        """Search and filter assets: ticker prefix or name, ranges, categories, multi-key sort

        `q` matches a ticker prefix or a name substring, case-insensitively;
        an exact ticker match comes first in the default (rank) order. Every
        filter composes with the others. A walk with `next_cursor` stays in
        the snapshot its first page came from for CURSOR_SNAPSHOT_SECONDS,
        so moving prices never repeat or skip an asset.
        """
        return _snapshot_page("search", search_query(args, tradable=args["tradable"]), args)


@blp.route("/<asset_id:asset_id>/history")
class AssetHistory(MethodView):
    @blp.arguments(HistoryArgsSchema(), location="query")
    @blp.response(200, HistorySchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No asset with this id")
    def get(self, args, asset_id):
        """Price history of one asset

        Points between `from` and `to` (ISO-8601 or epoch seconds; default the
        past day), oldest first: the last point of each `interval`, or with
        `format=ohlc` each interval's open/high/low/close and point count.
        Daily candles (`interval=1d`) are kept a year; finer points for
        PRICE_HISTORY_DAYS.
        """
        interval, fmt = args["interval"], args["format"]

        def build() -> Rendered:
            start, end, width = args.get("from_"), args.get("to"), INTERVALS[interval]
            if fmt == "ohlc":
                data = services().history.candles(asset_id, start, end, width)
            else:
                data = services().catalog.history(asset_id, start, end, width)
            return render({"asset_id": asset_id, "interval": interval, "format": fmt, "data": data}, _HISTORY)

        return cached_json("history", (asset_id, interval, fmt, args.get("from_"), args.get("to")), build)


@blp.route("/<asset_id:asset_id>")
class AssetDetail(MethodView):
    @blp.response(200, AssetEnvelopeSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No asset with this id, or not an asset id")
    def get(self, asset_id):
        """Get one asset by id

        The id is trimmed and matched case-insensitively (`btc` finds `BTC`).
        Inactive and suspended assets are returned with their status.
        """

        service = services().catalog
        asset = service.get_asset(asset_id)
        now = service.clock()

        def build() -> Rendered:
            return render({"data": AssetView.of(asset, now, service.max_age)}, _DETAIL, version=asset.version)

        # Keyed by everything the body renders: it never outlives the state it shows.
        return cached_json("asset", asset_id, build, version=asset_state(asset, now, service.max_age))
