"""Quote and valuation endpoints: reads that POST a body (public unless REQUIRE_AUTH_FOR_READS)."""

from __future__ import annotations

from flask import current_app, request
from flask.views import MethodView

from ..auth import read_operation
from ..bodies import Blueprint
from ..errors import ErrorSchema
from ..extension import services
from ..responses import CACHE_CONTROL, STALE_WARNING, render
from .schemas import (
    NoQuery,
    QuoteCheckSchema,
    QuoteIdSchema,
    QuoteRequestSchema,
    QuoteSchema,
    ValuationRequestSchema,
    ValuationSchema,
)

blp = Blueprint(
    "quotes", __name__, url_prefix="/inventory", description="Signed price quotes and portfolio valuations"
)

_QUOTE = QuoteSchema()
_CHECK = QuoteCheckSchema()
_VALUATION = ValuationSchema()

_QUOTE_EXAMPLE = {"items": [{"asset_id": "BTC", "quantity": "0.5"}, {"asset_id": "ETH"}]}
_VALUATION_EXAMPLE = {"holdings": [{"asset_id": "BTC", "quantity": "0.25"}, {"asset_id": "ETH", "quantity": 3}]}


def get_desk():
    """This worker's QuoteDesk."""
    return services().quotes


def _response(payload, schema, stale: bool = False):
    """The body with an ETag (304 when If-None-Match matches), like the cached reads."""
    rendered = render(payload, schema, stale)
    if "If-None-Match" in request.headers and request.if_none_match.contains_weak(rendered.etag):
        response = current_app.response_class(status=304)
    else:
        response = current_app.response_class(rendered.body, mimetype="application/json")
    response.headers["ETag"] = rendered.quoted_etag
    response.headers["Cache-Control"] = CACHE_CONTROL
    if stale:
        response.headers["Warning"] = STALE_WARNING
    return response


@blp.route("/quotes")
class QuoteIssue(MethodView):
    @blp.arguments(QuoteRequestSchema, example=_QUOTE_EXAMPLE)
    @blp.response(200, QuoteSchema)
    @blp.alt_response(409, schema=ErrorSchema, description=(
        "`quote_refused`: some assets are not tradable now; `errors.assets` maps each to "
        "suspended, inactive, no_price, stale_price or price_diverged (the second source disagrees beyond "
        "the band: `errors.price_checks` gives each one's divergence_bps and band_bps)"
    ))
    @blp.alt_response(422, schema=ErrorSchema, description=(
        "`unknown_assets` (`errors.assets` names them) or `validation_failed` (the item index is named)"
    ))
    @blp.alt_response(503, schema=ErrorSchema, description="`quotes_unavailable`: no QUOTE_SIGNING_KEY")
    @read_operation
    def post(self, body):
        """Quote current prices for 1-100 assets

        Prices come from one strongly consistent read of the store, never from
        a price older than the asset's staleness bound. The `quote_id` is
        signed (HMAC-SHA256): the order service can verify it without calling
        back (docs/api.md "Quotes and valuations"). A read: public unless
        REQUIRE_AUTH_FOR_READS.
        """
        quote = get_desk().quote([(item["asset_id"], item.get("quantity")) for item in body["items"]])
        response = _response(quote, _QUOTE)
        response.headers["Cache-Control"] = "no-store"
        return response


@blp.route("/quotes/<quote_id>")
class QuoteVerify(MethodView):
    @blp.arguments(NoQuery, location="query")
    @blp.response(200, QuoteCheckSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="`quote_not_found`: tampered, truncated or not ours")
    def get(self, _args, quote_id):
        """Verify a quote id

        200 with the quote it carries: `valid: true` until `expires_at`, then
        `valid: false, reason: "expired"`. A tampered id is a 404
        (`quote_not_found`).
        """
        return _checked(quote_id)


def _checked(quote_id: str):
    check = get_desk().check(quote_id)
    payload = {**{name: getattr(check.quote, name) for name in _QUOTE.fields}, "valid": check.valid,
               "reason": check.reason}
    return _response(payload, _CHECK)


@blp.route("/quotes/verify")
class QuoteVerifyLong(MethodView):
    @blp.arguments(QuoteIdSchema)
    @blp.response(200, QuoteCheckSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="`quote_not_found`: tampered, truncated or not ours")
    @read_operation
    def post(self, body):
        """Verify a quote id sent in the body

        The same answer as GET /inventory/quotes/{quote_id}, for ids too long
        for a URL (large baskets with long quantities: over about 4,000
        characters).
        """
        return _checked(body["quote_id"])


@blp.route("/valuations")
class Valuations(MethodView):
    @blp.arguments(ValuationRequestSchema, example=_VALUATION_EXAMPLE)
    @blp.response(200, ValuationSchema)
    @blp.alt_response(422, schema=ErrorSchema, description="A quantity or asset id is not valid (the item index is named)")
    @read_operation
    def post(self, body):
        """Value up to 1,000 holdings

        Each holding's price, value (exact), 24h change of the value, status and
        staleness, from one catalog snapshot; the total; unknown assets are
        listed, not fatal. A read: public unless REQUIRE_AUTH_FOR_READS.
        """
        valuation = get_desk().value([(h["asset_id"], h["quantity"]) for h in body["holdings"]])
        return _response(valuation, _VALUATION, valuation.stale)
