"""Category read endpoints: every category's aggregates, and one category with its top assets."""

from __future__ import annotations

from flask.views import MethodView

from ...domain.taxonomy import SLUGS
from ..assets.schemas import AssetView
from ..bodies import Blueprint
from ..errors import ErrorSchema
from ..extension import services
from ..responses import Rendered, cached_json, catalog_version, render
from .schemas import (
    CategoryArgsSchema,
    CategoryEnvelopeSchema,
    CategoryListArgsSchema,
    CategoryListSchema,
)

blp = Blueprint(
    "categories", __name__, url_prefix="/inventory/categories",
    description="Categories and their market aggregates, from the catalog snapshot",
)

_LIST = CategoryListSchema()
_DETAIL = CategoryEnvelopeSchema()
_SLUG_RULE = "any(" + ", ".join(f'"{slug}"' for slug in SLUGS) + "):slug"


@blp.route("")
class CategoryList(MethodView):
    @blp.arguments(CategoryListArgsSchema(), location="query")
    @blp.response(200, CategoryListSchema)
    def get(self, args):
        """Every category with its counts and market totals

        Computed once per catalog snapshot (the one search uses), never by a
        Scan; sums are exact and equal the sums of the asset rows carrying the
        category. An asset with several categories counts in each.
        """

        def build() -> Rendered:
            categories = services().categories
            board, stale = categories.board()
            return render({"data": board.summaries(categories.catalog.clock())}, _LIST, stale)

        return cached_json("categories", "all", build, version=catalog_version())


@blp.route(f"/<{_SLUG_RULE}>", parameters=[{
    "in": "path", "name": "slug", "description": "A category slug (`GET /inventory/categories` lists them)",
    "example": "stablecoin",
}])
class CategoryDetail(MethodView):
    @blp.arguments(CategoryArgsSchema(), location="query")
    @blp.response(200, CategoryEnvelopeSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="Not a category slug")
    def get(self, args, slug):
        """One category: its counts and totals, and its top assets by market cap"""

        def build() -> Rendered:
            categories = services().categories
            board, stale = categories.board()
            catalog = categories.catalog
            now = catalog.clock()
            summary = board.summary(slug, now, top=args["limit"])
            body = {**vars(summary), "top_assets": [AssetView.of(a, now, catalog.max_age) for a in summary.top_assets]}
            return render({"data": body}, _DETAIL, stale)

        return cached_json("categories", (slug, args["limit"]), build, version=catalog_version())
