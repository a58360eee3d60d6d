"""Liveness and a detailed health report for operators."""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from datetime import datetime, timezone

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from ...domain import StoreError
from ...services.health import WatchedAssets, price_problems
from ...services.probe import ProbeResult
from ..errors import STORE_RETRY_AFTER_SECONDS
from ..extension import AppState, services, state

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


class ProblemSchema(ma.Schema):
    dependency = ma.fields.String(metadata={
        "description": "What is degraded: store, prices or price_source", "example": "prices",
    })
    code = ma.fields.String(metadata={
        "description": "Stable machine-readable cause: store_unreachable, no_refresh_yet, refresh_too_old, "
        "refresh_failed, watched_assets_untradable, ping_failed",
        "example": "watched_assets_untradable",
    })
    message = ma.fields.String(metadata={"example": "watched assets without a tradable price: BTC (stale)"})
    assets = ma.fields.List(ma.fields.String(), metadata={
        "description": "The assets concerned (watched_assets_untradable only)", "example": ["BTC"],
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
    refresh_lease = ma.fields.Nested(LeaseSchema)


def install_health(app, state: AppState) -> None:
    """Parse the health settings (a bad one fails the start) and check the price source on each scrape.

    :raises ValueError: HEALTH_TOP_ASSETS is neither a count nor asset ids.
    """
    state.watched = WatchedAssets.parse(state.config.HEALTH_TOP_ASSETS)
    # Installed before gunicorn forks: each scrape checks with the probe of the process answering it.
    probe_on_scrape(app, lambda: services().probe.check())


class Report:
    """The detailed report being built, and the problems found so far."""

    def __init__(self):
        self.body: dict = {"status": "healthy", "reasons": [], "problems": []}

    def problem(self, dependency: str, code: str, message: str, assets: list[str] | None = None) -> None:
        entry = {"dependency": dependency, "code": code, "message": message}
        if assets is not None:
            entry["assets"] = assets
        self.body["problems"].append(entry)
        self.body["reasons"].append(message)
        if self.body["status"] == "healthy":
            self.body["status"] = "degraded"


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
        service = services().catalog
        now = service.clock()
        report = Report()
        body = report.body
        started = time.perf_counter()
        try:
            facts = service.health()
        except StoreError:
            report.problem("store", "store_unreachable", "store unreachable")
            body.update(status="unhealthy", store={"reachable": False, "latency_ms": None, "table_status": None})
            body["price_source"] = _source(report)
            return body, 503, {"Retry-After": str(STORE_RETRY_AFTER_SECONDS)}
        latency_ms = round((time.perf_counter() - started) * 1000 / 4, 2)
        total, active = service.counts(now)
        refresh, lease = facts.refresh, facts.lease
        body["store"] = {"reachable": True, "latency_ms": latency_ms, "table_status": facts.table_status}
        body["assets"] = {"total": total, "tradable": active}
        last = refresh.last_success_at
        age = (now - last).total_seconds() if last else None
        body["prices"] = {
            "last_success_at": last,
            "age_seconds": age,
            "max_age_seconds": service.max_age,
            "last_error": refresh.last_error,
            "breaker_state": refresh.breaker_state,
        }
        expires = datetime.fromtimestamp(lease.expires_ms / 1000, tz=timezone.utc) if lease else None
        body["refresh_lease"] = {
            "owner": lease.owner if lease else None,
            "fence": lease.fence if lease else None,
            "expires_at": expires,
            "held": bool(expires and expires > now),
        }
        if last is None:
            report.problem("prices", "no_refresh_yet", "no successful price refresh yet")
        elif age > service.max_age:
            report.problem("prices", "refresh_too_old", "prices are stale: last successful refresh too old")
        if refresh.last_error:
            report.problem("prices", "refresh_failed", f"last price refresh failed: {refresh.last_error}")
        body["prices"]["watched"] = _watched(report, service, now)
        body["price_source"] = _source(report)
        return body


def _watched(report: Report, service, now) -> dict | None:
    """Check the watched assets in the catalog snapshot (no Scan: the snapshot search already keeps)."""
    which = state().watched
    try:
        snapshot = service.catalog_snapshot()
    except StoreError:
        return None  # the store answered the facts a moment ago; the next call will tell
    checked, problems = price_problems(snapshot.value, which, now, service.max_age)
    if problems:
        listed = ", ".join(f"{p.asset_id} ({p.problem})" for p in problems)
        report.problem(
            "prices", "watched_assets_untradable", f"watched assets without a tradable price: {listed}",
            [p.asset_id for p in problems],
        )
    return {
        "which": which.describe(),
        "checked": checked,
        "problems": [dataclasses.asdict(p) for p in problems],
    }


def _source(report: Report) -> dict:
    result = services().probe.check()
    if not result.reachable:
        report.problem("price_source", "ping_failed", f"price source does not answer its ping: {result.last_error}")
    return {
        "reachable": result.reachable,
        "latency_ms": result.latency_ms,
        "checked_at": result.checked_at,
        "last_error": result.last_error,
        "last_error_at": result.last_error_at,
    }


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
