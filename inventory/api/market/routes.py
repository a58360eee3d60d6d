"""Market analytics: the overview and the movers, read from the catalog snapshot's precomputed figures."""

from __future__ import annotations

from decimal import Decimal

from flask.views import MethodView

from ...domain.market import WINDOWS, movers, overview
from ..bodies import Blueprint
from ..errors import ErrorSchema
from ..extension import services
from ..responses import Rendered, cached_json, catalog_version, render
from .schemas import (
    MoversArgsSchema,
    MoversEnvelopeSchema,
    OverviewArgsSchema,
    OverviewEnvelopeSchema,
    OverviewSchema,
)

blp = Blueprint(
    "market", __name__, url_prefix="/inventory/market", description="Market analytics over the catalog"
)

# The figures' own fields, and the body: `data` around them, like every other body.
_FIGURES = OverviewSchema().fields
_OVERVIEW = OverviewEnvelopeSchema()
_MOVERS = MoversEnvelopeSchema()


@blp.route("/overview")
class MarketOverview(MethodView):
    @blp.arguments(OverviewArgsSchema(), location="query")
    @blp.response(200, OverviewEnvelopeSchema)
    @blp.alt_response(503, schema=ErrorSchema, description="The store is unavailable")
    def get(self, args):
        """Market overview: totals, dominance, breadth, median change, tradable/stale/suspended counts

        Computed once per catalog snapshot (never a Scan per request); the
        totals equal exactly the sums over the rows the list returns for
        the same snapshot (`GET /inventory/assets?tradable=false`).
        """

        def build() -> Rendered:
            service = services().catalog
            snapshot = service.catalog_snapshot()
            index, stale = snapshot.value, snapshot.stale
            now = service.clock()
            figures = overview(index, service.max_age)
            body = {
                **{name: getattr(figures, name) for name in _FIGURES if hasattr(figures, name)},
                "tradable_count": figures.tradable_count(now),
                "stale_count": figures.stale_count(now, service.max_age),
            }
            return render({"data": body}, _OVERVIEW, stale)

        return cached_json("market", ("overview",), build, version=catalog_version())


@blp.route("/movers")
class MarketMovers(MethodView):
    @blp.arguments(MoversArgsSchema(), location="query")
    @blp.response(200, MoversEnvelopeSchema)
    @blp.alt_response(503, schema=ErrorSchema, description="The store is unavailable")
    def get(self, args):
        """Top gainers and losers among tradable assets over 24h or 7d

        Assets below `min_market_cap` or `min_volume_24h` are left out, so
        dust does not dominate (defaults from MOVERS_MIN_MARKET_CAP and
        MOVERS_MIN_VOLUME_24H: 10,000,000 and 1,000,000 USD).
        """
        config = services().catalog.config
        window, limit = args["window"], args["limit"]
        min_cap = args.get("min_market_cap", Decimal(config.MOVERS_MIN_MARKET_CAP))
        min_volume = args.get("min_volume_24h", Decimal(config.MOVERS_MIN_VOLUME_24H))

        def build() -> Rendered:
            service = services().catalog
            snapshot = service.catalog_snapshot()
            index, stale = snapshot.value, snapshot.stale
            gainers, losers = movers(index, service.max_age).top(window, limit, service.clock(), min_cap, min_volume)
            attribute = WINDOWS[window]

            def rows(assets):
                return [{**{k: getattr(a, k) for k in ("asset_id", "symbol", "name", "market_cap_rank", "current_price",
                                                       "market_cap", "volume_24h")}, "change": getattr(a, attribute)}
                        for a in assets]

            body = {
                "window": window, "min_market_cap": min_cap, "min_volume_24h": min_volume,
                "as_of": overview(index, service.max_age).as_of, "gainers": rows(gainers), "losers": rows(losers),
            }
            return render({"data": body}, _MOVERS, stale)

        return cached_json("market", ("movers", window, limit, min_cap, min_volume), build, version=catalog_version())
