"""The request id: taken from a plain X-Request-ID header or made, echoed on the response and in logs."""

from __future__ import annotations

import os
import re

from flask import g, has_request_context, request

REQUEST_ID_HEADER = "X-Request-ID"
# Accept a caller's request id only when it is short and plain, so it is safe to
# echo in headers, bodies and log lines.
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def current_request_id() -> str:
    """Return this request's id, taking a valid X-Request-ID header or making one."""
    if not has_request_context():
        return "-"
    ctx = g._get_current_object()
    rid = getattr(ctx, "request_id", None)
    if rid is None:
        supplied = request.headers.get(REQUEST_ID_HEADER, "")
        # 128 random bits as 32 hex digits, as uuid4().hex gave, without building a UUID.
        rid = ctx.request_id = supplied if _REQUEST_ID_RE.fullmatch(supplied) else os.urandom(16).hex()
    return rid


def request_id_or_none() -> str | None:
    """This request's id, or None outside a request (what the log lines are stamped with)."""
    return current_request_id() if has_request_context() else None
