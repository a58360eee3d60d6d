"""The refresher's own process on DynamoDB Local: refreshes under this process's name, hands the lease back on SIGTERM."""

from __future__ import annotations

import os
import socket
import time

import pytest

from inventory.config import Config
from inventory.jobs.process import RefresherProcess
from inventory.store.lease import LeaseStore
from tests.fakes.coingecko import FakeCoinGecko, generate_catalog

pytestmark = pytest.mark.integration


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_refresher_process_refreshes_as_this_instance_then_releases_the_lease(
    local_config, local_store, monkeypatch
):
    leases = LeaseStore(local_store.client, local_config.DYNAMODB_TABLE_NAME)
    with FakeCoinGecko(generate_catalog(30)) as cg:
        for name, value in {
            "DYNAMODB_ENDPOINT_URL": local_config.DYNAMODB_ENDPOINT_URL,
            "DYNAMODB_TABLE_NAME": local_config.DYNAMODB_TABLE_NAME,
            "COINGECKO_API_URL": cg.url,
            "COINGECKO_CALLS_PER_MINUTE": "0",
            "PRICE_REFRESH_INTERVAL_SECONDS": "2",
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("INSTANCE_ID", raising=False)
        refresher = RefresherProcess.spawn(Config.from_env())
        try:
            # THEN it refreshes, holding the lease in the name of this (the spawning) process
            _wait_for(lambda: len(list(local_store.iter_all())) > 20, 30, "a first refresh")
            lease = leases.current()
            assert lease.owner.startswith(f"{socket.gethostname()}-{os.getpid()}-")
            assert refresher.process.poll() is None
        finally:
            # WHEN it is told to stop
            code = refresher.stop(timeout=20)
    # THEN it exits cleanly and the lease is free at once for another instance
    assert code == 0
    assert leases.current().expires_ms <= int(time.time() * 1000)
