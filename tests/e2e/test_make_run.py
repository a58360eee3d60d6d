"""`make run` as a newcomer meets it: a CLI command in a second shell finds its store with nothing
exported, and a token created while the service runs works without a restart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import requests

from inventory.devtools.dynamodb_local import free_port
from tests.unit.test_first_hour import no_aws_env

from .conftest import REPO, _flask, _stop, start_gunicorn

START_TIMEOUT = 120.0


def test_a_cli_command_in_another_shell_uses_the_store_make_run_started_on_its_port(tmp_path):
    # GIVEN make run on a non-default DynamoDB Local port (its own DynamoDB Local, data in the checkout)
    run_file = tmp_path / "run.json"
    port = free_port()
    env = no_aws_env(DYNAMODB_LOCAL_PORT=str(port), BIND=f"127.0.0.1:{free_port()}",
                     STREAM_BIND=f"127.0.0.1:{free_port()}", LOCAL_RUN_FILE=str(run_file),
                     DYNAMODB_TABLE_NAME="make-run-e2e", API_TOKENS_FILE=str(tmp_path / "tokens.json"),
                     COINGECKO_API_URL="http://127.0.0.1:9/api/v3", WEB_CONCURRENCY="1")
    log_path = tmp_path / "run.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "inventory.devtools.run"], cwd=REPO, env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not run_file.exists():
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.2)
        assert json.loads(run_file.read_text())["dynamodb_endpoint"].endswith(f":{port}")

        # WHEN a command runs in a second shell with none of make run's variables
        shell = no_aws_env(LOCAL_RUN_FILE=str(run_file), DYNAMODB_TABLE_NAME="make-run-e2e")
        migrate = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "migrate"], cwd=REPO, env=shell,
                                 capture_output=True, text=True, timeout=60)
        # THEN it reached that store, and said which
        assert migrate.returncode == 0, migrate.stderr
        assert "nothing to apply" in migrate.stdout
        assert f"DynamoDB Local at http://127.0.0.1:{port} (this checkout's `make run`" in migrate.stderr

        # AND one told to use another store says it is not this checkout's
        elsewhere = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "migrate"], cwd=REPO,
                                   env={**shell, "DYNAMODB_ENDPOINT_URL": "http://127.0.0.1:9"},
                                   capture_output=True, text=True, timeout=60)
        assert elsewhere.returncode == 1
        assert f"note: this checkout's `make run` uses http://127.0.0.1:{port}" in elsewhere.stderr
    finally:
        _stop(process)
    assert not run_file.exists()  # a stopped run leaves no file behind


def test_a_token_created_with_write_works_on_the_running_service_within_ten_seconds(dynamodb_local, tmp_path):
    tokens = tmp_path / "tokens.json"
    env = {**os.environ, "DYNAMODB_ENDPOINT_URL": dynamodb_local, "DYNAMODB_TABLE_NAME": f"tokens-{free_port()}",
           "API_TOKENS_FILE": str(tokens), "PRICE_REFRESH_ENABLED": "false", "BIND": f"127.0.0.1:{free_port()}",
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"), "GUNICORN_CMD_ARGS": "--no-control-socket",
           # The test asks often while it waits: the write limit (120/min) is not what it measures.
           "RATE_LIMIT_WRITES": "100000/minute"}
    env.pop("API_TOKENS", None)
    (tmp_path / "metrics").mkdir()
    _flask(["migrate"], env)
    _flask(["seed"], env)
    server, url = start_gunicorn(env, tmp_path / "gunicorn.log")
    try:
        def status_change(token: str) -> int:
            return requests.patch(f"{url}/inventory/assets/BTC/status", json={"status": "SUSPENDED", "reason": "t"},
                                  headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code

        def settled(token: str, status: int, since: float) -> None:
            # Every worker re-reads the file on its own (at most every 2 s): wait until ten answers
            # in a row, spread over the workers, all say the same; within 10 s of the change.
            while {status_change(token) for _ in range(10)} != {status}:
                assert time.monotonic() - since < 10, f"not every worker answers {status} within 10 s"
                time.sleep(0.5)

        # WHEN an operator creates a token while the service runs: every worker accepts it
        # (428: past authentication, the write needs If-Match)
        made = _flask(["create-token", "ops", "--scope", "assets:write", "--write"], env)
        settled(made.stdout.strip(), 428, time.monotonic())

        # WHEN it is revoked: every worker refuses it again
        _flask(["revoke-token", "ops"], env)
        settled(made.stdout.strip(), 401, time.monotonic())
    finally:
        _stop(server)
