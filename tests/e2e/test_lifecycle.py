"""Lifecycle end to end: a store outage, SIGTERM and SIGHUP of the master, worker restarts during slow refreshes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests

from inventory.config import Config
from inventory.devtools.dynamodb_local import DynamoDBLocal, free_port
from inventory.services.tokens import hash_token
from inventory.store import make_client
from tests.e2e.conftest import _flask, _stop, start_gunicorn
from tests.fakes.coingecko import FakeCoinGecko, generate_catalog

pytestmark = pytest.mark.e2e

INTERVAL = 2
TOKEN = "inv_e2e-lifecycle-token"
GRACEFUL_TIMEOUT = 20  # gunicorn.conf.py
LEASE_KEY = {"PK": {"S": "LEASE"}, "SK": {"S": "price-refresh"}}
ERROR_KEYS = {"code", "status", "error", "message", "request_id"}
LEAKS = ("botocore", "Traceback", "Endpoint", "Exception", "dynamodb")
REFRESHER = "inventory.jobs.scheduler"


def _env(endpoint: str, cg: FakeCoinGecko, workdir: Path, **extra) -> dict:
    env = {
        **os.environ,
        "DYNAMODB_ENDPOINT_URL": endpoint,
        "DYNAMODB_TABLE_NAME": f"e2e-life-{uuid.uuid4().hex[:10]}",
        "COINGECKO_API_URL": cg.url,
        "COINGECKO_CALLS_PER_MINUTE": "600",
        "COINGECKO_RETRIES": "1",
        "PRICE_REFRESH_INTERVAL_SECONDS": str(INTERVAL),
        "CATEGORY_REFRESH_HOURS": "0",  # price refreshes are counted as /coins/markets calls
        "WEB_CONCURRENCY": "2",
        "BIND": f"127.0.0.1:{free_port()}",
        "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics"),
        "GUNICORN_CMD_ARGS": "--no-control-socket",
        **extra,
    }
    (workdir / "metrics").mkdir(exist_ok=True)
    return env


def _start(env: dict, workdir: Path) -> tuple[subprocess.Popen, str, Path]:
    log_path = workdir / "gunicorn.log"
    process, url = start_gunicorn(env, log_path)
    return process, url, log_path


def _get(url: str, path: str, timeout: float = 10) -> requests.Response:
    """GET on a fresh connection (any worker may answer); a 500 is never acceptable."""
    response = requests.get(url + path, timeout=timeout, headers={"Connection": "close"})
    assert response.status_code == 503 or response.status_code < 500, (path, response.status_code, response.text)
    return response


def _wait_for(predicate, timeout: float, what: str, log_path: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    tail = log_path.read_text(errors="replace")[-3000:] if log_path else ""
    raise AssertionError(f"timed out waiting for {what}\n{tail}")


def _healthy_with_lease(url: str):
    response = _get(url, "/health/detailed")
    body = response.json()
    if response.status_code == 200 and body["status"] == "healthy" and body["refresh_lease"]["held"]:
        return body
    return None


def _assert_error_body(response: requests.Response, status: int) -> None:
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert ERROR_KEYS <= set(body) <= ERROR_KEYS | {"errors"}, body
    assert body["code"] == status and body["status"] == "Service Unavailable" and body["request_id"]
    for leak in LEAKS:
        assert leak.lower() not in response.text.lower(), (leak, response.text)


def _processes(pid: int) -> dict[int, str]:
    """The master's children: pid -> command line."""
    out = subprocess.run(["ps", "--ppid", str(pid), "-o", "pid=,args="], capture_output=True, text=True).stdout
    return {int(p): args for p, _, args in (line.strip().partition(" ") for line in out.splitlines())}


def _children(pid: int) -> set[int]:
    """The master's workers (its other child is the price refresher)."""
    return {p for p, args in _processes(pid).items() if REFRESHER not in args}


def _refreshers(pid: int) -> set[int]:
    return {p for p, args in _processes(pid).items() if REFRESHER in args}


def _markets(cg: FakeCoinGecko) -> list[float]:
    with cg.lock:
        return [r["time"] for r in cg.requests if r["path"].endswith("/coins/markets")]


# -- 1. store outage ------------------------------------------------------------------


