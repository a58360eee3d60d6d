"""Ctrl-C under load: `make run` stopped as a terminal stops it, with SSE and WebSocket clients open.

    .venv/bin/python -m bench.stop --stops 10 --clients 50      (also in `make bench`)

Each round starts `python -m inventory.devtools.run` (what `make run` runs) in its own process
group on DynamoDB Local, opens N SSE and N WebSocket clients on the stream role, then sends
SIGINT to the whole group (what Ctrl-C does) and measures how long until `make run` has exited.
Counts the workers gunicorn had to SIGKILL (its "Perhaps out of memory?" line) and the clients
that got a `close` message with `reconnect: true` before their connection ended.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import websocket

from inventory.devtools.dynamodb_local import DynamoDBLocal, free_port

from .report import write_section

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT = 90


def sse_client(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /inventory/assets/stream?assets=BTC HTTP/1.0\r\nHost: bench\r\n\r\n")
    data = b""
    while b"event: snapshot" not in data:
        data += sock.recv(65536)
    return sock


def sse_got_close(sock: socket.socket) -> bool:
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except OSError:
        pass
    sock.close()
    return b"event: close" in data and b'"reconnect": true' in data


def ws_client(port: int):
    ws = websocket.create_connection(f"ws://127.0.0.1:{port}/inventory/stream?assets=BTC", timeout=10)
    while json.loads(ws.recv() or "{}").get("type") != "snapshot":
        pass
    return ws


def ws_got_close(ws) -> bool:
    try:
        while True:
            raw = ws.recv()
            if not raw:
                return False
            message = json.loads(raw)
            if message.get("type") == "close":
                return message.get("reconnect") is True
    except (websocket.WebSocketException, OSError, ValueError):
        return False
    finally:
        ws.close()


def wait_listening(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"make run exited ({process.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("make run did not start")


def one_stop(endpoint: str, table: str, clients: int, workdir: Path) -> dict:
    api, streams = free_port(), free_port()
    env = {**os.environ, "DYNAMODB_ENDPOINT_URL": endpoint, "DYNAMODB_TABLE_NAME": table,
           "BIND": f"127.0.0.1:{api}", "STREAM_BIND": f"127.0.0.1:{streams}",
           "API_TOKENS_FILE": str(workdir / "tokens.json"), "COINGECKO_API_URL": "http://127.0.0.1:9/api/v3",
           "LOCAL_RUN_FILE": str(workdir / "run.json")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log_path = workdir / f"run-{uuid.uuid4().hex[:6]}.log"
    with open(log_path, "wb") as log:
        # Its own process group, as a terminal's foreground job: Ctrl-C signals every process in it.
        process = subprocess.Popen([sys.executable, "-m", "inventory.devtools.run"], cwd=REPO, env=env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_listening(api, process)
        wait_listening(streams, process)
        sse = [sse_client(streams) for _ in range(clients)]
        ws = [ws_client(streams) for _ in range(clients)]
        started = time.monotonic()
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=120)
        seconds = time.monotonic() - started
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    text = log_path.read_text(errors="replace")
    return {
        "seconds": seconds,
        "exit": process.returncode,
        "sigkilled": text.count("SIGKILL"),
        "sse_closed": sum(sse_got_close(s) for s in sse),
        "ws_closed": sum(ws_got_close(w) for w in ws),
        "log": str(log_path),
    }


def run(stops: int, clients: int) -> list[dict]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-stop-"))
    local = DynamoDBLocal(port=free_port()).start()  # in memory (no db_path)
    try:
        table = f"bench-stop-{uuid.uuid4().hex[:8]}"
        return [one_stop(local.endpoint, table, clients, workdir) for _ in range(stops)]
    finally:
        local.stop()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stops", type=int, default=10)
    parser.add_argument("--clients", type=int, default=50, help="SSE clients, and as many WebSocket clients")
    args = parser.parse_args(argv)
    results = run(args.stops, args.clients)
    for r in results:
        print(json.dumps(r))
    seconds = sorted(r["seconds"] for r in results)
    rows = [[
        str(len(results)),
        f"{args.clients} + {args.clients}",
        f"{statistics.median(seconds):.1f} s",
        f"{seconds[-1]:.1f} s",
        str(sum(r["sigkilled"] for r in results)),
        f"{sum(r['sse_closed'] for r in results)}/{args.clients * len(results)}",
        f"{sum(r['ws_closed'] for r in results)}/{args.clients * len(results)}",
        str(sum(r["exit"] != 0 for r in results)),
    ]]
    print(write_section(
        "Ctrl-C under load (bench.stop)",
        f".venv/bin/python -m bench.stop --stops {args.stops} --clients {args.clients}",
        ["stops", "SSE + WS clients", "stop time p50", "stop time max", "workers SIGKILLed",
         "SSE clients sent close", "WS clients sent close", "non-zero exits"],
        rows,
        "SIGINT to `make run`'s whole process group (a terminal's Ctrl-C) with the clients open; "
        "stop time is from the signal to `make run`'s exit (both gunicorns, graceful_timeout 20 s).",
    ))


if __name__ == "__main__":
    main()
