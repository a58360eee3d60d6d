"""Liveness and a detailed health report for operators."""

from __future__ import annotations

import functools
from collections.abc import Callable

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from ...services.health import WatchedAssets
from ...services.probe import ProbeResult
from ..errors import STORE_RETRY_AFTER_SECONDS
from ..extension import AppState, services

blp = Blueprint("health", __name__, url_prefix="/health", description="Liveness and health")


class LivenessSchema(ma.Schema):
    status = ma.fields.String(metadata={"example": "ok"})


class StoreHealthSchema(ma.Schema):
    reachable = ma.fields.Boolean()
    latency_ms = ma.fields.Float(allow_none=True)
    table_status = ma.fields.String(allow_none=True)


class LeaseSchema(ma.Schema):
    owner = ma.fields.String(allow_none=True)
    fence = ma.fields.Integer(allow_none=True)
    expires_at = ma.fields.DateTime(allow_none=True)
    held = ma.fields.Boolean(metadata={"description": "Someone holds an unexpired lease"})


class WatchedProblemSchema(ma.Schema):
    asset_id = ma.fields.String(metadata={"example": "BTC"})
    problem = ma.fields.String(metadata={
        "description": "stale (older than PRICE_MAX_AGE_SECONDS), no_price (ACTIVE but unpriced) "
        "or missing (a listed id not in the catalog)",
        "example": "stale",
    })
    last_price_update = ma.fields.DateTime(allow_none=True)


class WatchedSchema(ma.Schema):
    which = ma.fields.String(metadata={"description": "HEALTH_TOP_ASSETS, as understood", "example": "ranks 1-10"})
    checked = ma.fields.Integer(metadata={"example": 10})
    problems = ma.fields.List(ma.fields.Nested(WatchedProblemSchema), metadata={
        "description": "ACTIVE watched assets that are not tradable; SUSPENDED and INACTIVE are an operator's choice"
    })


class PriceHealthSchema(ma.Schema):
    last_success_at = ma.fields.DateTime(allow_none=True)
    age_seconds = ma.fields.Float(allow_none=True)
    max_age_seconds = ma.fields.Integer()
    last_error = ma.fields.String(allow_none=True)
    breaker_state = ma.fields.String(allow_none=True)
    watched = ma.fields.Nested(WatchedSchema, allow_none=True)


class SourceHealthSchema(ma.Schema):
    reachable = ma.fields.Boolean(metadata={"description": "The last ping of the price source answered"})
    latency_ms = ma.fields.Float(allow_none=True, metadata={"example": 84.2})
    checked_at = ma.fields.DateTime(metadata={"description": "When that ping was made (pings are cached)"})
    last_error = ma.fields.String(allow_none=True, metadata={
        "description": "The newest failed ping's message, kept after a recovery",
        "example": "price source unreachable: ConnectTimeout",
    })
    last_error_at = ma.fields.DateTime(allow_none=True)


class CrossCheckHealthSchema(ma.Schema):
    enabled = ma.fields.Boolean(metadata={"description": "CROSSCHECK_ENABLED; nothing else is reported when off"})
    source = ma.fields.String(metadata={"description": "The second source (CROSSCHECK_EXCHANGE)", "example": "binance"})
    reachable = ma.fields.Boolean(metadata={"description": "The last cross-check reached the second source"})
    last_success_at = ma.fields.DateTime(allow_none=True)
    age_seconds = ma.fields.Float(allow_none=True)
    last_attempt_at = ma.fields.DateTime(allow_none=True)
    last_error = ma.fields.String(allow_none=True, metadata={"example": "binance answered 503"})
    breaker_state = ma.fields.String(allow_none=True)
    counts = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), metadata={
        "description": "Assets by check status at the last cross-check", "example": {"ok": 61, "single_source": 41}})
    diverged = ma.fields.List(ma.fields.String(), metadata={
        "description": "Assets whose sources disagreed beyond their band at the last check", "example": []})
    pairs = ma.fields.Integer(metadata={"description": "Assets mapped to an exchange pair"})
    pairs_refreshed_at = ma.fields.DateTime(allow_none=True)


class ProblemSchema(ma.Schema):
    dependency = ma.fields.String(metadata={
        "description": "What is degraded: store, prices, price_source or price_check", "example": "prices",
    })
    code = ma.fields.String(metadata={
        "description": "Stable machine-readable cause: store_unreachable, no_refresh_yet, refresh_too_old, "
        "refresh_failed, watched_assets_untradable, watched_assets_diverged, ping_failed, "
        "secondary_source_failing",
        "example": "watched_assets_untradable",
    })
    message = ma.fields.String(metadata={"example": "watched assets without a tradable price: BTC (stale)"})
    assets = ma.fields.List(ma.fields.String(), metadata={
        "description": "The assets concerned (watched_assets_untradable, watched_assets_diverged)",
        "example": ["BTC"],
    })


class HealthSchema(ma.Schema):
    status = ma.fields.String(metadata={"description": "healthy, degraded or unhealthy"})
    reasons = ma.fields.List(ma.fields.String(), metadata={"description": "Each problem's message, for people"})
    problems = ma.fields.List(ma.fields.Nested(ProblemSchema), metadata={
        "description": "Why the status is not healthy, one entry per cause: match on dependency and code",
    })
    store = ma.fields.Nested(StoreHealthSchema)
    assets = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())
    prices = ma.fields.Nested(PriceHealthSchema)
    price_source = ma.fields.Nested(SourceHealthSchema)
    price_check = ma.fields.Nested(CrossCheckHealthSchema, metadata={
        "description": "The second price source and what the cross-checks found"})
    refresh_lease = ma.fields.Nested(LeaseSchema)


def install_health(app, state: AppState) -> None:
    """Parse the health settings (a bad one fails the start) and check the price source on each scrape.

    :raises ValueError: HEALTH_TOP_ASSETS is neither a count nor asset ids.
    """
    state.watched = WatchedAssets.parse(state.config.HEALTH_TOP_ASSETS)
    # Installed before gunicorn forks: each scrape checks with the probe of the process answering it.
    probe_on_scrape(app, lambda: services().probe.check())


@blp.route("")
class Liveness(MethodView):
    @blp.response(200, LivenessSchema)
    def get(self):
        """Liveness: the process answers (touches nothing else)"""
        return {"status": "ok"}


@blp.route("/detailed")
class Detailed(MethodView):
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthSchema, description="The store is unreachable")
    def get(self):
        """Detailed health: store, catalog counts, price freshness and the price source

        `healthy` or `degraded` answer 200, an unreachable store 503. Every cause
        is one entry of `problems` (`dependency`, a stable `code`, a `message`);
        `reasons` repeats the messages.
        """
        report = services().health.detailed()
        if report["status"] == "unhealthy":
            return report, 503, {"Retry-After": str(STORE_RETRY_AFTER_SECONDS)}
        return report


def probe_on_scrape(app, check: Callable[[], ProbeResult]) -> None:
    """Run the (cached) probe before each /metrics answer, so the probe gauge is fresh for the alert.

    Without it the gauge would move only when someone asks /health/detailed.
    """
    view = app.view_functions.get("prometheus_metrics")
    if view is None:
        return  # metrics disabled (the reloader): nothing to keep fresh

    @functools.wraps(view)
    def scrape(*args, **kwargs):
        check()
        return view(*args, **kwargs)

    app.view_functions["prometheus_metrics"] = scrape
