"""JSON log lines: one object per line with the request id, route, status and duration."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable

log = logging.getLogger("inventory.request")
# What every LogRecord carries by itself; anything else on a record came in
# through `extra` and becomes a field of the line.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class RequestContext(logging.Filter):
    """Stamp every record made while serving a request with that request's id.

    `lookup` is set by the app (configure_logging's `request_id`): this module knows no
    web framework, so the refresher and the CLI log through it too.
    """

    lookup: Callable[[], str | None] | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if self.lookup is not None and not hasattr(record, "request_id"):
            request_id = self.lookup()
            if request_id is not None:
                record.request_id = request_id
        return True


def _json_default(value) -> str:
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    return str(value)


# One encoder for every line: json.dumps(default=...) would build a new one per call.
_ENCODER = json.JSONEncoder(default=_json_default)


class JsonLines(logging.Formatter):
    """One JSON object per record: time, level, logger, message, then the record's `extra` fields.

    Our own instead of python-json-logger: the access log formats a line per
    request, and building the dict directly costs a fraction (BENCHMARKS.md).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._second = (None, "")  # (epoch second, its formatted date and time), one tuple so threads see a pair

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": self._time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES:
                line[key] = value
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        return _ENCODER.encode(line)

    def _time(self, record: logging.LogRecord) -> str:
        # logging's asctime ("2026-11-25 21:48:06,161"), with the strftime done
        # once per second rather than once per line.
        second = int(record.created)
        cached = self._second
        if cached[0] != second:
            cached = self._second = (second, time.strftime("%Y-%m-%d %H:%M:%S", self.converter(second)))
        return "%s,%03d" % (cached[1], record.msecs)


def json_formatter() -> logging.Formatter:
    return JsonLines()


def configure_logging(level: str, request_id: Callable[[], str | None] | None = None) -> None:
    """Send the root logger's records to stderr as JSON lines (idempotent); `request_id`
    (the app's) says which request a record was made for, None outside one."""
    if request_id is not None:
        RequestContext.lookup = staticmethod(request_id)
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


def log_request(method: str, route: str, status: int, duration_ms: float | None, token: str | None, request_id: str) -> None:
    """One access line for this request (route is the template, not the raw path)."""
    if not log.isEnabledFor(logging.INFO):
        return
    # makeRecord + handle is what log.info does, minus findCaller's walk up the
    # stack for a file and line this line never shows.
    log.handle(
        log.makeRecord(
            log.name,
            logging.INFO,
            "",
            0,
            "request",
            (),
            None,
            extra={
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": duration_ms,
                "token": token,
                "request_id": request_id,
            },
        )
    )