def _timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def _suspend(url: str, asset_id: str):
    # The ETag comes from the model (a read answers even during an outage), the write needs the store.
    etag = _get(url, f"/inventory/assets/{asset_id}").headers["ETag"]
    return requests.patch(
        f"{url}/inventory/assets/{asset_id}/status", json={"status": "SUSPENDED", "reason": "outage drill"},
        headers={"Authorization": f"Bearer {TOKEN}", "If-Match": etag, "Connection": "close"}, timeout=10,
    )


def _outage_answers(url: str, path: str, asset_id: str) -> None:
    """While the store does not answer: reads from memory at once (marked stale once the model
    noticed), writes and health a 503 with Retry-After within 2 s."""
    # THEN every read answers 200 from memory within normal latency, with its age
    deadline = time.monotonic() + 8
    stale = 0
    while time.monotonic() < deadline and stale < 6:
        for read in (path, "/inventory/assets?limit=5&active_only=false", "/inventory/assets/search?q=a"):
            response, seconds = _timed(lambda: _get(url, read))
            assert response.status_code == 200, (read, response.status_code, response.text)
            assert seconds < 0.5, (read, seconds)
            assert response.headers["X-Catalog-Seq"].isdigit()
            stale += response.headers.get("Warning") == '110 - "Response is Stale"'
        time.sleep(0.2)
    assert stale >= 6, "reads never said they may be stale"
    # AND a write is refused within 2 s, with Retry-After and the one error body
    for _ in range(3):
        response, seconds = _timed(lambda: _suspend(url, asset_id))
        assert seconds < 2.0, seconds
        _assert_error_body(response, 503)
        assert response.headers["Retry-After"].isdigit()
    # AND health says the store is unreachable within 2 s, with Retry-After like every outage 503
    health, seconds = _timed(lambda: _get(url, "/health/detailed"))
    assert seconds < 2.0, seconds
    assert health.status_code == 503 and health.json()["status"] == "unhealthy", health.text
    assert health.json()["store"]["reachable"] is False and health.headers["Retry-After"].isdigit()
    for leak in LEAKS:
        assert leak.lower() not in health.text.lower()


def _recovered(url: str, path: str, log_path: Path) -> None:
    def fresh():
        r = _get(url, path)
        return r.status_code == 200 and "Warning" not in r.headers
    _wait_for(fresh, 15, "fresh 200 after the store came back", log_path)
    _wait_for(lambda: _get(url, "/health/detailed").status_code == 200, 15, "/health/detailed 200 again", log_path)
    for _ in range(6):  # every worker, not just one
        r = _get(url, path)
        assert r.status_code == 200 and "Warning" not in r.headers, (r.status_code, r.headers)


def test_a_frozen_or_stopped_store_reads_from_memory_refuses_writes_fast_and_recovers(tmp_path):
    ddb = DynamoDBLocal(port=free_port(), db_path=tmp_path / "ddb").start()
    try:
        with FakeCoinGecko(generate_catalog(40)) as cg:
            cg.tick()
            # Default timeouts and retries: what a deployment runs.
            env = _env(ddb.endpoint, cg, tmp_path, API_TOKENS=json.dumps(
                [{"name": "ops", "scopes": ["assets:admin"], "hash": hash_token(TOKEN)}]))
            _flask(["migrate"], env)
            process, url, log_path = _start(env, tmp_path)
            try:
                _wait_for(lambda: _healthy_with_lease(url), 30, "healthy after a first refresh", log_path)
                first, second = [a["asset_id"] for a in _get(url, "/inventory/assets?limit=2").json()["data"]]
                path = f"/inventory/assets/{first}"
                for _ in range(12):  # every worker has loaded its model
                    assert _get(url, path).status_code == 200

                # WHEN DynamoDB Local freezes (SIGSTOP: connections open, nothing answers)
                os.kill(ddb.process.pid, signal.SIGSTOP)
                try:
                    _outage_answers(url, path, first)
                finally:
                    os.kill(ddb.process.pid, signal.SIGCONT)
                # THEN after SIGCONT it serves fresh data again, and writes go through
                _recovered(url, path, log_path)
                assert _suspend(url, second).status_code == 200

                # WHEN DynamoDB Local stops (connections refused)
                ddb.stop()
                _outage_answers(url, path, first)
                assert process.poll() is None

                # WHEN it comes back on the same port and data path
                ddb.start()
                # THEN the data survived the restart (-dbPath persists), the same gunicorn recovers,
                # and the suspension made between the two outages is still served
                assert list((tmp_path / "ddb").glob("*.db")), "DynamoDB Local wrote no database file"
                _recovered(url, path, log_path)
                assert _get(url, f"/inventory/assets/{second}").json()["data"]["status"] == "SUSPENDED"
                assert process.poll() is None, "gunicorn must not have been restarted"
            finally:
                _stop(process)
    finally:
        ddb.stop()


