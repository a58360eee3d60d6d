"""JSON log lines carry the request id, route template, status and duration."""

import io
import json
import logging

from inventory.logs import RequestContext, json_formatter
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
