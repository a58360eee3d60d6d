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


def test_a_client_does_not_keep_the_json_botocore_read_to_build_it():
    """botocore parses endpoints.json (~100,000 objects) to build a client; only the service
    model is needed afterwards. Measured in a fresh interpreter, where nothing was loaded yet."""
    import subprocess
    import sys

    script = (
        "import gc, sys\n"
        "import boto3.session, botocore.client, botocore.regions\n"
        "from inventory.config import Config\n"
        "from inventory.store.dynamo import make_client\n"
        "gc.collect(); before = sys.getallocatedblocks()\n"
        "client = make_client(Config(DYNAMODB_ENDPOINT_URL='http://127.0.0.1:1', AWS_REGION='us-east-1'))\n"
        "gc.collect(); print(sys.getallocatedblocks() - before)\n"
    )
    kept = int(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout)
    # Measured: ~27,000 blocks kept (the DynamoDB model); ~124,000 when the parsed documents stay.
    assert kept < 60_000
