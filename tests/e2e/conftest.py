"""One real gunicorn per test module, serving a freshly migrated and seeded table on DynamoDB Local."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from inventory.config import Config
from inventory.devtools.dynamodb_local import free_port
from inventory.store import make_client

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
WORKERS = 3


@dataclass(frozen=True)
class GunicornServer:
    url: str
    table_name: str
    metrics_dir: Path
    log_path: Path
    seed_report: dict  # what `flask seed` printed
    workers: int

    def get(self, path: str, **kwargs) -> requests.Response:
        """GET over a new connection each time, so any worker may answer."""
        kwargs.setdefault("timeout", 10)
        return requests.get(self.url + path, **kwargs)

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


def _flask(args: list[str], env: dict) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, f"flask {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _wait_until_healthy(url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"gunicorn exited with {process.returncode}:\n{log_path.read_text(errors='replace')}"
            )
        try:
            if requests.get(url + "/health", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"gunicorn did not answer /health in time:\n{log_path.read_text(errors='replace')}")


def start_gunicorn(env: dict, log_path: Path) -> tuple[subprocess.Popen, str]:
    """gunicorn with gunicorn.conf.py on env["BIND"], logging to log_path; returns once /health answers."""
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    url = "http://" + env["BIND"]
    try:
        _wait_until_healthy(url, process, log_path)
    except BaseException:
        _stop(process)
        raise
    return process, url


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def gunicorn_server(dynamodb_local, tmp_path_factory):
    """`flask migrate` + `flask seed` on a fresh table, then gunicorn with 3 workers on a free port."""
    workdir = tmp_path_factory.mktemp("gunicorn")
    table_name = f"e2e-{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        "DYNAMODB_ENDPOINT_URL": dynamodb_local,
        "DYNAMODB_TABLE_NAME": table_name,
        # The refresher would call the real CoinGecko from the master and move
        # prices and ranks under the tests' feet.
        "PRICE_REFRESH_ENABLED": "false",
        # /health/detailed and /metrics ping the price source: a closed loopback port, never the internet.
        "COINGECKO_API_URL": "http://127.0.0.1:9/api/v3",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    _flask(["migrate"], env)
    seed_report = json.loads(_flask(["seed"], env).stdout)

    port = free_port()
    metrics_dir = workdir / "metrics"
    metrics_dir.mkdir()
    log_path = workdir / "gunicorn.log"
    env.update(
        BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY=str(WORKERS),
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        # gunicorn 27's control socket defaults to one path per user; a second
        # server would take it over (and delete it on exit) from a `make run`.
        GUNICORN_CMD_ARGS="--no-control-socket",
    )
    process, url = start_gunicorn(env, log_path)
    try:
        yield GunicornServer(url, table_name, metrics_dir, log_path, seed_report, WORKERS)
    finally:
        _stop(process)
        client = make_client(Config(DYNAMODB_ENDPOINT_URL=dynamodb_local, DYNAMODB_TABLE_NAME=table_name))
        client.delete_table(TableName=table_name)
