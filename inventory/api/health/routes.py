"""Liveness and a detailed health report for operators."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from ...domain import StoreError
from ...extensions import get_service

blp = Blueprint("health", __name__, url_prefix="/health", description="Liveness and health")


class LivenessSchema(ma.Schema):
    status = ma.fields.String(metadata={"example": "ok"})


class StoreHealthSchema(ma.Schema):
    reachable = ma.fields.Boolean()
    latency_ms = ma.fields.Float(allow_none=True)
    table_status = ma.fields.String(allow_none=True)


class PriceHealthSchema(ma.Schema):
    last_success_at = ma.fields.DateTime(allow_none=True)
    age_seconds = ma.fields.Float(allow_none=True)
    max_age_seconds = ma.fields.Integer()
    last_error = ma.fields.String(allow_none=True)
    breaker_state = ma.fields.String(allow_none=True)


class LeaseSchema(ma.Schema):
    owner = ma.fields.String(allow_none=True)
    fence = ma.fields.Integer(allow_none=True)
    expires_at = ma.fields.DateTime(allow_none=True)
    held = ma.fields.Boolean(metadata={"description": "Someone holds an unexpired lease"})


class HealthSchema(ma.Schema):
    status = ma.fields.String(metadata={"description": "healthy, degraded or unhealthy"})
    reasons = ma.fields.List(ma.fields.String())
    store = ma.fields.Nested(StoreHealthSchema)
    assets = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())
    prices = ma.fields.Nested(PriceHealthSchema)
    refresh_lease = ma.fields.Nested(LeaseSchema)


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
        """Detailed health: store, catalog counts and price freshness

        `healthy` or `degraded` (with reasons) answer 200; an unreachable store
        answers 503.
        """
        service = get_service()
        now = service.clock()
        report = {"status": "healthy", "reasons": []}
        started = time.perf_counter()
        try:
            facts = service.health()
        except StoreError:
            report.update(
                status="unhealthy",
                reasons=["store unreachable"],
                store={"reachable": False, "latency_ms": None, "table_status": None},
            )
            return report, 503
        latency_ms = round((time.perf_counter() - started) * 1000 / 4, 2)
        total, active = facts.counts.counts(now, service.max_age)
        refresh, lease = facts.refresh, facts.lease
        report["store"] = {"reachable": True, "latency_ms": latency_ms, "table_status": facts.table_status}
        report["assets"] = {"total": total, "tradable": active}
        last = refresh.last_success_at
        age = (now - last).total_seconds() if last else None
        report["prices"] = {
            "last_success_at": last,
            "age_seconds": age,
            "max_age_seconds": service.max_age,
            "last_error": refresh.last_error,
            "breaker_state": refresh.breaker_state,
        }
        expires = datetime.fromtimestamp(lease.expires_ms / 1000, tz=timezone.utc) if lease else None
        report["refresh_lease"] = {
            "owner": lease.owner if lease else None,
            "fence": lease.fence if lease else None,
            "expires_at": expires,
            "held": bool(expires and expires > now),
        }
        if last is None:
            report["reasons"].append("no successful price refresh yet")
        elif age > service.max_age:
            report["reasons"].append("prices are stale: last successful refresh too old")
        if refresh.last_error:
            report["reasons"].append(f"last price refresh failed: {refresh.last_error}")
        if report["reasons"]:
            report["status"] = "degraded"
        return report
