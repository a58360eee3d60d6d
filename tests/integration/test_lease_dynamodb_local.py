"""The refresh lease on DynamoDB Local: one holder, takeover after expiry, fenced writes."""

from __future__ import annotations

import time

import pytest

from inventory.jobs.refresh import refresh_prices
from inventory.jobs.scheduler import LeasedRefresher
from inventory.source.client import CoinGeckoClient
from inventory.store import LeaseStore, PriceStore, RefreshStateStore
from tests.fakes.coingecko import FakeCoinGecko, generate_catalog

pytestmark = pytest.mark.integration
TTL = 30_000


@pytest.fixture
def leases(local_store, local_config):
    return LeaseStore(local_store.client, local_config.DYNAMODB_TABLE_NAME)


def test_one_holder_then_takeover_after_expiry_bumps_the_fence(leases):
    a = leases.acquire("a", now_ms=1_000, ttl_ms=TTL)
    assert a is not None and a.fence == 1
    assert leases.acquire("b", now_ms=2_000, ttl_ms=TTL) is None
    a = leases.renew(a, now_ms=20_000, ttl_ms=TTL)
    assert a is not None and a.expires_ms == 50_000
    assert leases.acquire("b", now_ms=49_999, ttl_ms=TTL) is None
    b = leases.acquire("b", now_ms=50_000, ttl_ms=TTL)
    assert b is not None and b.fence == 2
    assert leases.renew(a, now_ms=50_001, ttl_ms=TTL) is None
    assert leases.current() == b


def test_release_hands_over_at_once(leases):
    a = leases.acquire("a", now_ms=1_000, ttl_ms=TTL)
    leases.release(a)
    assert leases.acquire("b", now_ms=1_001, ttl_ms=TTL).fence == 2


def test_a_holder_that_lost_the_lease_writes_nothing(leases, local_store, local_config):
    prices = PriceStore(local_store.client, local_config.DYNAMODB_TABLE_NAME, 30)
    with FakeCoinGecko(generate_catalog(30)) as cg:
        client = CoinGeckoClient(cg.url, calls_per_minute=0)
        a = leases.acquire("a", now_ms=1_000, ttl_ms=TTL)
        assert refresh_prices(client, local_store, prices, pages=1, fence=a.fence_check()).ok
        before = {x.asset_id: x.current_price for x in local_store.iter_all()}
        # GIVEN a paused holder whose lease expired and was taken over
        leases.acquire("b", now_ms=1_000 + TTL, ttl_ms=TTL)
        cg.tick()
        # WHEN it wakes up and refreshes with its old fence
        report = refresh_prices(client, local_store, prices, pages=1, fence=a.fence_check())
    # THEN its writes are refused and nothing stored changed
    assert not report.ok and "lease" in report.error
    assert {x.asset_id: x.current_price for x in local_store.iter_all()} == before


def test_refreshers_on_several_instances_refresh_once_per_interval(local_store, local_config):
    clock = [1_000_000]
    cfg = local_config.replace(REFRESH_LEASE_SECONDS=30, PRICE_REFRESH_INTERVAL_SECONDS=1)
    prices = PriceStore(local_store.client, local_config.DYNAMODB_TABLE_NAME, 30)
    with FakeCoinGecko(generate_catalog(30)) as cg:
        client = CoinGeckoClient(cg.url, calls_per_minute=0)

        def run(fence=None):
            return refresh_prices(client, local_store, prices, pages=1, fence=fence)

        instances = [
            LeasedRefresher(cfg, LeaseStore(local_store.client, cfg.DYNAMODB_TABLE_NAME),
                            RefreshStateStore(local_store.client, cfg.DYNAMODB_TABLE_NAME), run,
                            owner, clock_ms=lambda: clock[0])
            for owner in ("a", "b", "c")
        ]
        # One interval: all three tick, one refreshes.
        reports = [r.tick() for r in instances]
        assert sum(r is not None for r in reports) == 1
        assert cg.count() == 1
        holder = next(i for i, r in zip(instances, reports) if r is not None)
        # The holder dies (no more heartbeats); within the lease the others stay idle.
        others = [i for i in instances if i is not holder]
        clock[0] += 20_000
        assert [o.tick() for o in others] == [None, None]
        # Right after a refresh, a new holder does not refresh the same interval again.
        clock[0] += 15_000
        assert [o.tick() for o in others] == [None, None]
        assert sum(o.lease is not None for o in others) == 1
        assert cg.count() == 1
        # In the next interval exactly one of them refreshes.
        time.sleep(1)
        assert sum(o.tick() is not None for o in others) == 1
        assert cg.count() == 2
