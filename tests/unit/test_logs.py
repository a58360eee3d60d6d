"""JSON log lines carry the request id, route template, status and duration."""

import io
import json
import logging
import re
from datetime import datetime, timezone
from decimal import Decimal

from inventory.telemetry.logs import RequestContext, json_formatter
from tests.conftest import build_asset


def test_each_request_logs_one_json_line_with_its_request_id(client, add_assets):
    add_assets(build_asset("BTC", 1, price="1"))
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    handler.addFilter(RequestContext())
    logger = logging.getLogger("inventory.request")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        response = client.get("/inventory/assets/btc", headers={"X-Request-ID": "abc-123"})
        client.get("/inventory/assets/ZZZZ")
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 2
    first = lines[0]
    assert response.headers["X-Request-ID"] == "abc-123"
    assert first["request_id"] == "abc-123"
    assert first["route"] == "/inventory/assets/<asset_id:asset_id>"
    assert first["status"] == 200 and first["level"] == "INFO" and first["logger"] == "inventory.request"
    assert first["duration_ms"] >= 0 and "time" in first
    assert lines[1]["status"] == 404 and lines[1]["request_id"] != "abc-123"


ACCESS_FIELDS = {"time", "level", "logger", "message", "method", "route", "status", "duration_ms", "token", "request_id"}


def test_the_access_line_has_exactly_the_access_fields(client, add_assets):
    add_assets(build_asset("BTC", 1, price="1"))
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    logger = logging.getLogger("inventory.request")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        client.get("/inventory/assets/BTC", headers={"X-Request-ID": "abc-1"})
        response = client.get("/inventory/assets/BTC")  # a cache hit logs the same line
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    for raw in lines:
        line = json.loads(raw)
        assert set(line) == ACCESS_FIELDS
        assert (line["message"], line["method"], line["status"], line["token"]) == ("request", "GET", 200, None)
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}", line["time"])
        assert isinstance(line["duration_ms"], float)
    generated = json.loads(lines[1])["request_id"]
    assert json.loads(lines[0])["request_id"] == "abc-1"
    assert generated == response.headers["X-Request-ID"] and re.fullmatch(r"[0-9a-f]{32}", generated)


def test_other_records_keep_their_extra_fields_and_tracebacks():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    logger = logging.getLogger("inventory.test_logs")
    logger.addHandler(handler)
    try:
        try:
            raise ValueError("boom")
        except ValueError:
            logger.error("failed %s", "x", exc_info=True,
                         extra={"at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc), "price": Decimal("1.5"),
                                "by_reason": {"a": [1]}})
    finally:
        logger.removeHandler(handler)
    (line,) = [json.loads(raw) for raw in stream.getvalue().splitlines()]
    assert (line["level"], line["logger"], line["message"]) == ("ERROR", "inventory.test_logs", "failed x")
    assert line["at"] == "2026-01-02T03:04:05+00:00" and line["price"] == "1.5" and line["by_reason"] == {"a": [1]}
    assert "ValueError: boom" in line["exc_info"] and "Traceback" in line["exc_info"]
