"""The stream endpoints: Server-Sent Events and WebSocket, over this process's Hub."""

from __future__ import annotations

import json
import logging
import select
import socket
import ssl
import time
from urllib.parse import urlsplit

from flask import Response, current_app, g, jsonify, request, stream_with_context
from flask.views import MethodView

from ..api.bodies import Blueprint
from ..api.errors import ErrorSchema, error_response
from ..api.extension import services
from ..domain import utcnow
from .hub import Closed, Full, Hub, Subscription
from .schemas import StreamArgsSchema

log = logging.getLogger(__name__)

blp = Blueprint("stream", __name__, description="Live prices and status changes (SSE and WebSocket)")

# What an SSE client waits before it reconnects (the `retry:` field), in ms.
SSE_RETRY_MS = 2000
RETRY_AFTER_SECONDS = 5
# How often an idle stream looks at its socket: a client that left frees its slot within this.
LIVENESS_TICK_SECONDS = 0.5


def get_hub() -> Hub:
    """This process's Hub, started (catalog loaded, poller running) on first use."""
    return services().hub.start()


def client_key() -> str | None:
    """Who a per-client stream limit counts: the token, else the client's address when a
    trusted proxy says which it is; None (no per-client limit) for anonymous clients that
    all arrive from the gateway's one address."""
    name = getattr(g, "token_name", None)
    if name:
        return "token:" + name
    return "addr:" + (request.remote_addr or "") if current_app.config["TRUSTED_PROXY_HOPS"] else None


def elsewhere():
    """On the API role (no streams here): a 307 to the stream role, or a 421 naming STREAM_BIND."""
    if current_app.config["STREAM_MAX_CONNECTIONS"]:
        return None
    public = current_app.config["STREAM_PUBLIC_URL"]
    if not public:
        return error_response(
            421, "Streams are not served on this port: they are the stream role's (STREAM_ROLE=1, "
                 "listening on STREAM_BIND). Set STREAM_PUBLIC_URL here to be redirected there.",
            error="stream_elsewhere")
    target = urlsplit(public)
    if not target.hostname:  # http://:8012: the host this request came to, on the stream role's port
        host = request.host.rpartition("]")[0] + "]" if request.host.startswith("[") else request.host.split(":")[0]
        target = target._replace(netloc=f"{host}:{target.port}" if target.port else host)
    query = request.query_string.decode()
    url = target.geturl().rstrip("/") + request.path + ("?" + query if query else "")
    # The body is for a client that does not follow redirects (curl without -L).
    response = jsonify({"message": f"Streams and the board are served by the stream role: {url} "
                                   "(EventSource follows this redirect; curl needs -L).", "location": url})
    response.status_code = 307
    response.headers["Location"] = url
    return response


def subscribe(args: dict, since: int | None) -> Subscription:
    """:raises Full:"""
    assets = set(args["assets"]) if args.get("assets") else None
    slugs = set(args.get("categories") or ())
    return get_hub().subscribe(assets, client_key(), since, (slugs, category_members(slugs)) if slugs else None)


def category_members(slugs: set[str]) -> set[str]:
    """The assets carrying any of these slugs (primary or not) now, from the read model.

    Later joins and leaves reach the stream as feed entries (the hub's snapshots of touched assets).
    """
    if not slugs:
        return set()
    index = services().catalog.catalog_snapshot().value
    return {a.asset_id for a in index.assets if slugs.intersection(a.categories)}


def full_response(exc: Full) -> Response:
    return error_response(
        503,
        "No room for another stream here; reconnect later or elsewhere.",
        error="stream_capacity" if str(exc) == "process" else "stream_client_limit",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )



def peer_gone(sock) -> bool:
    """The client closed its end: the socket reads as end-of-file (data it sent is not an end)."""
    if sock is None or isinstance(sock, ssl.SSLSocket):  # no peek through TLS: a failed write tells
        return False
    try:
        # poll, not select: select refuses descriptors above 1023, which a process holding
        # hundreds of streams reaches, and a refusal here would end a healthy stream.
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0)) and sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


