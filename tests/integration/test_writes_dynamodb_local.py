"""Operator writes and refreshes on DynamoDB Local: each lands once, and every read model applies it exactly."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from inventory.domain import (
    MAX_ATOMIC_CHANGES,
    Asset,
    AssetStatus,
    utcnow,
)
from inventory.services.catalog import CatalogService
from inventory.services.writes import CatalogWrites
from inventory.store import Stores
from inventory.store.dynamo import count_calls
from tests.conftest import build_asset

pytestmark = pytest.mark.integration

ACTIVE, INACTIVE, SUSPENDED = AssetStatus.ACTIVE, AssetStatus.INACTIVE, AssetStatus.SUSPENDED


@pytest.fixture
def service(local_store, local_config) -> CatalogWrites:
    return CatalogWrites(CatalogService(Stores.build(local_store.client, local_config), local_config))


@pytest.fixture
def seeded(local_store, local_config):
    """A catalog of every status, two categories and none, fresh, stale and no prices; counts rebuilt."""
    prices = [("1.5", 0), ("2.5", 3600), (None, 0)]
    assets = [
        build_asset(f"A{i:02d}", i + 1, price=prices[i % 3][0], age_seconds=prices[i % 3][1],
                    status=[ACTIVE, ACTIVE, SUSPENDED, INACTIVE][i % 4], category=["defi", "meme", None][i % 3])
        for i in range(60)
    ]
    created, _ = local_store.create_many(assets)
    assert len(created) == len(assets)
    return assets


def assert_models_equal_the_store(service, store):
    """The writer's model (read-your-writes, then the feed) and a model that only read the
    feed both hold exactly what a fresh load of the store holds."""
    from inventory.readmodel.model import build_read_model

    stored = {a.asset_id: a for a in store.iter_all()}
    other = build_read_model(service.stores, service.config).start()
    for model in (service.model, other):
        model.sync()
        assert {a.asset_id: a for a in model.view().assets} == stored
    return stored


def test_status_changes_bulk_changes_and_imports_reach_every_read_model_exactly(service, seeded, local_store):
    # GIVEN a seeded catalog, loaded by the writer's model
    service.model.start()
    assets = {a.asset_id: local_store.get(a.asset_id) for a in seeded}
    # WHEN operators change single statuses (priced, unpriced, stale, every transition)...
    for asset_id, to in [("A00", SUSPENDED), ("A01", INACTIVE), ("A02", ACTIVE), ("A03", ACTIVE), ("A00", ACTIVE)]:
        current = local_store.get(asset_id)
        service.change_status(asset_id, to, "test", current.version, "ops", "req-1")
    # ...apply an atomic and a per-item bulk change...
    atomic = [{"asset_id": f"A{i:02d}", "status": SUSPENDED, "expected_version": None} for i in range(4, 40, 4)]
    results = service.bulk_status(atomic, True, "bulk", "ops", "req-2")
    assert {r["result"] for r in results} == {"applied"}
    per_item = [{"asset_id": f"A{i:02d}", "status": INACTIVE} for i in range(41, 60, 2)]
    results = service.bulk_status(per_item, False, "bulk", "ops", "req-3")
    assert "applied" in {r["result"] for r in results}
    # ...and import new assets and update existing ones (category, price)
    now = utcnow()
    imports = [
        Asset(asset_id="NEW1", symbol="new1", name="New 1", category="defi", current_price=Decimal("2"),
              last_price_update=now),
        Asset(asset_id="NEW2", symbol="new2", name="New 2"),
        Asset(asset_id="A05", symbol="a05", name="A05 coin", category="meme"),
        Asset(asset_id="A02", symbol="a02", name="A02 coin", current_price=Decimal("7"), last_price_update=now),
    ]
    outcomes = [service.import_asset(a, True, "admin") for a in imports]
    assert outcomes == ["created", "created", "updated", "updated"]
    # THEN the writer's model and another one hold exactly what the store holds
    assert len(assert_models_equal_the_store(service, local_store)) == len(assets) + 2


def test_a_status_change_costs_the_same_calls_whatever_the_catalog_size(service, seeded, local_store):
    current = local_store.get("A00")
    with count_calls(local_store.client) as calls:
        service.change_status("A00", SUSPENDED, "", current.version, "ops", "req")
    # read, the live feed's seq reservation, one transaction (asset, audit, feed
    # entry); no read back (the answer is what the transaction wrote), no index read
    assert calls["calls"] == 3


def test_concurrent_changes_all_land_and_reach_every_model(service, seeded, local_store):
    # GIVEN eight operators, each changing a different asset at the same moment
    targets = [a.asset_id for a in seeded if a.status is ACTIVE][:8]
    barrier = threading.Barrier(len(targets))
    errors = []

    def operator(asset_id):
        try:
            version = local_store.get(asset_id).version
            barrier.wait()
            service.change_status(asset_id, SUSPENDED, "race", version, "ops", f"req-{asset_id}")
        except Exception as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=operator, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # THEN every change applied, and every model holds each of them
    assert errors == []
    assert all(local_store.get(t).status is SUSPENDED for t in targets)
    assert_models_equal_the_store(service, local_store)


def test_an_atomic_change_of_the_most_items_fits_one_transaction(service, local_store, local_config):
    assets = [build_asset(f"M{i:02d}", i + 1, price="1", category="defi") for i in range(MAX_ATOMIC_CHANGES)]
    local_store.create_many(assets)
    items = [{"asset_id": a.asset_id, "status": SUSPENDED} for a in assets]
    results = service.bulk_status(items, True, "all", "ops", "req")
    assert {r["result"] for r in results} == {"applied"}
    stored = assert_models_equal_the_store(service, local_store)
    assert sum(a.status is SUSPENDED for a in stored.values()) == MAX_ATOMIC_CHANGES


def test_a_status_change_during_a_refresh_survives_the_refresh(service, local_store, local_config):
    from inventory.jobs.refresh import refresh_prices
    from inventory.source.client import CoinGeckoClient
    from inventory.store.prices import PriceStore
    from tests.fakes.coingecko import FakeCoinGecko, generate_catalog

    class SourceAnsweringAfterAnOperator(CoinGeckoClient):
        """The price source, answering only after an operator changed a status: the refresh has
        read the catalog by then, and writes its prices after."""

        def __init__(self, url, operator_acts):
            super().__init__(url, calls_per_minute=0, retries=1, backoff=0.01)
            self.operator_acts = operator_acts

        def fetch_markets(self, pages):
            self.operator_acts()
            return super().fetch_markets(pages)

    prices = PriceStore(local_store.client, local_config.DYNAMODB_TABLE_NAME, history_days=30)
    with FakeCoinGecko(generate_catalog(40)) as cg:
        # GIVEN a priced catalog
        first = refresh_prices(CoinGeckoClient(cg.url, calls_per_minute=0, retries=1, backoff=0.01),
                               local_store, prices, pages=1)
        assert first.ok and first.created > 30
        victim = next(a for a in local_store.iter_all() if a.market_cap_rank == 1)

        def suspend():
            service.change_status(victim.asset_id, SUSPENDED, "race", local_store.get(victim.asset_id).version,
                                  "ops", "req-1")

        # WHEN an operator suspends an asset while the next refresh is between its read and its write
        cg.tick()
        second = refresh_prices(SourceAnsweringAfterAnOperator(cg.url, suspend),
                                local_store, prices, pages=1)
    # THEN the refresh applied its prices and the suspension stands, in the store and in every model
    assert second.ok and second.updated > 30
    assert local_store.get(victim.asset_id).status is SUSPENDED
    stored = assert_models_equal_the_store(service, local_store)
    assert [a.asset_id for a in stored.values() if a.status is SUSPENDED] == [victim.asset_id]
