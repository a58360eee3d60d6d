"""The stream endpoints: Server-Sent Events and WebSocket, over this process's Hub."""

from __future__ import annotations

import json
import logging

from flask import Response, current_app, g, request, stream_with_context
from flask.views import MethodView

from ..api.bodies import Blueprint
from ..api.errors import ErrorSchema, error_response
from ..extensions import get_service, per_process
from .hub import Closed, Full, Hub, Subscription
from .schemas import StreamArgsSchema

log = logging.getLogger(__name__)

blp = Blueprint("stream", __name__, description="Live prices and status changes (SSE and WebSocket)")

# What an SSE client waits before it reconnects (the `retry:` field), in ms.
SSE_RETRY_MS = 2000
RETRY_AFTER_SECONDS = 5


def get_hub() -> Hub:
    """This process's Hub, started (catalog loaded, poller running) on first use."""
    return per_process("stream_hub").start()


def client_key() -> str:
    name = getattr(g, "token_name", None)
    return "token:" + name if name else "addr:" + (request.remote_addr or "")


def subscribe(args: dict, since: int | None) -> Subscription:
    """:raises Full:"""
    if current_app.config["STREAM_MAX_CONNECTIONS"] == 0:
        raise Full("process")  # the API role (gunicorn.conf.py): streams are the stream role's
    assets = set(args["assets"]) if args.get("assets") else None
    slugs = set(args.get("categories") or ())
    return get_hub().subscribe(assets, client_key(), since, (slugs, category_members(slugs)) if slugs else None)


def category_members(slugs: set[str]) -> set[str]:
    """The assets carrying any of these slugs (primary or not), from the cached catalog snapshot.

    Read once per subscribe: category writes are not in the feed, so an asset that joins a
    followed category later arrives after the client reconnects (or re-subscribes).
    """
    if not slugs:
        return set()
    index = get_service().catalog_snapshot().value
    return {a.asset_id for a in index.assets if slugs.intersection(a.categories)}


def full_response(exc: Full) -> Response:
    return error_response(
        503,
        "No room for another stream here; reconnect later or elsewhere.",
        error="stream_capacity" if str(exc) == "process" else "stream_client_limit",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )



def _sse(sub: Subscription, hub: Hub, heartbeat: float):
    metrics = hub.metrics
    if metrics:
        metrics.opened("sse")
    yield f"retry: {SSE_RETRY_MS}\n\n"
    try:
        while True:
            try:
                message = sub.next(timeout=heartbeat)
            except Closed as exc:
                notice = {"type": "close", "reason": exc.reason, "reconnect": True, "seq": sub.position}
                yield f"event: close\ndata: {json.dumps(notice)}\n\n"
                return
            if message is None:
                yield ": heartbeat\n\n"
            elif message["type"] == "_position":
                # Carries the resume point once an entry's messages are all out (Last-Event-ID).
                yield f"id: {message['seq']}\n\n"
            else:
                yield f"event: {message['type']}\ndata: {json.dumps(message, separators=(',', ':'))}\n\n"
                if metrics:
                    metrics.sent("sse")
    finally:
        hub.unsubscribe(sub)
        if metrics:
            metrics.closed("sse")


@blp.route("/inventory/assets/stream")
class AssetStream(MethodView):
    @blp.arguments(StreamArgsSchema, location="query")
    @blp.response(200, content_type="text/event-stream",
                  description="An event stream: a snapshot of each asset, then every change; each `data:` "
                              "is one StreamMessage (components/schemas)")
    @blp.alt_response(503, schema=ErrorSchema, description="No room for another stream (Retry-After)")
    def get(self, args):
        """Follow prices and status changes (Server-Sent Events)

        `text/event-stream`: `event:` is the message type, `data:` one JSON
        message; an `id:` line (the feed seq) follows the last message of each
        feed entry, so `Last-Event-ID` resumes exactly there. Comment lines are
        heartbeats. On shutdown a `close` event asks the client to reconnect.
        """
        since = args.get("since")
        if since is None and request.headers.get("Last-Event-ID", "").isdigit():
            since = int(request.headers["Last-Event-ID"])
        try:
            sub = subscribe(args, since)
        except Full as exc:
            return full_response(exc)
        hub = get_hub()
        heartbeat = current_app.config["STREAM_HEARTBEAT_SECONDS"]
        response = Response(stream_with_context(_sse(sub, hub, heartbeat)), mimetype="text/event-stream")
        response.headers["Cache-Control"] = "no-store"
        # nginx and other proxies would otherwise hold events back in a buffer.
        response.headers["X-Accel-Buffering"] = "no"
        return response
