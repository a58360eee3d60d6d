"""HTTP side of errors: the one JSON error body, and the handlers that render every error in it."""

from __future__ import annotations

import logging

import marshmallow as ma
from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.http import HTTP_STATUS_CODES

from ..domain.errors import InventoryError
from .request_id import current_request_id

log = logging.getLogger(__name__)


class ErrorSchema(ma.Schema):
    """The error body, used for documentation; handlers build the same dict."""

    code = ma.fields.Integer(metadata={"description": "HTTP status code"})
    status = ma.fields.String(metadata={"description": "HTTP status name"})
    message = ma.fields.String(metadata={"description": "What went wrong, for humans"})
    errors = ma.fields.Dict(metadata={"description": "Per-field validation errors"})
    request_id = ma.fields.String(metadata={"description": "Echo of X-Request-ID"})


def error_response(status: int, message: str, errors: dict | None = None, headers=None):
    """Build the one error body shape: code, status, message, errors?, request_id."""
    body = {
        "code": status,
        "status": HTTP_STATUS_CODES.get(status, "Error"),
        "message": message,
        "request_id": current_request_id(),
    }
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    if headers:
        response.headers.update(headers)
    return response


def handle_http_exception(error: HTTPException):
    """Render werkzeug/flask-smorest HTTP errors (404, 405, 413, 422 ...) in our shape."""
    if isinstance(error, InternalServerError):
        return handle_unexpected(error.original_exception or error)
    data = getattr(error, "data", None) or {}
    errors = data.get("errors") or data.get("messages")
    # webargs nests validation errors by location ({"query": {...}}); keep that, it
    # tells the caller where the bad field was.
    message = data.get("message") or error.description or HTTP_STATUS_CODES.get(error.code, "")
    # Keep what werkzeug adds for the status (Allow on a 405, say), not its content type.
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    headers.update(data.get("headers") or {})
    return error_response(error.code, message, errors, headers)


def handle_inventory_error(error: InventoryError):
    if error.http_status >= 500:
        log.warning("request failed: %s", error, exc_info=error.__cause__ is not None)
    return error_response(error.http_status, error.message, error.errors, error.headers)


def handle_unexpected(error: BaseException):
    # The details go to the log, never to the caller.
    log.error("unhandled error", exc_info=error)
    return error_response(500, "Internal error.")


def register_error_handlers(app: Flask) -> None:
    """Map every error to the shared JSON shape (overrides flask-smorest's handler)."""
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(InventoryError, handle_inventory_error)
    app.register_error_handler(Exception, handle_unexpected)
