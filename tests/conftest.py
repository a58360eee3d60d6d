"""Shared fixtures: config, app, client, runner; moto for unit tests, DynamoDB Local for integration."""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

# Never let a test reach real AWS with someone's real credentials.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-west-2",
)
os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
# The second price source is never the internet either: a closed loopback port unless a
# test points it at the Binance fake (every service a test starts inherits this). And the
# services tests start do not cross-check unless the test is about it: against that closed
# port every check fails, and /health/detailed rightly says degraded.
os.environ["BINANCE_API_URL"] = "http://127.0.0.1:9"
os.environ["CROSSCHECK_ENABLED"] = "0"

from moto import mock_aws  # noqa: E402

from inventory import create_app  # noqa: E402
from inventory.config import Config  # noqa: E402
from inventory.domain import Asset, AssetStatus  # noqa: E402
from inventory.services.tokens import hash_token  # noqa: E402
from inventory.store import AssetStore, RefreshStateStore, make_client  # noqa: E402
from inventory.store.migrate import migrate  # noqa: E402

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
ADMIN_TOKEN = "inv_test-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(autouse=True)
def _no_stream_hub_outlives_its_test():
    # A hub polls its store from a daemon thread until closed; left running, it kept
    # polling a DynamoDB Local that a later fixture had stopped (warnings at session end).
    yield
    from inventory.readmodel.model import stop_process_models
    from inventory.stream.hub import close_process_streams

    close_process_streams("shutdown")
    stop_process_models()


@pytest.fixture
def config() -> Config:
    # moto is not thread-safe under concurrent transactions; DynamoDB Local is.
    return Config(
        DYNAMODB_TABLE_NAME=f"t-{uuid.uuid4().hex[:12]}",
        SECRET_KEY="test-secret",
        DYNAMODB_WRITE_CONCURRENCY=1,
        # No poller thread: every read catches up with the feed itself, so a test's
        # store writes are seen by its next request.
        STREAM_POLL_SECONDS=0,
        # Health pings and scrapes ping the source: never the internet from a test
        # (a closed loopback port; tests that need an answer point it at the fake).
        COINGECKO_API_URL="http://127.0.0.1:9/api/v3",
        BINANCE_API_URL="http://127.0.0.1:9",
        API_TOKENS=json.dumps([{"name": "test-admin", "scopes": ["assets:admin"], "hash": hash_token(ADMIN_TOKEN)}]),
    )


@pytest.fixture
def moto_client(config):
    with mock_aws():
        client = make_client(config)
        migrate(client, config.DYNAMODB_TABLE_NAME, NOW)
        yield client


@pytest.fixture
def store(moto_client, config) -> AssetStore:
    return AssetStore(moto_client, config.DYNAMODB_TABLE_NAME, write_concurrency=1)


@pytest.fixture
def refresh_state(moto_client, config) -> RefreshStateStore:
    return RefreshStateStore(moto_client, config.DYNAMODB_TABLE_NAME)


@pytest.fixture
def app(config, moto_client):
    app = create_app(config, dynamodb_client=moto_client)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def build_asset(asset_id: str, rank: int | None = None, *, price=None, age_seconds: float = 0,
                status=AssetStatus.ACTIVE, category: str | None = None, name: str | None = None,
                now: datetime | None = None, **extra) -> Asset:
    """An asset priced `age_seconds` before `now` (real time when not given)."""
    now = now or datetime.now(timezone.utc)
    price = Decimal(price) if price is not None else None
    return Asset(
        asset_id=asset_id,
        symbol=asset_id.lower(),
        name=name or f"{asset_id} coin",
        coingecko_id=f"{asset_id.lower()}-cg",
        category=category,
        status=status,
        market_cap_rank=rank,
        current_price=price,
        last_price_update=now - timedelta(seconds=age_seconds) if price is not None else None,
        created_at=now,
        updated_at=now,
        **extra,
    )


@pytest.fixture
def add_assets(store, config):
    """Store assets, each with its feed entry, as an import would."""

    def add(*assets: Asset) -> list[Asset]:
        for asset in assets:
            assert store.create(asset)
        return list(assets)

    return add


# -- DynamoDB Local (integration) ------------------------------------------------

@pytest.fixture(scope="session")
def dynamodb_local():
    """One in-memory DynamoDB Local for the session, or DYNAMODB_TEST_ENDPOINT if set."""
    endpoint = os.environ.get("DYNAMODB_TEST_ENDPOINT")
    if endpoint:
        yield endpoint
        return
    from inventory.devtools.dynamodb_local import DynamoDBLocal

    with DynamoDBLocal() as local:
        yield local.endpoint


@pytest.fixture
def local_config(dynamodb_local, config) -> Config:
    """Config for a fresh, migrated table of its own on DynamoDB Local."""
    cfg = config.replace(DYNAMODB_ENDPOINT_URL=dynamodb_local, DYNAMODB_WRITE_CONCURRENCY=4)
    client = make_client(cfg)
    migrate(client, cfg.DYNAMODB_TABLE_NAME, NOW)
    yield cfg
    client.delete_table(TableName=cfg.DYNAMODB_TABLE_NAME)


@pytest.fixture
def local_store(local_config) -> AssetStore:
    return AssetStore(make_client(local_config), local_config.DYNAMODB_TABLE_NAME, write_concurrency=4)


@pytest.fixture
def fake_coingecko():
    from tests.fakes.coingecko import FakeCoinGecko

    with FakeCoinGecko() as server:
        yield server
