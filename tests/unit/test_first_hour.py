"""A new user's first hour: the CLI finds DynamoDB Local by itself, fails in one line, and tokens paste in one step."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from inventory import create_app
from inventory.config import development_store
from inventory.services.tokens import (
    TokenBook,
    append_token,
    hash_token,
    identify,
    merged_tokens,
    new_token,
    parse_tokens,
    remove_token,
)

REPO = Path(__file__).resolve().parents[2]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def no_aws_env(**extra) -> dict:
    """The environment of a fresh checkout: no AWS credentials anywhere, no endpoint."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DYNAMODB_", "API_TOKENS"))}
    env.update(AWS_SHARED_CREDENTIALS_FILE="/nonexistent", AWS_CONFIG_FILE="/nonexistent",
               AWS_EC2_METADATA_DISABLED="true", **extra)
    return env


# -- the store the CLI uses ------------------------------------------------------------

@pytest.mark.parametrize("environ, credentials, expected", [
    ({}, False, "http://localhost:8000"),
    ({"DYNAMODB_LOCAL_PORT": "9001"}, False, "http://localhost:9001"),
    ({}, True, None),
    ({"USE_REAL_AWS": "1"}, False, None),
    ({"DYNAMODB_ENDPOINT_URL": "http://elsewhere:8000"}, False, None),
])
def test_development_store_only_when_nothing_points_at_a_store(environ, credentials, expected):
    assert development_store(environ, credentials) == expected


@pytest.mark.parametrize("environ, expected", [
    ({}, "http://127.0.0.1:8123"),  # this checkout's running `make run` recorded it
    ({"DYNAMODB_LOCAL_PORT": "9001"}, "http://localhost:9001"),  # said out loud: that one
    ({"DYNAMODB_ENDPOINT_URL": "http://elsewhere:8000"}, None),
])
def test_the_store_a_running_make_run_recorded_comes_before_the_default_port(environ, expected):
    assert development_store(environ, False, running="http://127.0.0.1:8123") == expected



def flask_cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("command", [["migrate"], ["seed"], ["backfill-history", "BTC"]])
def test_cli_without_aws_or_local_store_fails_in_one_line_naming_the_local_endpoint(command):
    port = closed_port()

    result = flask_cli(*command, env=no_aws_env(DYNAMODB_LOCAL_PORT=str(port)))

    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.strip() and line.strip() != "seeding"]
    assert len(errors) == 1, result.stderr
    assert f"DynamoDB Local at http://localhost:{port}" in errors[0]
    assert "not reachable" in errors[0] and "Traceback" not in result.stderr


def test_backfill_history_of_an_unknown_asset_is_one_line(runner):
    result = runner.invoke(args=["backfill-history", "nope"])

    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: no asset 'NOPE' in the catalog (seed it, or check the id)"
    ]


def test_seed_into_a_missing_table_says_to_migrate(config, moto_client):
    missing = config.replace(DYNAMODB_TABLE_NAME="never-migrated")
    runner = create_app(missing, dynamodb_client=moto_client).test_cli_runner()

    result = runner.invoke(args=["seed"])

    assert result.exit_code == 1
    last = result.output.strip().splitlines()[-1]
    assert "table never-migrated does not exist" in last and "migrate" in last


def test_backfill_without_a_reachable_price_source_is_one_line(config, moto_client, runner):
    runner.invoke(args=["seed"])
    app = create_app(config.replace(COINGECKO_API_URL=f"http://127.0.0.1:{closed_port()}/api/v3",
                                    COINGECKO_RETRIES=0), dynamodb_client=moto_client)

    result = app.test_cli_runner().invoke(args=["backfill-history", "BTC", "--days", "1"])

    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: CoinGecko at http://127.0.0.1:"), result.output
    assert "COINGECKO_API_URL" in lines[0]


def test_refresh_without_a_reachable_price_source_prints_its_report_then_an_error_line(config, moto_client, runner):
    runner.invoke(args=["seed"])
    url = f"http://127.0.0.1:{closed_port()}/api/v3"
    app = create_app(config.replace(COINGECKO_API_URL=url, COINGECKO_RETRIES=0), dynamodb_client=moto_client)

    result = app.test_cli_runner().invoke(args=["refresh"])

    assert result.exit_code == 1
    report, error = result.stdout.rsplit("}", 1)[0] + "}", result.output.strip().splitlines()[-1]
    assert json.loads(report)["ok"] is False
    assert error.startswith("Error: refresh failed: ") and url in error and "COINGECKO_API_URL" in error


# -- tokens ----------------------------------------------------------------------------

