"""The InventoryError tree and the one JSON error shape every response uses."""

from __future__ import annotations

import logging
import re
import uuid

import marshmallow as ma
from flask import Flask, g, has_request_context, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.http import HTTP_STATUS_CODES

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
# Accept a caller's request id only when it is short and plain, so it is safe to
# echo in headers, bodies and log lines.
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class InventoryError(Exception):
    """Base of every error the service raises on purpose; each maps to one HTTP status."""

    http_status = 500
    message = "Internal error."

    headers: dict = {}

    def __init__(self, message: str | None = None, *, errors: dict | None = None, headers: dict | None = None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.errors = errors
        if headers:
            self.headers = headers


class Unauthorized(InventoryError):
    http_status = 401
    message = "A valid bearer token is required."


class Forbidden(InventoryError):
    http_status = 403
    message = "This token may not do that."


class PreconditionRequired(InventoryError):
    http_status = 428
    message = "Send If-Match with the asset's current ETag."


class TransitionNotAllowed(InventoryError):
    http_status = 409
    message = "That status change is not allowed."


class AssetNotFound(InventoryError):
    http_status = 404
    message = "Asset not found."


class InvalidRequest(InventoryError):
    """A well-formed request whose values are not acceptable."""

    http_status = 422
    message = "Invalid request."


class InvalidCursor(InventoryError):
    http_status = 400
    message = "The cursor is not valid for this request."


class VersionConflict(InventoryError):
    """A conditional write lost against a newer version of the item."""

    http_status = 412
    message = "The resource was changed by someone else."


class StoreError(InventoryError):
    """DynamoDB failed or could not be reached; the cause stays in the logs."""

    http_status = 503
    message = "The data store is unavailable; try again shortly."


class PriceSourceError(InventoryError):
    """The price source failed in a way the caller should hear about."""

    http_status = 503
    message = "The price source is unavailable."


class ErrorSchema(ma.Schema):
    """The error body, used for documentation; handlers build the same dict."""

    code = ma.fields.Integer(metadata={"description": "HTTP status code"})
    status = ma.fields.String(metadata={"description": "HTTP status name"})
    message = ma.fields.String(metadata={"description": "What went wrong, for humans"})
    errors = ma.fields.Dict(metadata={"description": "Per-field validation errors"})
    request_id = ma.fields.String(metadata={"description": "Echo of X-Request-ID"})


def current_request_id() -> str:
    """Return this request's id, taking a valid X-Request-ID header or making one."""
    if not has_request_context():
        return "-"
    rid = g.get("request_id")
    if rid is None:
        supplied = request.headers.get(REQUEST_ID_HEADER, "")
        rid = supplied if _REQUEST_ID_RE.fullmatch(supplied) else uuid.uuid4().hex
        g.request_id = rid
    return rid


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
