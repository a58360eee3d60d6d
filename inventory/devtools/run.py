"""`make run` / `make demo`: DynamoDB Local (unless told otherwise), migrate, seed, then the API
role's gunicorn on BIND (:8002) and the stream role's on STREAM_BIND (:8012).

Any of them failing to start, or stopping, stops them all with one line naming its variable;
Ctrl-C stops the gunicorns and the DynamoDB Local (and demo price sources) this started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from ..config import DEFAULT_DYNAMODB_LOCAL_PORT
from . import local_run
from .dynamodb_local import REPO, DynamoDBLocal

# Coins the demo price source lists: the bundled catalog comes first, then the fake's quirk coins.
DEMO_COINS = 150


class RunError(Exception):
    """Why `make run` cannot start, in one line."""


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


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


def start_demo_source(env: dict):
    """The local CoinGecko emulator serving the bundled catalog's coins, so prices flow without internet.

    They start at late-2025 reference levels (inventory/data/market_levels_2025.json) and take a
    small random step every DEMO_TICK_SECONDS (default 20, or half of PRICE_REFRESH_INTERVAL_SECONDS
    when that is shorter), so every refresh finds new prices and the demo never goes stale.
    """
    from ..jobs.seed import bundled_rows
    from .coingecko import FakeCoinGecko, generate_catalog, pegged_ids, reference_levels

    tick = demo_tick_seconds(env)
    identities = [{k: row[k] for k in ("id", "symbol", "name", "market_cap_rank")} for row in bundled_rows()]
    levels = reference_levels()
    return FakeCoinGecko(generate_catalog(DEMO_COINS, base=identities, levels=levels),
                         tick_seconds=tick, pegged=pegged_ids(levels)).start()


def start_demo_exchange(coingecko):
    """A local Binance emulator over the demo's CoinGecko emulator: the second price source.

    Its pairs (the top coins against USDT) are priced from the same catalog at the moment of each
    request, so they follow the same walk and the cross-check between the two sources agrees.
    """
    from .binance import FakeBinance

    return FakeBinance(coingecko).start()


def demo_tick_seconds(env) -> float:
    """DEMO_TICK_SECONDS, else 20 s, or half the refresh interval when that is shorter."""
    raw = env.get("DEMO_TICK_SECONDS")
    if raw:
        try:
            tick = float(raw)
        except ValueError:
            tick = 0.0
        if not 0 < tick < float("inf"):
            raise RunError(f"DEMO_TICK_SECONDS={raw!r} is not a number of seconds above 0")
        return tick
    try:
        refresh = float(env.get("PRICE_REFRESH_INTERVAL_SECONDS") or 60)
    except ValueError:
        refresh = 60.0  # the service refuses it when it starts, naming the variable
    return min(20.0, refresh / 2) if refresh > 0 else 20.0


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
    local = demo = exchange = None
    env.setdefault("API_TOKENS_FILE", str(REPO / ".local" / "tokens.json"))
    api = Role("the API", "BIND", env.get("BIND", "0.0.0.0:8002"), {})
    streams = Role("the live stream", "STREAM_BIND", env.get("STREAM_BIND", "0.0.0.0:8012"), {"STREAM_ROLE": "1"})
    for role in (api, streams):
        role.check_free()
    # The API role answers a stream or board request with a 307 to the stream role.
    env.setdefault("STREAM_PUBLIC_URL", streams.public_url())
    started: list[subprocess.Popen] = []
    try:
        if not env.get("DYNAMODB_ENDPOINT_URL") and env.get("USE_REAL_AWS") != "1":
            local = start_dynamodb_local(env)
            env["DYNAMODB_ENDPOINT_URL"] = local.endpoint
            print(f"DynamoDB Local on {local.endpoint} (data in .local/dynamodb-data)", flush=True)
        if env.get("DEMO", "").lower() in {"1", "true", "yes", "on"}:
            demo = start_demo_source(env)
            env["COINGECKO_API_URL"] = demo.url
            print(f"demo: prices from the local CoinGecko emulator at {demo.url} (late-2025 levels, a small "
                  "random step every few seconds; not market data)",
                  flush=True)
            exchange = start_demo_exchange(demo)
            env["BINANCE_API_URL"] = exchange.url
            print(f"demo: second source from the local Binance emulator at {exchange.url} (its pairs "
                  "priced from the same emulated market)", flush=True)
        elif not source_reachable(env.get("COINGECKO_API_URL") or "https://api.coingecko.com/api/v3"):
            print("CoinGecko is not reachable from here: assets get no price, so lists (tradable=true) are "
                  "empty; `make demo` serves made-up prices from a local emulator", flush=True)
        print(f"tokens: {env['API_TOKENS_FILE']} (add one with "
              "`.venv/bin/flask --app wsgi create-token NAME --scope assets:write --write`; it works within seconds)", flush=True)
        flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
        for command in ("migrate", "seed"):
            if subprocess.run([*flask, command], check=False, env=env, cwd=REPO).returncode:
                return 1  # the command printed its one-line reason
        # Two gunicorns: the API, and the live stream's role, so streams never hold request threads.
        for role in (api, streams):
            started.append(role.start(env))
        for role, process in zip((api, streams), started):
            role.wait_serving(process)
        # A CLI command in another shell finds this store and price source (inventory/cli.py).
        local_run.record(dynamodb_endpoint=env["DYNAMODB_ENDPOINT_URL"] if local else None,
                         price_source=demo.url if demo else None, api=api.bind, stream=streams.bind)
        print(f"service on {api.bind}; live stream on {streams.bind} (/inventory/assets/stream, /board; "
              f"the service redirects them there)", flush=True)
        return supervise(dict(zip(started, (api, streams))))
    finally:
        for process in started:
            if process.poll() is None:
                process.terminate()
        for process in started:
            process.wait()
        local_run.forget()
        if exchange:
            exchange.stop()
        if demo:
            demo.stop()
        if local:
            local.stop()


class Role:
    """One of `make run`'s gunicorns: what it is called, the variable naming its address, its settings."""

    def __init__(self, what: str, variable: str, bind: str, settings: dict):
        self.what, self.variable, self.bind, self.settings = what, variable, bind, settings
        self.host, _, port = bind.rpartition(":")
        if not port.isdigit():
            raise RunError(f"{variable}={bind!r} is not host:port")
        self.port = int(port)
        # Where to look for it: loopback when it listens on every interface.
        self.local = "127.0.0.1" if self.host in ("", "0.0.0.0", "::", "[::]") else self.host.strip("[]")

    def check_free(self) -> None:
        if port_in_use(self.port, self.local):
            raise RunError(f"port {self.port} for {self.what} is taken: choose another with "
                           f"{self.variable}=0.0.0.0:{self.port + 1} make run")

    def public_url(self) -> str:
        # Bound to every interface: the redirect keeps the host the client used (http://:port).
        host = "" if self.local == "127.0.0.1" and self.host != "127.0.0.1" else self.host
        return f"http://{host}:{self.port}"

    def start(self, env: dict) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
                                env={**env, **self.settings, "BIND": self.bind}, cwd=REPO)

    def wait_serving(self, process: subprocess.Popen, seconds: float = 60) -> None:
        """Return once it accepts connections; a gunicorn that exits first (cannot bind, bad settings) stops the run."""
        deadline = time.monotonic() + seconds
        while not port_in_use(self.port, self.local):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RunError(f"{self.what} did not start on {self.variable}={self.bind} "
                               f"(exit {process.poll()}; its log is above)")
            time.sleep(0.2)

    def stopped(self, code: int) -> str:
        return f"{self.what} on {self.variable}={self.bind} stopped (exit {code}); stopping the rest"


def supervise(roles: dict[subprocess.Popen, Role]) -> int:
    """Wait for the gunicorns; when one stops, the run stops (each of them is needed)."""
    stopping = []

    def stop(*_):
        stopping.append(True)
        for process in roles:
            process.terminate()

    signal.signal(signal.SIGTERM, stop)
    while True:
        try:
            for process, role in roles.items():
                code = process.poll()
                if code is not None:
                    if not stopping:
                        print(f"make run: {role.stopped(code)}", file=sys.stderr, flush=True)
                    return code
            time.sleep(0.2)
        except KeyboardInterrupt:
            # A terminal's Ctrl-C reached the gunicorns too (one process group); a SIGINT sent to
            # this process alone did not: pass it on (a second one is ignored, gunicorn.conf.py).
            stopping.append(True)
            for process in roles:
                if process.poll() is None:
                    process.send_signal(signal.SIGINT)


if __name__ == "__main__":
    sys.exit(main())
