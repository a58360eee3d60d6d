"""The flask CLI (migrate, seed) over a moto table, and catalog sync's rules for existing assets."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest

from inventory import create_app
from inventory.domain import AssetStatus, utcnow
from inventory.jobs.seed import bundled_rows, sync_catalog
from inventory.store import AssetStore, mapping
from inventory.store.migrate import available

# The bundled catalog's coins that cannot get an asset id, by reason.
SKIPPED_BY_SYMBOL = {
    "ticker_not_usable_as_id": {"bsc-usd", "figr_heloc"},
}
SKIPPED_BY_COINGECKO_ID = {
    "ticker_owned_by_another_coin": {"binance-peg-weth", "binance-bridged-usdc-bnb-smart-chain"},
}


def invoke(runner, *args):
    result = runner.invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result


def seed(runner, *args) -> dict:
    return json.loads(invoke(runner, "seed", *args).stdout)


def skipped_ids(report: dict) -> dict[str, set[str]]:
    """reason -> coingecko ids; each entry reads "<coingecko id> (<symbol>, rank <n>)"."""
    return {reason: {label.split(" ")[0] for label in labels}
            for reason, labels in report["skipped_by_reason"].items()}


# -- migrate -----------------------------------------------------------------------

@pytest.fixture
def fresh_runner(config, moto_client):
    """A CLI runner whose table does not exist yet (the moto_client fixture migrated another)."""
    fresh = config.replace(DYNAMODB_TABLE_NAME=f"fresh-{uuid.uuid4().hex[:8]}")
    return create_app(fresh, dynamodb_client=moto_client).test_cli_runner(), fresh.DYNAMODB_TABLE_NAME


def migration_records(client, table_name: str) -> list[str]:
    response = client.query(
        TableName=table_name,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": mapping.MIGRATION_PK}},
        ConsistentRead=True,
    )
    return [item["SK"]["S"] for item in response["Items"]]


def test_migrate_twice_applies_each_migration_once(fresh_runner, moto_client):
    runner, table_name = fresh_runner
    names = available()
    assert names, "no migrations found"

    first = invoke(runner, "migrate").output
    assert f"applied {len(names)} migration(s): {', '.join(names)}" in first
    second = invoke(runner, "migrate").output
    assert "nothing to apply" in second
    assert "applied" not in second

    assert sorted(migration_records(moto_client, table_name)) == names
    table = moto_client.describe_table(TableName=table_name)["Table"]
    assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == set(mapping.INDEXES)
    ttl = moto_client.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "ENABLED" and ttl["AttributeName"] == "expires_at"


# -- seed (bundled catalog) -----------------------------------------------------------

def test_seed_creates_the_bundled_catalog_and_reports_skipped_coins(runner, store, client):
    rows = bundled_rows()
    by_symbol = {}
    for row in rows:
        by_symbol.setdefault(row["symbol"], []).append(row)

    report = seed(runner)

    skipped = skipped_ids(report)
    for reason, symbols in SKIPPED_BY_SYMBOL.items():
        expected = {row["id"] for symbol in symbols for row in by_symbol[symbol]}
        assert expected <= skipped.get(reason, set()), reason
    for reason, ids in SKIPPED_BY_COINGECKO_ID.items():
        assert ids <= skipped.get(reason, set()), reason
    all_skipped = set().union(*skipped.values())
    assert report["skipped"] == len(all_skipped)
    assert report["created"] == len(rows) - report["skipped"]
    assert (report["updated"], report["unchanged"]) == (0, 0)

    stored = {asset.coingecko_id: asset for asset in store.iter_all()}
    assert set(stored) == {row["id"] for row in rows} - all_skipped
    for asset in stored.values():
        assert asset.asset_id == asset.symbol.upper()
        assert asset.status is AssetStatus.ACTIVE
    # A coin whose ticker is taken lost it to a higher-ranked coin, which keeps it.
    rank = {row["id"]: row["market_cap_rank"] for row in rows}
    by_asset_id = {asset.asset_id: asset for asset in stored.values()}
    for coingecko_id in skipped["ticker_owned_by_another_coin"]:
        row = next(r for r in rows if r["id"] == coingecko_id)
        owner = by_asset_id[row["symbol"].upper()]
        assert owner.coingecko_id != coingecko_id
        assert rank[owner.coingecko_id] < rank[coingecko_id]

    # The counts behind the API were rebuilt by the seed.
    listing = client.get("/inventory/assets?active_only=false&limit=1").get_json()
    assert listing["total_count"] == report["created"]


def test_seed_again_creates_nothing_and_keeps_operator_status(runner, store):
    # GIVEN a seeded catalog whose BTC an operator suspended (and someone renamed)
    first = seed(runner)
    store.update_fields(
        "BTC", {"status": AssetStatus.SUSPENDED, "category": "operator-pick", "name": "Renamed"}, utcnow()
    )

    # WHEN the seed runs again
    second = seed(runner)

    # THEN nothing is created, the catalog fact is restored, the operator fields stay
    assert second["created"] == 0
    assert second["updated"] == 1
    assert second["unchanged"] == first["created"] - 1
    assert second["skipped_by_reason"] == first["skipped_by_reason"]
    btc = store.get("BTC")
    bitcoin = next(row for row in bundled_rows() if row["id"] == "bitcoin")
    assert btc.name == bitcoin["name"]
    assert btc.status is AssetStatus.SUSPENDED
    assert btc.category == "operator-pick"


# -- sync_catalog: prices ---------------------------------------------------------------

def priced_row(price: str, at) -> dict:
    row = dict(next(row for row in bundled_rows() if row["id"] == "bitcoin"))
    row.update(current_price=Decimal(price), last_updated=at.isoformat().replace("+00:00", "Z"))
    return row


def test_sync_never_replaces_a_stored_price_with_an_older_one(store):
    now = utcnow()
    newer, older = now - timedelta(minutes=1), now - timedelta(minutes=10)
    sync_catalog([priced_row("60000.5", newer)], store, now)
    assert store.get("BTC").current_price == Decimal("60000.5")

    report = sync_catalog([priced_row("50000.25", older)], store, now)

    assert report.unchanged == 1 and report.updated == []
    btc = store.get("BTC")
    assert btc.current_price == Decimal("60000.5")
    assert btc.last_price_update == newer.replace(microsecond=newer.microsecond // 1000 * 1000)


def test_sync_replaces_a_stored_price_with_a_newer_one(store):
    now = utcnow()
    older, newer = now - timedelta(minutes=10), now - timedelta(minutes=1)
    sync_catalog([priced_row("50000.25", older)], store, now)

    report = sync_catalog([priced_row("60000.5", newer)], store, now)

    assert report.updated == ["BTC"]
    assert store.get("BTC").current_price == Decimal("60000.5")


# -- seed --from-coingecko -----------------------------------------------------------------

def test_seed_from_coingecko_stores_the_source_prices_exactly(config, moto_client, fake_coingecko):
    app = create_app(config.replace(COINGECKO_API_URL=fake_coingecko.url), dynamodb_client=moto_client)
    store = AssetStore(moto_client, config.DYNAMODB_TABLE_NAME, write_concurrency=1)

    report = seed(app.test_cli_runner(), "--from-coingecko")

    assert fake_coingecko.count("/coins/markets") >= 1
    source = {row["id"]: row["current_price"] for row in fake_coingecko.coins}
    stored = {asset.coingecko_id: asset.current_price for asset in store.iter_all()}
    assert len(stored) == report["created"] == len(source) - report["skipped"]
    for coingecko_id, price in stored.items():
        assert price == source[coingecko_id], coingecko_id
        assert price is None or isinstance(price, Decimal)
        if price is not None:
            assert str(price) == str(source[coingecko_id])  # same digits, not just equal value
    assert any(p is not None and p < Decimal("0.0001") for p in stored.values()), "no tiny price to check"
