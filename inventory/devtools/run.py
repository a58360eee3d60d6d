"""`make run` / `make demo`: DynamoDB Local (unless told otherwise), migrate, seed, then gunicorn on :8002.

Ctrl-C stops gunicorn and the DynamoDB Local (and demo price source) this started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request

from ..config import DEFAULT_DYNAMODB_LOCAL_PORT
from .dynamodb_local import REPO, DynamoDBLocal

# Coins the demo price source lists: the bundled catalog comes first, then the fake's quirk coins.
DEMO_COINS = 150


class RunError(Exception):
    """Why `make run` cannot start, in one line."""


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_dynamodb_local(env: dict) -> DynamoDBLocal:
    raw = env.get("DYNAMODB_LOCAL_PORT") or str(DEFAULT_DYNAMODB_LOCAL_PORT)
    if not raw.isdigit():
        raise RunError(f"DYNAMODB_LOCAL_PORT={raw!r} is not a port number")
    port = int(raw)
    if port_in_use(port):
        raise RunError(
            f"port {port} for DynamoDB Local is taken: choose another with DYNAMODB_LOCAL_PORT={port + 1} make run, "
            f"or use the DynamoDB already there with DYNAMODB_ENDPOINT_URL=http://localhost:{port} make run"
        )
    try:
        return DynamoDBLocal(port=port, db_path=REPO / ".local" / "dynamodb-data").start()
    except (OSError, RuntimeError) as exc:
        raise RunError(f"DynamoDB Local did not start: {exc}") from exc


def start_demo_source():
    """The local CoinGecko emulator serving the bundled catalog's coins, so prices flow without internet."""
    from ..jobs.seed import bundled_rows
    from .coingecko import FakeCoinGecko, generate_catalog

    identities = [{k: row[k] for k in ("id", "symbol", "name", "market_cap_rank")} for row in bundled_rows()]
    return FakeCoinGecko(generate_catalog(DEMO_COINS, base=identities)).start()


def source_reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/ping", timeout=3):
            return True
    except OSError:
        return False


def main() -> int:
    try:
        return run(dict(os.environ))
    except RunError as exc:
        print(f"make run: {exc}", file=sys.stderr)
        return 1


def run(env: dict) -> int:
    local = demo = None
    env.setdefault("API_TOKENS_FILE", str(REPO / ".local" / "tokens.json"))
    bind = env.get("BIND", "0.0.0.0:8002")
    service_port = bind.rpartition(":")[2]
    if service_port.isdigit() and port_in_use(int(service_port)):
        raise RunError(f"port {service_port} for the service is taken: choose another with BIND=0.0.0.0:8003 make run")
    try:
        if not env.get("DYNAMODB_ENDPOINT_URL") and env.get("USE_REAL_AWS") != "1":
            local = start_dynamodb_local(env)
            env["DYNAMODB_ENDPOINT_URL"] = local.endpoint
            print(f"DynamoDB Local on {local.endpoint} (data in .local/dynamodb-data)", flush=True)
        if env.get("DEMO", "").lower() in {"1", "true", "yes", "on"}:
            demo = start_demo_source()
            env["COINGECKO_API_URL"] = demo.url
            print(f"demo: prices from the local CoinGecko emulator at {demo.url} (made up, not market data)",
                  flush=True)
        elif not source_reachable(env.get("COINGECKO_API_URL") or "https://api.coingecko.com/api/v3"):
            print("CoinGecko is not reachable from here: assets get no price, so lists (active_only=true) are "
                  "empty; `make demo` serves made-up prices from a local emulator", flush=True)
        print(f"tokens: {env['API_TOKENS_FILE']} (add one with "
              "`.venv/bin/flask --app wsgi create-token NAME --scope assets:write --write`, then restart)", flush=True)
        flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
        for command in ("migrate", "seed"):
            if subprocess.run([*flask, command], env=env, cwd=REPO).returncode:
                return 1  # the command printed its one-line reason
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], env=env, cwd=REPO
        )
        # The live stream's role: its own gunicorn, so streams never hold request threads.
        streams = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            env={**env, "STREAM_ROLE": "1", "BIND": env.get("STREAM_BIND", "0.0.0.0:8012")}, cwd=REPO,
        )
        print(f"live stream on {env.get('STREAM_BIND', '0.0.0.0:8012')} (/inventory/stream, /inventory/assets/stream)", flush=True)
        # Ctrl-C reaches gunicorn too (same process group); SIGTERM is passed on.
        signal.signal(signal.SIGTERM, lambda *_: (server.terminate(), streams.terminate()))
        while True:
            try:
                code = server.wait()
                streams.terminate()
                streams.wait()
                return code
            except KeyboardInterrupt:
                continue
    finally:
        if demo:
            demo.stop()
        if local:
            local.stop()


if __name__ == "__main__":
    sys.exit(main())
