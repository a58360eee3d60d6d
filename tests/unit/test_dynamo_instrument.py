"""DynamoDB call instrumentation survives an unreachable store and still reports it."""

import pytest

from inventory.config import Config
from inventory.devtools.dynamodb_local import free_port
from inventory.domain import StoreError
from inventory.store import AssetStore, make_client
from inventory.store.dynamo import instrument


def test_unreachable_store_is_a_store_error_and_is_observed():
    config = Config(
        DYNAMODB_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        DYNAMODB_CONNECT_TIMEOUT=0.2,
        DYNAMODB_READ_TIMEOUT=0.2,
        DYNAMODB_MAX_ATTEMPTS=1,
    )
    client = make_client(config)
    seen = []
    instrument(client, lambda *args: seen.append(args))
    with pytest.raises(StoreError):
        AssetStore(client, "t-unreachable").get("BTC")
    assert [(op, outcome) for op, outcome, *_ in seen] == [("GetItem", "unreachable")]
