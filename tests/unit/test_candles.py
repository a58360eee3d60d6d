"""Daily candles: the roll-up job, its stored items, and the history endpoint's OHLC format."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import simplejson

from inventory.domain import PricePoint
from inventory.domain.history import candles_of, day_bounds, day_start
from inventory.jobs.candles import (
    finished_days,
    roll_up_backfilled,
    roll_up_days,
)
from inventory.jobs.scheduler import build_history_job
from inventory.store import CandleStore, PriceStore, mapping
from tests.conftest import build_asset

TODAY = datetime.now(timezone.utc).date()
D1, D2 = TODAY - timedelta(days=2), TODAY - timedelta(days=1)


def body(response):
    return simplejson.loads(response.get_data(), use_decimal=True)


def day_points(day: date, prices: list[str], cap: str = "1000") -> list[PricePoint]:
    """One point an hour from midnight; market cap and volume grow with the hour."""
    start = day_start(day)
    return [
        PricePoint(start + timedelta(hours=h), Decimal(p), Decimal(cap) + h, Decimal(10 + h))
        for h, p in enumerate(prices)
    ]


@pytest.fixture
def stores(moto_client, config):
    table = config.DYNAMODB_TABLE_NAME
    return PriceStore(moto_client, table, 30, write_concurrency=1), CandleStore(moto_client, table, 1)


@pytest.fixture
def two_days(add_assets, stores):
    """BTC on both finished days, ETH on the second only, DOGE never."""
    prices, _ = stores
    add_assets(build_asset("BTC", 1, price="100"), build_asset("ETH", 2, price="10"), build_asset("DOGE", 3))
    prices.record_points("BTC", day_points(D1, ["100", "105", "95.5", "101"]), datetime.now(timezone.utc))
    prices.record_points("BTC", day_points(D2, ["101", "0.0000002584652", "130", "120"]), datetime.now(timezone.utc))
    prices.record_points("ETH", day_points(D2, ["10", "11"], cap="500"), datetime.now(timezone.utc))


def test_candles_of_groups_points_by_bucket_oldest_first():
    points = day_points(D1, ["3", "1", "4", "1", "5"])
    two_hours = candles_of(points, 7200)
    assert [(c.open, c.high, c.low, c.close, c.count) for c in two_hours] == [
        (Decimal(3), Decimal(3), Decimal(1), Decimal(1), 2),
        (Decimal(4), Decimal(4), Decimal(1), Decimal(1), 2),
        (Decimal(5), Decimal(5), Decimal(5), Decimal(5), 1),
    ]
    assert two_hours[1].start == day_start(D1) + timedelta(hours=2)


def test_roll_up_stores_each_finished_day_once_with_totals(two_days, store, stores):
    prices, candles = stores
    now = datetime.now(timezone.utc)
    report = roll_up_days(store, prices, candles, now, catchup_days=3)
    assert report.days == [D1, D2] and report.candles == 3
    btc = candles.asset_days("BTC", D1, D2)
    assert [(c.open, c.high, c.low, c.close, c.count) for c in btc] == [
        (Decimal("100"), Decimal("105"), Decimal("95.5"), Decimal("101"), 4),
        (Decimal("101"), Decimal("130"), Decimal("0.0000002584652"), Decimal("120"), 4),
    ]
    by_asset, totals = candles.day(D2)
    assert sorted(by_asset) == ["BTC", "ETH"]
    # Market totals at each asset's close: BTC's 4th point (cap 1003), ETH's 2nd (cap 501).
    assert (totals.assets, totals.market_cap, totals.volume_24h) == (2, Decimal(1504), Decimal(24))
    # A second run finds both days rolled up and writes nothing.
    assert roll_up_days(store, prices, candles, now, catchup_days=3).days == []


def test_roll_up_skips_days_without_any_points(add_assets, store, stores):
    prices, candles = stores
    add_assets(build_asset("BTC", 1, price="100"))
    assert roll_up_days(store, prices, candles, datetime.now(timezone.utc), catchup_days=2).days == []
    assert candles.totals(D2) is None


def test_history_1d_ohlc_reads_stored_candles_and_todays_points(client, two_days, store, stores):
    prices, candles = stores
    roll_up_days(store, prices, candles, datetime.now(timezone.utc), catchup_days=3)
    # A point stored after the roll-up on a rolled day is not read again: the candle stands.
    prices.record_points("BTC", [PricePoint(day_start(D2) + timedelta(hours=5), Decimal(999))], day_start(D2))
    now = datetime.now(timezone.utc)
    prices.record_points("BTC", [PricePoint(now - timedelta(seconds=2), Decimal("7.5"))], now)
    start = int(day_start(D1).timestamp())
    response = client.get(f"/inventory/assets/BTC/history?interval=1d&format=ohlc&from={start}")
    payload = body(response)
    assert response.status_code == 200 and payload["format"] == "ohlc"
    rows = [(r["open"], r["high"], r["low"], r["close"], r["count"]) for r in payload["data"]]
    assert rows[:2] == [
        (Decimal("100"), Decimal("105"), Decimal("95.5"), Decimal("101"), 4),
        (Decimal("101"), Decimal("130"), Decimal("0.0000002584652"), Decimal("120"), 4),
    ]
    assert rows[2] == (Decimal("7.5"),) * 4 + (1,)
    assert b"0.0000002584652" in response.get_data()  # plain notation, every digit


def test_history_1d_ohlc_falls_back_to_points_before_the_roll_up(client, two_days):
    start = int(day_start(D1).timestamp())
    payload = body(client.get(f"/inventory/assets/BTC/history?interval=1d&format=ohlc&from={start}"))
    assert [(r["open"], r["close"], r["count"]) for r in payload["data"]] == [
        (Decimal("100"), Decimal("101"), 4), (Decimal("101"), Decimal("120"), 4)]


def test_history_1h_ohlc_and_default_close_format(client, two_days):
    start, end = int(day_start(D2).timestamp()), int(day_start(D2).timestamp()) + 4 * 3600
    ohlc = body(client.get(f"/inventory/assets/BTC/history?interval=1h&format=ohlc&from={start}&to={end}"))
    assert [r["close"] for r in ohlc["data"]] == [Decimal("101"), Decimal("0.0000002584652"), Decimal(130), Decimal(120)]
    assert all(r["count"] == 1 and "price" not in r for r in ohlc["data"])
    close = body(client.get(f"/inventory/assets/BTC/history?interval=1h&from={start}&to={end}"))
    assert close["format"] == "close" and "open" not in close["data"][0] and close["data"][0]["price"] == Decimal(101)


@pytest.mark.parametrize("query", ["format=candles", "format=ohlc&interval=1w", "fromat=ohlc"])
def test_history_bad_format_is_422(client, two_days, query):
    response = client.get(f"/inventory/assets/BTC/history?{query}")
    assert response.status_code == 422 and body(response)["error"] == "validation_failed"


def test_history_job_rolls_up_then_recommends_under_a_fence(moto_client, config, two_days, stores):
    _, candles = stores
    job = build_history_job(config.replace(CANDLE_CATCHUP_DAYS=3), moto_client)
    assert job(None).days == [D1, D2]
    assert candles.totals(D1) is not None
    assert job(None).days == []


def test_history_job_runs_only_while_the_lease_is_held(moto_client, config):
    from inventory.jobs.scheduler import LeasedRefresher, while_leased
    from inventory.store import LeaseStore, RefreshStateStore

    table = config.DYNAMODB_TABLE_NAME
    refresher = LeasedRefresher(config, LeaseStore(moto_client, table), RefreshStateStore(moto_client, table),
                                run=None, owner="me")
    fences = []
    tick = while_leased(refresher, fences.append)
    tick()
    assert fences == []  # no lease yet: nothing runs
    refresher.heartbeat()
    tick()
    assert [(f.owner, f.token) for f in fences] == [("me", refresher.lease.fence)]


# -- roll-up after a backfill ----------------------------------------------------

OLD = TODAY - timedelta(days=40)  # older than the fine points' 30 days: only backfilled points exist


def test_finished_days_leave_out_a_day_cut_into_and_today():
    noon = day_start(TODAY) + timedelta(hours=12)
    assert finished_days(noon - timedelta(days=3), noon) == [TODAY - timedelta(days=2), D2]
    assert finished_days(day_start(D1), noon) == [D1, D2]
    assert finished_days(day_start(TODAY), noon) == []


def test_backfill_roll_up_adds_the_asset_to_rolled_up_days_and_keeps_the_others(two_days, store, stores):
    prices, candles = stores
    now = datetime.now(timezone.utc)
    roll_up_days(store, prices, candles, now, catchup_days=1)  # D2: BTC and ETH
    # ETH's points are gone (expired), its stored candle stays; DOGE is backfilled on D1, D2 and an old day.
    for hour in (0, 1):
        at = mapping.to_iso(day_start(D2) + timedelta(hours=hour))
        prices.client.delete_item(TableName=prices.table_name, Key={"PK": {"S": "HISTORY#ETH"}, "SK": {"S": at}})
    assert prices.history("ETH", *day_bounds(D2), 10) == []
    for day in (OLD, D1, D2):
        prices.record_points("DOGE", day_points(day, ["2", "3"], cap="7"), now)

    report = roll_up_backfilled(store, prices, candles, "DOGE", [OLD, D1, D2], now, history_days=30)

    assert report.days == [OLD, D1, D2]
    # D1 was not rolled up: rolled up whole (BTC's refreshed points too), or the refresher would skip it.
    # OLD: no other asset's points can exist there; D2: DOGE joins the stored BTC and ETH.
    assert report.candles == 1 + 2 + 1
    assert sorted(candles.day(OLD)[0]) == ["DOGE"] and sorted(candles.day(D1)[0]) == ["BTC", "DOGE"]
    by_asset, totals = candles.day(D2)
    assert sorted(by_asset) == ["BTC", "DOGE", "ETH"] and by_asset["ETH"].close == Decimal("11")
    assert (totals.assets, totals.market_cap, totals.volume_24h) == (3, Decimal(1003 + 501 + 8), Decimal(13 + 11 + 11))
    assert [c.close for c in candles.asset_days("DOGE", OLD, D2)] == [Decimal(3)] * 3


def test_backfill_roll_up_twice_stores_the_same_candles(two_days, store, stores):
    prices, candles = stores
    now = datetime.now(timezone.utc)

    def stored():
        return [(candles.day(d)[0], candles.totals(d).assets, candles.totals(d).market_cap) for d in (D1, D2)]

    first = roll_up_backfilled(store, prices, candles, "BTC", [D1, D2], now, history_days=30)
    before = stored()
    again = roll_up_backfilled(store, prices, candles, "BTC", [D1, D2], now, history_days=30)

    assert (first.days, first.candles) == ([D1, D2], 3)
    assert again.days == [D1, D2] and again.candles == 2  # the days are rolled up: BTC's candles alone
    assert stored() == before
    # A day without the asset's points is left alone.
    assert roll_up_backfilled(store, prices, candles, "DOGE", [D1, D2], now, history_days=30).days == []
