"""AssetStore and migrations against Amazon DynamoDB Local, which is strict where moto is lenient."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from inventory.domain import AssetNotFound, AssetStatus
from inventory.store import make_client, mapping
from inventory.store.dynamo import count_calls
from inventory.store.migrate import available, migrate
from tests.conftest import NOW, build_asset

pytestmark = pytest.mark.integration

ACTIVE, INACTIVE, SUSPENDED = AssetStatus.ACTIVE, AssetStatus.INACTIVE, AssetStatus.SUSPENDED
FRESH, STALE = 0, 3600  # price age in seconds: well inside / well outside PRICE_MAX_AGE_SECONDS


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def store_all(store, assets):
    created, existed = store.create_many(list(assets))
    assert existed == [] and len(created) == len(assets)
    return list(assets)


def catalog():
    """A mixed catalog: every status, two categories and none, stale and missing prices,
    a three-way rank tie and several unranked assets, created out of rank order."""
    statuses = [ACTIVE, ACTIVE, INACTIVE, SUSPENDED]
    categories = ["layer-1", "meme", None]
    prices = [("1.5", FRESH), ("2.5", STALE), (None, FRESH)]
    assets = []
    for i in range(57):  # with the tie below, every listing count is composite
        price, age = prices[i % 3]
        assets.append(build_asset(
            f"C{i:02d}",
            None if i % 8 == 5 else 200 - 3 * i,  # rank order is the reverse of id order
            price=price,
            age_seconds=age,
            status=statuses[i % 4],
            category=categories[(i // 3) % 3],
        ))
    # Same rank, created in an order that is neither id nor insertion-sorted.
    assets += [
        build_asset("TIEB", 51, price="3", category="meme"),
        build_asset("AAA", 51, price="3", category="meme"),
        build_asset("TIEA", 51, price="3", category="meme"),
    ]
    return assets


def expected_ids(assets, status, category, tradable, now, max_age):
    """The listing computed from the created assets: rank asc, unranked last, ties by id."""
    chosen = [
        a for a in assets
        if (status is None or a.status is status)
        and (category is None or a.category == category)
        and (not tradable or a.is_tradable(now, max_age))
    ]
    chosen.sort(key=lambda a: (a.market_cap_rank is None, a.market_cap_rank or 0, a.asset_id))
    return [a.asset_id for a in chosen]


def test_iter_all_reads_small_pages_and_follows_them_to_the_end(local_store, local_config):
    # 1600 items of over 1 KB each: pages of 200 items (the store's Limit, well under
    # DynamoDB's 1 MB), so 8 full pages, then the empty one DynamoDB answers after an
    # exactly full last page.
    assets = store_all(local_store, [
        build_asset(f"B{i}", None if i % 100 == 0 else 1600 - i, price="1", name="N" * 1000 + str(i))
        for i in range(1600)
    ])
    with count_calls(local_store.client) as calls:
        listed = list(local_store.iter_all())
    assert calls["calls"] == 9
    assert [a.asset_id for a in listed] == expected_ids(assets, None, None, False, None, None)
    assert {a.asset_id: a.name for a in listed} == {a.asset_id: a.name for a in assets}


def test_update_fields_leaves_other_fields_and_moves_rank_key(local_store):
    store_all(local_store, [
        build_asset("AAA", 1, price="1", category="layer-1"),
        build_asset("BBB", 2, price="2", category="layer-1"),
        build_asset("CCC", 3, price="3", category="layer-1"),
        build_asset("SUS", 4, price="4", category="layer-1", status=SUSPENDED),
    ])
    before = local_store.get("AAA")
    suspended_before = local_store.get("SUS")
    later = utc_now() + timedelta(minutes=5)

    local_store.update_fields("AAA", {"market_cap_rank": 10, "current_price": Decimal("9.5")}, later)
    local_store.update_fields("SUS", {"current_price": Decimal("4.5"), "market_cap_rank": 5}, later)

    after = local_store.get("AAA")
    assert dataclasses.asdict(after) == dataclasses.asdict(before.replace(
        market_cap_rank=10, current_price=Decimal("9.5"), updated_at=after.updated_at,
    ))
    assert after.updated_at == mapping.from_iso(mapping.to_iso(later))
    # The operator's status survives a market-field write.
    suspended = local_store.get("SUS")
    assert suspended.status is SUSPENDED
    assert suspended.name == suspended_before.name and suspended.category == "layer-1"

    def listed():
        return [a.asset_id for a in local_store.iter_all()]

    # The catalog index sorts on rank_key, so a load sees the new rank.
    assert listed() == ["BBB", "CCC", "SUS", "AAA"]

    local_store.update_fields("BBB", {"market_cap_rank": None}, later)
    assert local_store.get("BBB").market_cap_rank is None
    assert listed() == ["CCC", "SUS", "AAA", "BBB"]


def test_update_fields_on_missing_asset_raises_and_creates_nothing(local_store):
    with pytest.raises(AssetNotFound):
        local_store.update_fields("GHOST", {"current_price": Decimal("1")}, utc_now())
    raw = local_store.client.get_item(
        TableName=local_store.table_name, Key=mapping.asset_key("GHOST"), ConsistentRead=True
    )
    assert "Item" not in raw
    assert list(local_store.iter_all()) == []


def test_create_existing_id_returns_false_and_changes_nothing(local_store):
    assert local_store.create(build_asset("BTC", 1, price="97000", name="Bitcoin")) is True
    original = local_store.get("BTC")

    assert local_store.create(build_asset("BTC", 7, price="1", name="Impostor", category="meme")) is False

    assert local_store.get("BTC") == original
    assert [a.asset_id for a in local_store.iter_all()] == ["BTC"]


@pytest.mark.parametrize(
    "field, raw",
    [
        ("current_price", "0.00001234"),
        ("market_cap", "1.234E-9"),
        ("total_supply", "12345678901234567890123456789012345678"),  # 38 digits, DynamoDB's maximum
        ("max_supply", "1.234567890123456789012345678901234567"),
        ("price_change_percentage_24h", "-12.3456789"),
    ],
)
def test_decimals_round_trip_exactly(local_store, field, raw):
    value = Decimal(raw)
    assert local_store.create(build_asset("DEC", 1, price="1").replace(**{field: value}))
    stored = getattr(local_store.get("DEC"), field)
    assert stored == value and str(stored) == str(value)
    # The GSI projection carries the same number.
    listed = next(local_store.iter_all())
    assert getattr(listed, field) == value

    # And so does a partial update.
    local_store.update_fields("DEC", {field: None}, utc_now())
    assert getattr(local_store.get("DEC"), field) is None
    local_store.update_fields("DEC", {field: value}, utc_now())
    assert str(getattr(local_store.get("DEC"), field)) == str(value)


def test_migrate_twice_applies_once_and_enables_ttl(dynamodb_local, config):
    cfg = config.replace(DYNAMODB_ENDPOINT_URL=dynamodb_local,
                         DYNAMODB_TABLE_NAME=f"fresh-{uuid.uuid4().hex[:12]}")
    client = make_client(cfg)
    try:
        assert migrate(client, cfg.DYNAMODB_TABLE_NAME, NOW) == available()
        assert available() == ["0001_create_table", "0002_enable_ttl"]
        assert migrate(client, cfg.DYNAMODB_TABLE_NAME, NOW) == []

        ttl = client.describe_time_to_live(TableName=cfg.DYNAMODB_TABLE_NAME)["TimeToLiveDescription"]
        assert ttl["TimeToLiveStatus"] == "ENABLED"
        assert ttl["AttributeName"] == "expires_at"
        table = client.describe_table(TableName=cfg.DYNAMODB_TABLE_NAME)["Table"]
        assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == set(mapping.INDEXES)
    finally:
        client.delete_table(TableName=cfg.DYNAMODB_TABLE_NAME)