def heartbeat_message(seq: int, interval: float) -> dict:
    return {"type": "heartbeat", "seq": seq, "time": utcnow().isoformat(), "interval": interval}


class Beats:
    """When the next visible heartbeat is due, and the position it may claim: the last seq
    whose messages have all gone out (a position marker sent, or the queue found empty)."""

    def __init__(self, interval: float, position: int):
        self.interval, self.position = interval, position
        self.due = time.monotonic() + interval

    def take(self) -> dict | None:
        if time.monotonic() < self.due:
            return None
        self.due = time.monotonic() + self.interval
        return heartbeat_message(self.position, self.interval)


def _sse(sub: Subscription, hub: Hub, heartbeat: float, sock):
    metrics = hub.metrics
    if metrics:
        metrics.opened("sse")
    yield f"retry: {SSE_RETRY_MS}\n\n"
    beats = Beats(heartbeat, sub.position)
    try:
        while True:
            # Read before waiting: if the wait then finds the queue empty, everything up to
            # here has been sent, so a heartbeat may carry it as the resume point.
            position = sub.position
            try:
                message = sub.next(timeout=min(heartbeat, LIVENESS_TICK_SECONDS))
            except Closed as exc:
                notice = {"type": "close", "reason": exc.reason, "reconnect": True,
                          "seq": beats.position}
                yield f"event: close\ndata: {json.dumps(notice)}\n\n"
                return
            if message is None:
                if peer_gone(sock):
                    return  # the slot is freed now, not at the next failed write
                beats.position = position
            elif message["type"] == "_position":
                # Carries the resume point once an entry's messages are all out (Last-Event-ID).
                beats.position = message["seq"]
                yield f"id: {message['seq']}\n\n"
            else:
                yield f"event: {message['type']}\ndata: {json.dumps(message, separators=(',', ':'))}\n\n"
                if metrics:
                    metrics.sent("sse")
            beat = beats.take()
            if beat is not None:
                yield f"event: heartbeat\nid: {beat['seq']}\ndata: {json.dumps(beat, separators=(',', ':'))}\n\n"
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
    @blp.alt_response(307, description="The API role: streams are served at STREAM_PUBLIC_URL")
    @blp.alt_response(421, schema=ErrorSchema, description="The API role, with no STREAM_PUBLIC_URL to send you to")
    def get(self, args):
        """Follow prices and status changes (Server-Sent Events)

        `text/event-stream`: `event:` is the message type, `data:` one JSON
        message; an `id:` line (the feed seq) follows the last message of each
        feed entry, so `Last-Event-ID` resumes exactly there. Comment lines are
        a `heartbeat` event every `STREAM_HEARTBEAT_SECONDS` carries the position
        (seq) the client is current as of, and the server time. On shutdown a
        `close` event asks the client to reconnect. On the API role this answers
        307 to the stream role (`STREAM_PUBLIC_URL`).
        """
        moved = elsewhere()
        if moved is not None:
            return moved
        since = args.get("since")
        if since is None and request.headers.get("Last-Event-ID", "").isdigit():
            since = int(request.headers["Last-Event-ID"])
        try:
            sub = subscribe(args, since)
        except Full as exc:
            return full_response(exc)
        hub = get_hub()
        heartbeat = current_app.config["STREAM_HEARTBEAT_SECONDS"]
        sock = request.environ.get("gunicorn.socket") or request.environ.get("werkzeug.socket")
        response = Response(stream_with_context(_sse(sub, hub, heartbeat, sock)), mimetype="text/event-stream")
        response.headers["Cache-Control"] = "no-store"
        # nginx and other proxies would otherwise hold events back in a buffer.
        response.headers["X-Accel-Buffering"] = "no"
        return response
