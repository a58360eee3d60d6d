"""The daily report: JSON and CSV from the stored roll-up, caching, and the dates it refuses."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import simplejson

from inventory.jobs.candles import roll_up_days
from tests.unit.test_candles import D1, D2, TODAY, body, stores, two_days  # noqa: F401  (fixtures)


@pytest.fixture
def rolled(two_days, store, stores):  # noqa: F811
    prices, candles = stores
    roll_up_days(store, prices, candles, datetime.now(timezone.utc), catchup_days=3)


def test_daily_report_json_has_each_assets_ohlc_change_and_the_market_totals(client, rolled):
    response = client.get(f"/inventory/reports/daily?date={D2.isoformat()}")
    assert response.status_code == 200
    payload = body(response)
    assert payload["date"] == D2.isoformat()
    btc, eth = payload["data"]
    assert (btc["asset_id"], btc["open"], btc["high"], btc["low"], btc["close"]) == (
        "BTC", Decimal(101), Decimal(130), Decimal("0.0000002584652"), Decimal(120))
    assert (btc["change"], btc["change_percentage"], btc["count"]) == (Decimal(19), Decimal("18.8119"), 4)
    assert (eth["change"], eth["market_cap"]) == (Decimal(1), Decimal(501))
    totals = payload["totals"]
    assert (totals["assets"], totals["market_cap"], totals["volume_24h"]) == (2, Decimal(1504), Decimal(24))
    # A past day never changes: long-lived, revalidated by ETag.
    assert response.headers["Cache-Control"] == "max-age=3600"  # a backfill may still add to a past day
    again = client.get(f"/inventory/reports/daily?date={D2.isoformat()}", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


@pytest.mark.parametrize("how", [{"query": "&format=csv"}, {"headers": {"Accept": "text/csv"}}])
def test_daily_report_csv_by_param_or_accept(client, rolled, how):
    response = client.get(f"/inventory/reports/daily?date={D2.isoformat()}" + how.get("query", ""),
                          headers=how.get("headers", {}))
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == f'attachment; filename="inventory-daily-{D2.isoformat()}.csv"'
    assert "Accept" in response.headers["Vary"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["row"] for r in rows] == ["asset", "asset", "market"]
    assert rows[0]["low"] == "0.0000002584652" and rows[0]["change"] == "19"
    assert (rows[2]["count"], rows[2]["market_cap"], rows[2]["volume_24h"]) == ("2", "1504", "24")


def test_csv_and_json_of_one_day_are_cached_apart(client, rolled):
    url = f"/inventory/reports/daily?date={D1.isoformat()}"
    as_json, as_csv = client.get(url), client.get(url + "&format=csv")
    assert as_json.mimetype == "application/json" and as_csv.mimetype == "text/csv"
    assert as_json.headers["ETag"] != as_csv.headers["ETag"]
    assert client.get(url).mimetype == "application/json"


@pytest.mark.parametrize(
    ("day", "status", "code"),
    [
        (TODAY, 422, "day_not_finished"),
        (TODAY + timedelta(days=3), 422, "day_not_finished"),
        (TODAY - timedelta(days=400), 404, "report_expired"),
        (TODAY - timedelta(days=10), 404, "report_not_found"),
    ],
)
def test_days_without_a_report(client, rolled, day, status, code):
    response = client.get(f"/inventory/reports/daily?date={day.isoformat()}")
    assert (response.status_code, body(response)["error"]) == (status, code)


@pytest.mark.parametrize("query", ["", "date=2026-13-01", "date=yesterday", "date=2026-01-01&format=xml",
                                   "date=2026-01-01&limit=3"])
def test_bad_report_queries_are_422(client, query):
    response = client.get(f"/inventory/reports/daily?{query}")
    assert response.status_code == 422 and body(response)["error"] == "validation_failed"


def test_report_is_in_the_openapi_document(client):
    spec = simplejson.loads(client.get("/openapi.json").get_data())
    operation = spec["paths"]["/inventory/reports/daily"]["get"]
    assert {"application/json", "text/csv"} <= set(operation["responses"]["200"]["content"])
    assert {p["name"] for p in operation["parameters"]} == {"date", "format"}
