"""Three instances (three gunicorn masters), one DynamoDB Local, one CoinGecko: one refresher."""

from __future__ import annotations

import os
import signal
import time
import uuid

import pytest
import requests

from inventory.devtools.dynamodb_local import free_port
from tests.e2e.conftest import _flask, _stop, start_gunicorn
from tests.fakes.coingecko import FakeCoinGecko, generate_catalog

pytestmark = pytest.mark.e2e

INTERVAL = 2
LEASE = 4


def _markets_times(cg) -> list[float]:
    with cg.lock:
        return [r["time"] for r in cg.requests if r["path"].endswith("/coins/markets")]


@pytest.fixture
def instances(dynamodb_local, tmp_path):
    with FakeCoinGecko(generate_catalog(40)) as cg:
        env = {
            **os.environ,
            "DYNAMODB_ENDPOINT_URL": dynamodb_local,
            "DYNAMODB_TABLE_NAME": f"e2e-lease-{uuid.uuid4().hex[:10]}",
            "COINGECKO_API_URL": cg.url,
            "COINGECKO_CALLS_PER_MINUTE": "600",
            "PRICE_REFRESH_INTERVAL_SECONDS": str(INTERVAL),
            "CATEGORY_REFRESH_HOURS": "0",  # price refreshes are counted as /coins/markets calls
            "REFRESH_LEASE_SECONDS": str(LEASE),
            "WEB_CONCURRENCY": "1",
        }
        _flask(["migrate"], env)
        processes = []
        try:
            for n in range(3):
                port = free_port()
                metrics = tmp_path / f"metrics-{n}"
                metrics.mkdir()
                instance_env = {**env, "BIND": f"127.0.0.1:{port}", "PROMETHEUS_MULTIPROC_DIR": str(metrics)}
                processes.append(start_gunicorn(instance_env, tmp_path / f"gunicorn-{n}.log"))
            yield cg, processes
        finally:
            for process, _ in processes:
                _stop(process)


def test_one_refresh_per_interval_across_instances_and_takeover_after_sigkill(instances):
    cg, processes = instances
    # GIVEN three running instances
    time.sleep(LEASE)
    cg.reset_log()
    started = time.monotonic()
    time.sleep(5 * INTERVAL)
    calls = len(_markets_times(cg))
    elapsed = time.monotonic() - started
    # THEN about one refresh per interval in total, not three
    assert elapsed / INTERVAL - 1 <= calls <= elapsed / INTERVAL + 1

    # WHEN the lease holder is killed outright
    lease = requests.get(processes[0][1] + "/health/detailed", timeout=5).json()["refresh_lease"]
    holder_pid = int(lease["owner"].split("-")[-2])
    holder = next(p for p, _ in processes if p.pid == holder_pid)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    killed_at = time.time()
    time.sleep(LEASE + 3 * INTERVAL)

    # THEN another instance took over within lease + interval, with a new fence
    after = [t for t in _markets_times(cg) if t > killed_at]
    assert after and after[0] - killed_at <= LEASE + INTERVAL + 1
    survivor = next(url for p, url in processes if p.poll() is None)
    new_lease = requests.get(survivor + "/health/detailed", timeout=5).json()["refresh_lease"]
    assert new_lease["owner"] != lease["owner"] and new_lease["fence"] > lease["fence"]
    # AND no interval was refreshed twice
    times = _markets_times(cg)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert min(gaps) >= INTERVAL * 0.8 - 0.2