# -- 2. SIGTERM ------------------------------------------------------------------------


def test_sigterm_finishes_in_flight_requests_exits_0_and_releases_the_lease(dynamodb_local, tmp_path):
    with FakeCoinGecko(generate_catalog(250)) as cg:
        cg.tick()
        # No response cache, so each request really reads a page of 250 assets.
        env = _env(dynamodb_local, cg, tmp_path, CACHE_TTL_SECONDS="0", CACHE_STALE_GRACE_SECONDS="0")
        _flask(["migrate"], env)
        process, url, log_path = _start(env, tmp_path)
        try:
            _wait_for(lambda: _healthy_with_lease(url), 30, "healthy with the lease", log_path)
            path = "/inventory/assets?limit=250&active_only=false"
            page_size = len(_get(url, path).json()["data"])
            assert page_size > 200  # a few generated coins get no id (ticker clashes)

            # WHEN ~20 requests are on their way and the master gets SIGTERM
            results: list = [None] * 20
            barrier = threading.Barrier(len(results) + 1)

            def fire(i):
                barrier.wait()
                try:
                    results[i] = requests.get(url + path, timeout=GRACEFUL_TIMEOUT + 5,
                                              headers={"Connection": "close"})
                except requests.RequestException as exc:
                    results[i] = exc

            threads = [threading.Thread(target=fire, args=(i,)) for i in range(len(results))]
            for t in threads:
                t.start()
            barrier.wait()
            time.sleep(0.05)
            process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            # THEN the master exits 0 within graceful_timeout
            code = process.wait(timeout=GRACEFUL_TIMEOUT + 5)
            elapsed = time.monotonic() - signalled
            for t in threads:
                t.join(timeout=10)
            assert code == 0, log_path.read_text(errors="replace")[-3000:]
            assert elapsed <= GRACEFUL_TIMEOUT

            # AND every request that got an answer got a whole 200
            answered = [r for r in results if isinstance(r, requests.Response)]
            assert answered, f"no request got a response: {results}"
            for r in answered:
                assert r.status_code == 200, (r.status_code, r.text[:300])
                assert len(r.json()["data"]) == page_size

            # AND the lease was handed back
            client = make_client(Config(DYNAMODB_ENDPOINT_URL=dynamodb_local,
                                        DYNAMODB_TABLE_NAME=env["DYNAMODB_TABLE_NAME"]))
            item = client.get_item(TableName=env["DYNAMODB_TABLE_NAME"], Key=LEASE_KEY, ConsistentRead=True)
            assert "Item" in item
            assert int(item["Item"]["expires_ms"]["N"]) <= int(time.time() * 1000), item["Item"]
        finally:
            _stop(process)


# -- 3. SIGHUP -------------------------------------------------------------------------


def test_sighup_replaces_workers_keeps_one_refresher_and_the_lease(dynamodb_local, tmp_path):
    with FakeCoinGecko(generate_catalog(40)) as cg:
        cg.tick()
        env = _env(dynamodb_local, cg, tmp_path)
        _flask(["migrate"], env)
        process, url, log_path = _start(env, tmp_path)
        try:
            before = _wait_for(lambda: _healthy_with_lease(url), 30, "healthy with the lease", log_path)
            owner = before["refresh_lease"]["owner"]
            old_workers = _wait_for(lambda: (c := _children(process.pid)) and len(c) == 2 and c, 10, "2 workers")
            refresher = _refreshers(process.pid)
            assert len(refresher) == 1, _processes(process.pid)

            # WHEN the master is told to reload
            process.send_signal(signal.SIGHUP)

            # THEN the workers are replaced
            new_workers = _wait_for(
                lambda: (c := _children(process.pid)) and len(c) == 2 and not (c & old_workers) and c,
                # An old worker leaves within graceful_timeout (20 s); one that does not is
                # killed by the master once it misses `timeout` (30 s) of heartbeats.
                60, "new workers", log_path,
            )
            assert new_workers.isdisjoint(old_workers)
            _wait_for(lambda: _get(url, "/health").status_code == 200, 10, "serving after the reload")

            # AND prices are still refreshed about once per interval, not twice
            cg.reset_log()
            started = time.monotonic()
            time.sleep(5 * INTERVAL)
            elapsed = time.monotonic() - started
            times = _markets(cg)
            assert elapsed / INTERVAL - 1 <= len(times) <= elapsed / INTERVAL + 1, times
            gaps = [b - a for a, b in zip(times, times[1:])]
            assert not gaps or min(gaps) >= INTERVAL * 0.8 - 0.2, gaps

            # AND the same refresher process runs, and it alone
            assert _refreshers(process.pid) == refresher
            # AND the same instance holds the lease
            after = _get(url, "/health/detailed").json()
            assert after["refresh_lease"]["owner"] == owner
            assert after["refresh_lease"]["fence"] == before["refresh_lease"]["fence"]
            assert process.poll() is None
        finally:
            _stop(process)


