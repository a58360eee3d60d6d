"""WebSocket endpoint GET /inventory/stream (flask-sock): the same feed and messages as SSE."""

from __future__ import annotations

import json
import logging
import socket

import marshmallow as ma
from flask import Blueprint, current_app, g, request
from flask_sock import Sock
from simple_websocket import ConnectionClosed

from ..api.errors import error_response
from ..domain import ASSET_ID_RE
from ..domain.taxonomy import SLUGS
from .hub import Closed, Full, Subscription
from .schemas import StreamArgsSchema
from .views import Beats, category_members, elsewhere, get_hub, subscribe

log = logging.getLogger(__name__)

ws_blp = Blueprint("stream_ws", __name__)
sock = Sock()

# RFC 6455 close codes: 1012 service restart (reconnect), 1013 try again later (full), 1008 policy (too slow).
CLOSE_CODES = {"shutdown": 1012, "slow": 1008}
CLOSE_FULL = 1013
# How long a closing stream waits for the client to answer its close frame.
CLOSE_ANSWER_SECONDS = 1.0
# How long the loop waits for a message before it looks at what the client sent.
_TICK_SECONDS = 0.2
_ARGS = StreamArgsSchema()


@ws_blp.before_request
def validate_query():
    # Before the upgrade, so a bad query is the one JSON error shape (422), not a closed socket.
    moved = elsewhere()
    if moved is not None:
        return moved  # the API role: the board and the socket are the stream role's
    if request.endpoint != "stream_ws.stream_socket":
        return None
    try:
        g.stream_args = _ARGS.load(request.args)
    except ma.ValidationError as exc:
        return error_response(422, "The query string is not valid.", errors={"query": exc.messages},
                              error="validation_failed")
    return None


@sock.route("/inventory/stream", bp=ws_blp)
def stream_socket(ws):
    """Follow prices and status changes over a WebSocket (query and subscribe/unsubscribe messages)."""
    try:
        sub = subscribe(g.stream_args, g.stream_args.get("since"))
    except Full as exc:
        ws.close(reason=CLOSE_FULL, message=f"no room for another stream ({exc}); retry later")
        return
    hub = get_hub()
    metrics = hub.metrics
    if metrics:
        metrics.opened("websocket")
    beats = Beats(current_app.config["STREAM_HEARTBEAT_SECONDS"], sub.position)
    try:
        while True:
            position = sub.position  # as in the SSE loop: all sent once the wait finds nothing
            try:
                message = sub.next(timeout=_TICK_SECONDS)
            except Closed as exc:
                ws.send(json.dumps({"type": "close", "reason": exc.reason, "reconnect": True, "seq": beats.position}))
                ws.close(reason=CLOSE_CODES.get(exc.reason, 1011), message=exc.reason)
                _let_go(ws)
                return
            if message is None:
                beats.position = position
            else:
                if message["type"] == "_position":
                    message = {"type": "checkpoint", "seq": message["seq"]}
                    beats.position = message["seq"]
                ws.send(json.dumps(message, separators=(",", ":")))
                if metrics:
                    metrics.sent("websocket")
            beat = beats.take()
            if beat is not None:
                ws.send(json.dumps(beat, separators=(",", ":")))
            incoming = ws.receive(timeout=0)
            while incoming is not None:
                _handle(ws, sub, incoming)
                incoming = ws.receive(timeout=0)
    except ConnectionClosed:
        pass
    finally:
        hub.unsubscribe(sub)
        if metrics:
            metrics.closed("websocket")


def _let_go(ws) -> None:
    """Wait briefly for the client's answer to our close, then end the socket: otherwise the
    socket's reader thread lingers until its next ping (STREAM_HEARTBEAT_SECONDS), and a
    stopping worker waits for it."""
    ws.thread.join(timeout=CLOSE_ANSWER_SECONDS)
    if ws.thread.is_alive():
        try:
            ws.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _handle(ws, sub: Subscription, raw) -> None:
    """Apply one client message: {"op": "subscribe" | "unsubscribe", "assets": [...], "categories": [...]}."""
    try:
        message = json.loads(raw)
        op = message["op"]
        assets, slugs = message.get("assets", []), message.get("categories", [])
        if op not in ("subscribe", "unsubscribe") or not isinstance(assets, list) or not isinstance(slugs, list):
            raise ValueError(op)
        if not (assets or slugs):
            raise ValueError("nothing named")
        if not all(isinstance(a, str) and ASSET_ID_RE.match(a) for a in assets):
            raise ValueError("assets")
        if not all(isinstance(c, str) and c in SLUGS for c in slugs):
            raise ValueError("categories")
    except (ValueError, KeyError, TypeError, AttributeError):
        ws.send(json.dumps({"type": "error", "error": "validation_failed",
                            "message": 'Send {"op": "subscribe" | "unsubscribe", "assets": ["BTC", ...], '
                                       '"categories": ["layer-1", ...]} (either list or both).'}))
        return
    categories = None
    if slugs:
        followed = sub.categories | set(slugs) if op == "subscribe" else sub.categories - set(slugs)
        categories = (followed, category_members(followed))
    if op == "subscribe":
        get_hub().change_filter(sub, add=set(assets), categories=categories)
    else:
        get_hub().change_filter(sub, remove=set(assets), categories=categories)


@ws_blp.get("/board")
def board():
    """The live board: the catalog with prices updating from the SSE stream (self-hosted, no CDN)."""
    # A plain body, not a file passthrough: the CSP hook reads the page to hash inline scripts.
    with current_app.open_resource("static/board/index.html") as page:
        return current_app.response_class(page.read(), mimetype="text/html")
