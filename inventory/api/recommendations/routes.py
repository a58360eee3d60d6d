"""Recommendation endpoints: assets similar to one, and assets that would diversify holdings."""

from __future__ import annotations

from flask.views import MethodView

from ..auth import read_operation
from ..bodies import Blueprint
from ..errors import ErrorSchema
from ..extension import services
from ..responses import Rendered, cached_json, render
from .schemas import (
    RecommendationsRequestSchema,
    RecommendationsSchema,
    SimilarArgsSchema,
    SimilarSchema,
)

blp = Blueprint("recommendations", __name__, url_prefix="/inventory",
                description="Recommendations from stored daily history")

_SIMILAR = SimilarSchema()


def _view(chosen) -> list[dict]:
    return [
        {"asset_id": a.asset_id, "symbol": a.symbol, "name": a.name, "category": a.category,
         "score": s.score, "reasons": list(s.reasons)}
        for s, a in chosen
    ]


@blp.route("/assets/<asset_id:asset_id>/similar")
class SimilarAssets(MethodView):
    @blp.arguments(SimilarArgsSchema, location="query")
    @blp.response(200, SimilarSchema)
    @blp.alt_response(404, schema=ErrorSchema, description=(
        "`asset_not_found`; `recommendations_not_ready`: none computed for this asset (not tradable, "
        "or the refresher has not run the daily recommendations yet)"))
    def get(self, args, asset_id):
        """Assets like this one

        By category overlap, market-cap band and correlation of daily returns
        over the last RECOMMEND_WINDOW_DAYS stored daily closes; each with a
        score and its reasons. Computed by the refresher after each daily
        roll-up, never per request; only assets tradable now are returned.
        """
        limit = args["limit"]

        def build() -> Rendered:
            asset, chosen = services().history.similar(asset_id, limit)
            return render({"asset_id": asset.asset_id, "data": _view(chosen)}, _SIMILAR)

        return cached_json("recommendations", (asset_id, limit), build)


@blp.route("/recommendations")
class Recommendations(MethodView):
    @blp.arguments(RecommendationsRequestSchema, example={"holdings": [{"asset_id": "BTC"}, {"asset_id": "ETH"}]})
    @blp.response(200, RecommendationsSchema)
    @read_operation
    def post(self, body):
        """Assets that would diversify these holdings

        Tradable assets with a low correlation of daily returns to the
        holdings and categories the holdings lack, each with its reasons;
        the same data always gives the same answer (ties broken by asset_id).
        A read: public unless REQUIRE_AUTH_FOR_READS.
        """
        ids = list(dict.fromkeys(h["asset_id"] for h in body["holdings"]))
        chosen, unknown, without_history = services().history.diversify(ids, body["limit"])
        return {"data": _view(chosen), "unknown": unknown, "without_history": without_history}
