"""JSON log lines: one object per line with the request id, route, status and duration."""

from __future__ import annotations

import logging
import time

from flask import g, has_request_context, request
from pythonjsonlogger.json import JsonFormatter

from .api.request_id import current_request_id

log = logging.getLogger("inventory.request")
FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"


class RequestContext(logging.Filter):
    """Stamp every record made while serving a request with that request's id."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context() and not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return True


def json_formatter() -> logging.Formatter:
    return JsonFormatter(
        FIELDS, rename_fields={"asctime": "time", "levelname": "level", "name": "logger"}, timestamp=False
    )


def configure_logging(level: str) -> None:
    """Send the root logger's records to stderr as JSON lines (idempotent)."""
    root = logging.getLogger()
    root.setLevel(level.upper())
    # APScheduler logs two INFO lines per job run ("Running job", "executed
    # successfully"): noise every few seconds. Its warnings and errors stay.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))
    for handler in root.handlers:
        if getattr(handler, "_inventory", False):
            return
    handler = logging.StreamHandler()
    handler._inventory = True
    handler.setFormatter(json_formatter())
    handler.addFilter(RequestContext())
    root.addHandler(handler)


def log_request(response, started: float | None) -> None:
    """One access line for this request, with the route template rather than the raw path."""
    log.info(
        "request",
        extra={
            "method": request.method,
            "route": request.url_rule.rule if request.url_rule else "<unmatched>",
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2) if started else None,
            "token": g.get("token_name"),
        },
    )
