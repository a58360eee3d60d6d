"""A malformed API_TOKENS / API_TOKENS_FILE (or any setting) stops the flask CLI and gunicorn in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from inventory.settings import load_config, load_config_or_exit

REPO = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")


def env(**settings) -> dict:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("API_TOKENS", "PROMETHEUS_MULTIPROC_DIR"))}
    # A closed loopback endpoint: nothing reaches a store, and nothing should try.
    return {**base, "DYNAMODB_ENDPOINT_URL": "http://127.0.0.1:9", "PRICE_REFRESH_ENABLED": "false", **settings}


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    # gunicorn logs its own start line (JSON) before the hook runs; ours is the only other line.
    lines = [line for line in result.stderr.splitlines() if line.strip() and '"logger": "gunicorn.error"' not in line]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def bad_file(tmp_path) -> Path:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps([{"name": "ops", "scopes": ["assets:write"], "hash": "sha256$x"}]))
    return path


@pytest.mark.parametrize("command", [["migrate"], ["routes"], ["create-token", "--name", "x"]])
def test_flask_cli_with_malformed_api_tokens_says_so_in_one_line(command):
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *command], cwd=REPO,
                            env=env(API_TOKENS='[{"name": "ops"'), capture_output=True, text=True, timeout=60)
    line = one_error_line(result)
    assert line.startswith("inventory: bad setting: API_TOKENS: not valid JSON")


def test_flask_cli_with_a_malformed_token_file_names_the_file_and_entry(bad_file):
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "migrate"], cwd=REPO,
                            env=env(API_TOKENS_FILE=str(bad_file)), capture_output=True, text=True, timeout=60)
    assert f"API_TOKENS_FILE {bad_file}: entry 0" in one_error_line(result)


@pytest.mark.e2e
@pytest.mark.parametrize("setting", ["API_TOKENS", "API_TOKENS_FILE"])
def test_gunicorn_with_malformed_tokens_stops_in_one_line_before_any_worker(setting, bad_file):
    value = "not json" if setting == "API_TOKENS" else str(bad_file)
    result = subprocess.run(
        [str(GUNICORN), "-c", "gunicorn.conf.py", "wsgi:app"], cwd=REPO,
        env=env(**{setting: value, "BIND": "127.0.0.1:0", "WEB_CONCURRENCY": "1"}),
        capture_output=True, text=True, timeout=60,
    )
    line = one_error_line(result)
    assert line.startswith(f"inventory: bad setting: {setting}")
    assert "Booting worker" not in result.stderr


def test_exit_if_misconfigured_is_quiet_for_good_settings_and_one_line_for_bad(bad_file):
    load_config_or_exit({})
    assert load_config({"HEALTH_TOP_ASSETS": "BTC,ETH"}).HEALTH_TOP_ASSETS == "BTC,ETH"
    for bad in ({"API_TOKENS": "{}"}, {"API_TOKENS_FILE": str(bad_file)}, {"HEALTH_TOP_ASSETS": "a;b"},
                {"CACHE_TTL_SECONDS": "soon"}):
        with pytest.raises(SystemExit) as caught:
            load_config_or_exit(bad)
        assert str(caught.value).startswith("inventory: bad setting: ") and "\n" not in str(caught.value)