def test_create_token_write_then_the_service_accepts_it(config, moto_client, runner, tmp_path, monkeypatch):
    path = tmp_path / "tokens.json"
    monkeypatch.setenv("API_TOKENS_FILE", str(path))

    made = runner.invoke(args=["create-token", "ops-alice", "--scope", "assets:write", "--write"])
    second = runner.invoke(args=["create-token", "ops-bob", "--scope", "assets:read", "--write"])

    assert made.exit_code == 0 and second.exit_code == 0
    token = made.stdout.strip()
    assert token.startswith("inv_") and "\n" not in token
    assert [e["name"] for e in json.loads(path.read_text())] == ["ops-alice", "ops-bob"]
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    app = create_app(config.replace(API_TOKENS="[]", API_TOKENS_FILE=str(path)), dynamodb_client=moto_client)
    patch = app.test_client().patch("/inventory/assets/BTC/status", json={"status": "SUSPENDED", "reason": "x"},
                                    headers={"Authorization": f"Bearer {token}"})
    assert patch.status_code not in (401, 403), patch.get_json()
    anonymous = app.test_client().patch("/inventory/assets/BTC/status", json={"status": "SUSPENDED"})
    assert anonymous.status_code == 401


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_token_file_is_read_again_when_it_changes(tmp_path):
    path = tmp_path / "tokens.json"
    alice, bob = new_token(), new_token()
    append_token(str(path), {"name": "alice", "scopes": ["assets:write"], "hash": hash_token(alice)})
    errors, clock = [], Clock()
    book = TokenBook("[]", str(path), check_seconds=2, clock=clock, on_error=errors.append)
    assert identify(book.entries(), alice).name == "alice" and identify(book.entries(), bob) is None

    # WHEN bob is added and alice revoked: nothing changes before the next look at the file
    append_token(str(path), {"name": "bob", "scopes": ["assets:read"], "hash": hash_token(bob)})
    remove_token(str(path), "alice")
    clock.now = 1.9
    assert identify(book.entries(), bob) is None
    clock.now = 2.0
    assert identify(book.entries(), bob).name == "bob" and identify(book.entries(), alice) is None

    # WHEN the file is broken by hand: the tokens read before stay, and the problem is reported
    path.write_text('[{"name": "carol"')
    clock.now = 4.0
    assert identify(book.entries(), bob).name == "bob"
    assert len(errors) == 1 and "API_TOKENS_FILE" in str(errors[0])


def test_a_token_name_is_one_token(runner, tmp_path, monkeypatch):
    path = tmp_path / "tokens.json"
    monkeypatch.setenv("API_TOKENS_FILE", str(path))
    assert runner.invoke(args=["create-token", "ops", "--scope", "assets:read", "--write"]).exit_code == 0

    again = runner.invoke(args=["create-token", "ops", "--scope", "assets:admin", "--write"])

    assert again.exit_code == 1 and "already has a token named 'ops'" in again.output
    assert [e["name"] for e in json.loads(path.read_text())] == ["ops"]
    with pytest.raises(ValueError, match="'ops' is used twice"):
        merged_tokens(path.read_text(), str(path))
    revoked = runner.invoke(args=["revoke-token", "ops"])
    assert revoked.exit_code == 0 and json.loads(path.read_text()) == []
    assert runner.invoke(args=["revoke-token", "ops"]).exit_code == 1


def test_create_token_prints_a_list_that_api_tokens_accepts(runner):
    result = runner.invoke(args=["create-token", "ops-alice", "--scope", "assets:write"])

    token = result.stdout.splitlines()[0].rsplit(" ", 1)[1]
    (entry,) = parse_tokens(result.stdout.splitlines()[-1])
    assert identify([entry], token) is entry


GOOD = {"name": "ops-alice", "scopes": ["assets:write"], "hash": hash_token("inv_x")}


@pytest.mark.parametrize("raw, message", [
    ("{not json", "API_TOKENS: not valid JSON"),
    ('"a string"', "API_TOKENS: expected a JSON list"),
    (json.dumps([{"name": "a"}]), "API_TOKENS: entry 0: expected an object with name, scopes and hash"),
    (json.dumps([GOOD, {**GOOD, "name": "b", "scopes": ["root"]}]), "entry 1 ('b'): scopes must be"),
    # What `export API_TOKENS="[...sha256$ab$cd...]"` leaves after the shell expanded $ab and $cd.
    (json.dumps([{**GOOD, "hash": "sha256"}]), "entry 0 ('ops-alice'): hash is not sha256$<salt>$<digest>"),
])
def test_bad_api_tokens_name_the_entry(raw, message):
    with pytest.raises(ValueError) as caught:
        parse_tokens(raw)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_single_pasted_entry_is_accepted():
    assert [e.name for e in parse_tokens(json.dumps(GOOD))] == ["ops-alice"]


def test_a_bad_token_file_stops_the_service_naming_the_file(config, moto_client, tmp_path):
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps([{**GOOD, "hash": "sha256"}]))

    with pytest.raises(ValueError, match=f"API_TOKENS_FILE {path}: entry 0"):
        create_app(config.replace(API_TOKENS_FILE=str(path)), dynamodb_client=moto_client)
    assert json.loads(merged_tokens(json.dumps([GOOD]), str(tmp_path / "absent.json"))) == [GOOD]


# -- make run --------------------------------------------------------------------------

def test_make_run_with_the_dynamodb_local_port_taken_names_port_and_variable():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = no_aws_env(DYNAMODB_LOCAL_PORT=str(port), BIND=f"127.0.0.1:{closed_port()}",
                         STREAM_BIND=f"127.0.0.1:{closed_port()}")

        result = subprocess.run([sys.executable, "-m", "inventory.devtools.run"], env=env, cwd=REPO,
                                capture_output=True, text=True, timeout=60)

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert f"port {port} for DynamoDB Local is taken" in result.stderr
    assert f"DYNAMODB_LOCAL_PORT={port + 1} make run" in result.stderr


@pytest.mark.parametrize("variable", ["BIND", "STREAM_BIND"])
def test_make_run_with_a_service_port_taken_names_port_and_variable_before_starting_anything(variable):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        binds = {"BIND": f"127.0.0.1:{closed_port()}", "STREAM_BIND": f"127.0.0.1:{closed_port()}"}
        env = no_aws_env(**{**binds, variable: f"127.0.0.1:{port}"}, DYNAMODB_LOCAL_PORT=str(closed_port()))

        result = subprocess.run([sys.executable, "-m", "inventory.devtools.run"], env=env, cwd=REPO,
                                capture_output=True, text=True, timeout=60)

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert f"port {port} for" in result.stderr and f"{variable}=0.0.0.0:{port + 1} make run" in result.stderr
    assert "DynamoDB Local on" not in result.stdout  # nothing was started
