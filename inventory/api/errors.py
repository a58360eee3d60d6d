"""HTTP side of errors: the one JSON error body, and the handlers that render every error in it."""

from __future__ import annotations

import logging

import marshmallow as ma
from flask import Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError, NotFound
from werkzeug.http import HTTP_STATUS_CODES

from ..domain import errors as domain
from ..domain import history
from ..domain.errors import InventoryError, StoreError
from .converters import INVALID_ASSET_ID, malformed_asset_id
from .request_id import current_request_id

log = logging.getLogger(__name__)

# The `error` code of each domain error: part of the API contract, so spelled out
# here rather than derived from class names that may be renamed.
DOMAIN_CODES = {
    domain.AssetNotFound: "asset_not_found",
    domain.Unauthorized: "unauthorized",
    domain.Forbidden: "forbidden",
    domain.PreconditionRequired: "precondition_required",
    domain.TransitionNotAllowed: "transition_not_allowed",
    domain.InvalidRequest: "validation_failed",
    domain.InvalidCursor: "invalid_cursor",
    domain.VersionConflict: "precondition_failed",
    domain.StoreError: "store_unavailable",
    domain.PriceSourceError: "price_source_unavailable",
    history.ReportNotFound: "report_not_found",
    history.ReportExpired: "report_expired",
    history.DayNotFinished: "day_not_finished",
    history.NoRecommendations: "recommendations_not_ready",
    # quotes and valuations
    domain.UnknownAssets: "unknown_assets",
    domain.QuoteRefused: "quote_refused",
    domain.QuoteNotFound: "quote_not_found",
    domain.QuotesUnavailable: "quotes_unavailable",
}
# Errors raised by the HTTP layer (routing, webargs, the rate limiter, body limits), by status.
STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    428: "precondition_required",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}
# How long a client should wait before retrying a request that met a store outage.
STORE_RETRY_AFTER_SECONDS = 2
_MAX_LISTED_PROBLEMS = 3


class ErrorSchema(ma.Schema):
    """The error body, used for documentation; handlers build the same dict."""

    code = ma.fields.Integer(metadata={"description": "HTTP status code"})
    status = ma.fields.String(metadata={"description": "HTTP status name"})
    error = ma.fields.String(metadata={
        "description": "Stable machine-readable reason: " + ", ".join(sorted({*DOMAIN_CODES.values(), *STATUS_CODES.values()})),
        "example": "asset_not_found",
    })
    message = ma.fields.String(metadata={"description": "What went wrong, for humans"})
    errors = ma.fields.Dict(metadata={"description": "Per-field validation errors"})
    request_id = ma.fields.String(metadata={"description": "Echo of X-Request-ID"})


def status_code_name(status: int) -> str:
    """The `error` code of a status no domain error names."""
    return STATUS_CODES.get(status) or HTTP_STATUS_CODES.get(status, "error").lower().replace(" ", "_")


def domain_code(error: InventoryError) -> str:
    for cls in type(error).__mro__:
        if cls in DOMAIN_CODES:
            return DOMAIN_CODES[cls]
    return status_code_name(error.http_status)


def describe_problems(errors: dict) -> str:
    """`where.field: first message` for the first few validation problems, e.g. `query.limit: Must be ...`."""
    problems = []

    def walk(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, [*path, str(key)])
        elif isinstance(node, list) and node and all(isinstance(m, str) for m in node):
            problems.append(f"{'.'.join(path)}: {node[0].rstrip('.')}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, [*path, str(index)])
        elif isinstance(node, str):
            problems.append(f"{'.'.join(path)}: {node.rstrip('.')}")

    walk(errors, [])
    listed = "; ".join(problems[:_MAX_LISTED_PROBLEMS])
    more = len(problems) - _MAX_LISTED_PROBLEMS
    return listed + (f" (and {more} more in errors)" if more > 0 else "")


def error_response(status: int, message: str, errors: dict | None = None, headers=None, error: str | None = None):
    """Build the one error body shape: code, status, error, message, errors?, request_id."""
    body = {
        "code": status,
        "status": HTTP_STATUS_CODES.get(status, "Error"),
        "error": error or status_code_name(status),
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
    if isinstance(error, NotFound) and request.url_rule is None:
        if malformed_asset_id(current_app.url_map, request.path, request.method) is not None:
            return error_response(422, "Not an asset id. " + INVALID_ASSET_ID,
                                  {"path": {"asset_id": [INVALID_ASSET_ID]}}, error="validation_failed")
    data = getattr(error, "data", None) or {}
    errors = data.get("errors") or data.get("messages")
    # webargs nests validation errors by location ({"query": {...}}); keep that, it
    # tells the caller where the bad field was.
    message = data.get("message") or error.description or HTTP_STATUS_CODES.get(error.code, "")
    if errors and isinstance(errors, dict) and error.code == 422:
        # The generic "Unprocessable Entity" says nothing; name the fields at fault.
        message = f"Invalid request: {describe_problems(errors)}."
    # Keep what werkzeug adds for the status (Allow on a 405, say), not its content type.
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    headers.update(data.get("headers") or {})
    return error_response(error.code, message, errors, headers)


def handle_inventory_error(error: InventoryError):
    if error.http_status >= 500:
        log.warning("request failed: %s", error, exc_info=error.__cause__ is not None)
    headers = dict(error.headers or {})
    if isinstance(error, StoreError):
        headers.setdefault("Retry-After", str(STORE_RETRY_AFTER_SECONDS))
    return error_response(error.http_status, error.message, error.errors, headers, domain_code(error))


def handle_unexpected(error: BaseException):
    # The details go to the log, never to the caller.
    log.error("unhandled error", exc_info=error)
    return error_response(500, "Internal error.")


def register_error_handlers(app: Flask) -> None:
    """Map every error to the shared JSON shape (overrides flask-smorest's handler)."""
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(InventoryError, handle_inventory_error)
    app.register_error_handler(Exception, handle_unexpected)
