"""The daily roll-up and recommendations on DynamoDB Local: batches past one transaction, the fence, the TTL."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from inventory.domain import PricePoint
from inventory.domain.history import CANDLE_RETENTION_DAYS, day_start
from inventory.jobs.scheduler import build_history_job
from inventory.store import CandleStore, LeaseStore, PriceStore, ProfileStore
from inventory.store.dynamo import LeaseLost
from tests.conftest import build_asset

pytestmark = pytest.mark.integration

ASSETS = 60  # 120 candle items a day: more than one transaction of 100 actions


def test_roll_up_under_the_lease_then_a_lost_lease_writes_nothing(local_store, local_config):
    client, table = local_store.client, local_config.DYNAMODB_TABLE_NAME
    now = datetime.now(timezone.utc)
    days = [now.date() - timedelta(days=2), now.date() - timedelta(days=1)]
    prices = PriceStore(client, table, 30)
    for i in range(ASSETS):
        asset_id = f"A{i:02d}"
        assert local_store.create(build_asset(asset_id, i + 1, price="1", category="defi",
                                              market_cap=Decimal(10 ** 9 + i)))
        for n, day in enumerate(days):
            points = [PricePoint(day_start(day) + timedelta(hours=h), Decimal(i + 1) + Decimal(h) / 100 + n,
                                 Decimal(10 ** 9 + i), Decimal(5)) for h in range(24)]
            prices.record_points(asset_id, points, now)
    leases = LeaseStore(client, table)
    lease = leases.acquire("me", int(time.time() * 1000), 30_000)
    job = build_history_job(local_config.replace(CANDLE_CATCHUP_DAYS=2), client)

    report = job(lease.fence_check())

    assert report.days == days and report.candles == 2 * ASSETS
    candles = CandleStore(client, table)
    by_asset, totals = candles.day(days[1])
    assert len(by_asset) == ASSETS and totals.assets == ASSETS
    assert totals.market_cap == sum(Decimal(10 ** 9 + i) for i in range(ASSETS))
    a07 = candles.asset_days("A07", days[0], days[1])
    assert [(c.open, c.close, c.count) for c in a07] == [
        (Decimal(8), Decimal("8.23"), 24), (Decimal(9), Decimal("9.23"), 24)]
    # Kept a year from the day, whatever the fine points' retention.
    item = client.get_item(TableName=table, Key={"PK": {"S": "CANDLE#A07"}, "SK": {"S": days[0].isoformat()}})["Item"]
    assert int(item["expires_at"]["N"]) == int((day_start(days[0]) + timedelta(days=CANDLE_RETENTION_DAYS)).timestamp())
    # Every asset shares category and band and moves alike: each has a full top-K of peers.
    profile = ProfileStore(client, table).get("A00")
    assert len(profile.similar) == local_config.RECOMMEND_TOP_K
    assert len(profile.returns) == 1  # two days of closes: one return

    # GIVEN another instance took the lease over WHEN our job runs with its old fence THEN nothing is written.
    client.delete_item(TableName=table, Key={"PK": {"S": "DAY#" + days[1].isoformat()}, "SK": {"S": "~TOTALS"}})
    leases.release(lease)
    assert leases.acquire("other", int(time.time() * 1000), 30_000) is not None
    with pytest.raises(LeaseLost):
        job(lease.fence_check())
    assert candles.totals(days[1]) is None