# -- 4. worker restarts while a refresh is in flight -------------------------------------

# A request that arrives just after a reload waits for a new worker to import the
# app: several seconds on a busy 2-core machine. A worker hung on a lock copied at
# fork never answers (its requests time out at 3 x BOUND, or die with it).
BOUND = 15.0
THREADS = 4


def _threads(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))


def test_workers_forked_during_slow_refreshes_under_load_never_hang(dynamodb_local, tmp_path):
    with FakeCoinGecko(generate_catalog(120)) as cg:
        cg.tick()
        env = _env(dynamodb_local, cg, tmp_path, RATE_LIMIT_READS="1000000/minute")
        _flask(["migrate"], env)
        process, url, log_path = _start(env, tmp_path)
        stop = threading.Event()
        try:
            _wait_for(lambda: _healthy_with_lease(url), 30, "healthy with the lease", log_path)
            refresher = _refreshers(process.pid)
            first_workers = _children(process.pid)
            # GIVEN refreshes in flight most of the time: a slow source (1.5 s of a
            # 2 s interval) whose prices keep moving, so every refresh also writes
            cg.set_fault("slow", delay=1.5)
            results: list[tuple[float, object]] = []

            def move():
                while not stop.wait(0.5):
                    cg.tick()

            def load():
                while not stop.is_set():
                    began = time.monotonic()
                    try:
                        response = requests.get(url + "/inventory/assets?limit=20", timeout=3 * BOUND,
                                                headers={"Connection": "close"})
                        outcome: object = response.status_code
                    except requests.RequestException as exc:
                        outcome = repr(exc)
                    results.append((time.monotonic() - began, outcome))

            threads = [threading.Thread(target=move)] + [threading.Thread(target=load) for _ in range(THREADS)]
            for t in threads:
                t.start()
            cg.reset_log()
            # WHEN the master forks workers again and again under that load: a reload of
            # all (HUP, which also resets the count to WEB_CONCURRENCY), one more (TTIN),
            # one fewer (TTOU): 2, 3, 2, 3, 2 workers
            for signum in (signal.SIGHUP, signal.SIGTTIN, signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU):
                process.send_signal(signum)
                time.sleep(2.5)
            _wait_for(lambda: len(_children(process.pid)) == 2 and not (_children(process.pid) & first_workers),
                      60, "two new workers, the old ones gone", log_path)
            time.sleep(2)
            stop.set()
            for t in threads:
                t.join(timeout=3 * BOUND + 5)

            # THEN every request got a 200 within the bound: no worker hung or crawled
            assert len(results) > 50, results
            late = [(round(seconds, 2), outcome) for seconds, outcome in results if outcome != 200 or seconds > BOUND]
            assert not late, (late[:10], len(results), log_path.read_text(errors="replace")[-3000:])
            # AND each new worker answers at once
            for _ in range(12):
                began = time.monotonic()
                assert _get(url, "/inventory/assets?limit=20", timeout=BOUND).status_code == 200
                assert time.monotonic() - began < 5
            # AND the master forked with no thread but its own running
            assert _threads(process.pid) == 1
            # AND the one refresher kept refreshing meanwhile (a slow refresh under this
            # load takes several seconds, so the storm sees a few of them, not one per interval)
            assert _refreshers(process.pid) == refresher
            assert len(_markets(cg)) >= 2
        finally:
            stop.set()
            cg.set_fault(None)
            _stop(process)
