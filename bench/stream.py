"""Live stream benchmark: N SSE or WebSocket clients on the stream role while wrk reads cached
details from the API role.

    .venv/bin/python -m bench.stream --clients 500 --seconds 15 --rounds 2     (also in `make bench`)

One run, the same two gunicorn masters throughout (API role: the default 2 gthread
workers; stream role: STREAM_ROLE=1, default limits), DynamoDB Local, price moves committed
to the table once a second by a PriceStore write (as the refresher writes them) in every
phase. Phases alternate: reads alone (A), reads with N freshly opened SSE streams, A, reads
with N WebSocket streams, A, ..., so drift on a shared machine cancels. Reports the read throughput ratio median(B) / median(A),
that every client got every update of its B with consecutive asset_seq (no gap), the
commit-to-client delay (from the write's acknowledgement to the client's read of the
message; p50/p99) and the stream worker's RSS growth per open connection.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import selectors
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)

from inventory.config import Config
from inventory.devtools.dynamodb_local import DynamoDBLocal
from inventory.store import AssetStore, make_client
from inventory.store.migrate import migrate
from inventory.store.prices import PriceStore, PriceUpdate
from tests.conftest import build_asset

from .http import DETAIL, MAX_AGE, Server, base_env, lua_script, wrk
from .report import write_section

ASSETS = ["BTC", "ETH", "SOL", "XRP", "ADA"]
KINDS = ("sse", "websocket")
READ_CONNECTIONS = 16
REQUIRED_RATIO = 0.7
TARGET_P99_MS = 2000


class Clients:
    """N stream clients (SSE or WebSocket) in one thread (selectors), so the load generator's own
    cost stays small.

    SSE: HTTP/1.0 requests: gunicorn then streams the body unchunked until it closes, so events
    are split on blank lines alone. WebSocket: wsproto's client state machine per socket (it
    answers the server's pings, which would otherwise drop the client).
    """

    def __init__(self, host: str, port: int, path: str, count: int, kind: str = "sse"):
        self.kind = kind
        self.selector = selectors.DefaultSelector()
        self.inboxes: list[list[tuple[float, dict]]] = [[] for _ in range(count)]
        self.snapshots = [0] * count
        self.buffers = [b""] * count
        self.answered = [False] * count
        self.refused = 0
        self.stopping = threading.Event()
        self.sessions = []
        request = f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n\r\n".encode()
        for n in range(count):
            sock = socket.create_connection((host, port), timeout=30)
            if kind == "websocket":
                session = WSConnection(ConnectionType.CLIENT)
                self.sessions.append(session)
                sock.sendall(session.send(Request(host=f"{host}:{port}", target=path.replace("/assets/stream", "/stream"))))
            else:
                sock.sendall(request)
            sock.setblocking(False)
            self.selector.register(sock, selectors.EVENT_READ, n)
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stopping.is_set():
            for key, _ in self.selector.select(timeout=0.2):
                n = key.data
                try:
                    data = key.fileobj.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    self.selector.unregister(key.fileobj)
                    key.fileobj.close()
                    continue
                now = time.time()
                if self.kind == "websocket":
                    self._frames(n, key.fileobj, data, now)
                    continue
                buffer = self.buffers[n] + data
                if not self.answered[n]:
                    self.answered[n] = True
                    self.refused += b" 200 " not in buffer.split(b"\r\n", 1)[0]  # the status line
                *events, self.buffers[n] = buffer.split(b"\n\n")
                for event in events:
                    for line in event.split(b"\n"):
                        if line.startswith(b"data:"):
                            self._message(n, json.loads(line[5:]), now)

    def _frames(self, n: int, sock, data: bytes, now: float) -> None:
        session = self.sessions[n]
        session.receive_data(data)
        for event in session.events():
            if isinstance(event, AcceptConnection):
                self.answered[n] = True
            elif isinstance(event, RejectConnection):
                self.answered[n] = True
                self.refused += 1
            elif isinstance(event, Ping):
                sock.sendall(session.send(event.response()))
            elif isinstance(event, TextMessage):
                self.buffers[n] += event.data.encode()
                if event.message_finished:
                    self._message(n, json.loads(self.buffers[n]), now)
                    self.buffers[n] = b""

    def _message(self, n: int, message: dict, now: float) -> None:
        if message["type"] == "snapshot":
            self.snapshots[n] += 1
        elif message["type"] in ("price", "status"):
            self.inboxes[n].append((now, message))

    def ready(self, per_client: int, timeout: float) -> int:
        """How many clients have their whole snapshot, waiting up to `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and sum(s >= per_client for s in self.snapshots) < len(self.snapshots):
            time.sleep(0.2)
        return sum(s >= per_client for s in self.snapshots)

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()
        self.selector.close()


class Mover(threading.Thread):
    """Commits one price move of every asset each second; remembers when each round was acknowledged."""

    def __init__(self, prices: PriceStore, start: datetime):
        super().__init__(daemon=True)
        self.prices, self.start_at = prices, start
        self.round = 0
        self.commits: dict[int, float] = {}  # asset_seq -> acknowledged at (time.time())
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(1.0):
            n = self.round + 1
            at = self.start_at + timedelta(seconds=n)
            updates = [PriceUpdate(a, {"current_price": Decimal(100 + n), "last_price_update": at}, at,
                                   {"price": Decimal(100 + n)}, stream_seq=n - 1) for a in ASSETS]
            applied = self.prices.apply(updates).applied
            self.commits[n] = time.time()
            self.round = n
            if len(applied) != len(ASSETS):
                raise RuntimeError(f"round {n}: {len(applied)} of {len(ASSETS)} updates applied")

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)


def _cpu_seconds(server: Server) -> float:
    """User + system CPU of the server's workers so far."""
    total = 0
    for pid in server.worker_pids():
        with contextlib.suppress(FileNotFoundError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


def _rss_kb(server: Server) -> int:
    return int(sum(server.worker_rss_mb().values()) * 1024)


def run(clients: int, seconds: int, rounds: int = 2, kinds: tuple[str, ...] = KINDS) -> dict:
    load_before = os.getloadavg()[0]
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-stream-")))
        local = stack.enter_context(DynamoDBLocal())
        table = f"bench-stream-{uuid.uuid4().hex[:8]}"
        client = make_client(Config(DYNAMODB_ENDPOINT_URL=local.endpoint, DYNAMODB_TABLE_NAME=table))
        start = datetime.now(UTC)
        migrate(client, table, start)
        store = AssetStore(client, table)
        for rank, asset_id in enumerate(ASSETS, 1):
            store.create(build_asset(asset_id, rank, price="100", now=start))
        env = {**base_env(), "DYNAMODB_ENDPOINT_URL": local.endpoint, "DYNAMODB_TABLE_NAME": table,
               "PRICE_MAX_AGE_SECONDS": str(MAX_AGE), "GUNICORN_CMD_ARGS": "--no-control-socket"}
        # Every client from one address, with the default per-client limits (none for anonymous
        # clients); room for one phase's clients, as a closed client's slot is freed at once.
        api = Server("api", "wsgi:app", {**env, "WEB_CONCURRENCY": "2"}, workdir)
        streams = Server("stream", "wsgi:app", {**env, "STREAM_ROLE": "1",
                                                "STREAM_MAX_CONNECTIONS": str(max(500, clients + 10))}, workdir)
        for server in (api, streams):
            stack.callback(server.stop)
            server.start().wait_healthy()
        script = lua_script(workdir, "detail")
        wrk(api.url + DETAIL, script, READ_CONNECTIONS, 3)  # warm the caches

        mover = Mover(PriceStore(client, table, 30, 1), start)
        mover.start()
        stack.callback(mover.stop)

        def reads(label: str):
            result = wrk(api.url + DETAIL, script, READ_CONNECTIONS, seconds)
            print(f"  {label:<34} {result.rps:8.0f} req/s  p99 {result.p99_ms:7.2f} ms  errors {result.errors}",
                  flush=True)
            return result

        # The stream worker's hub warmed by one stream, so the RSS growth is the connections' alone.
        Clients("127.0.0.1", streams.port, "/inventory/assets/stream?assets=BTC", 1).close()
        time.sleep(1)
        idle_kb = _rss_kb(streams)
        alone, phases = [], {kind: [] for kind in kinds}
        for _ in range(rounds):
            for kind in kinds:  # A, SSE, A, WebSocket, A, ...: drift on a shared box cancels
                alone.append(reads("reads alone"))
                phases[kind].append(streams_phase(
                    streams, clients, mover, lambda k=kind: reads(f"reads with {clients} {k} streams"), kind))
        alone.append(reads("reads alone"))
        mover.stop()

    rps_alone = statistics.median(r.rps for r in alone)
    return {"clients": clients, "phases": rounds, "load_before": round(load_before, 2),
            "reads_alone_rps": [round(r.rps) for r in alone],
            "read_p99_ms_alone": round(statistics.median(r.p99_ms for r in alone), 1),
            "kinds": {kind: summary(runs, rps_alone, idle_kb) for kind, runs in phases.items()}}


def summary(phases: list[dict], rps_alone: float, idle_kb: int) -> dict:
    """One kind's phases: sessions, completeness, delay percentiles, the read ratio against the reads alone."""
    first = phases[0]
    delays = sorted(d for p in phases for d in p["delays"])

    def pick(q: float):
        return round(delays[min(len(delays) - 1, int(q * len(delays)))] * 1000) if delays else None

    rps_streams = statistics.median(p["reads"].rps for p in phases)
    return {"connected": sum(p["connected"] for p in phases), "refused": sum(p["refused"] for p in phases),
            "updates_per_client": [p["updates"] for p in phases],
            "clients_with_every_update": sum(p["complete"] for p in phases),
            "clients_without_gap": sum(p["no_gap"] for p in phases),
            "delay_ms_p50": pick(0.5), "delay_ms_p99": pick(0.99), "delay_ms_max": pick(1.0),
            "reads_with_streams_rps": [round(p["reads"].rps) for p in phases],
            "reads_ratio": round(rps_streams / rps_alone, 3) if rps_alone else None,
            "read_p99_ms_with_streams": round(statistics.median(p["reads"].p99_ms for p in phases), 1),
            "read_errors": sum(p["reads"].bad for p in phases),
            "stream_worker_cpu": first["stream_cpu"], "bench_clients_cpu": first["bench_cpu"],
            "rss_kb_per_connection": round((first["open_kb"] - idle_kb) / max(first["connected"], 1), 1),
            "stream_worker_rss_mb": round(first["open_kb"] / 1024, 1)}


def streams_phase(streams: Server, clients: int, mover: Mover, reads, kind: str) -> dict:
    """Open `clients` streams, run the reads while price moves go out, close them; what each client got."""
    opened = Clients("127.0.0.1", streams.port, "/inventory/assets/stream", clients, kind)
    try:
        connected = opened.ready(len(ASSETS), 120)
        time.sleep(1)
        open_kb = _rss_kb(streams)
        first_round = mover.round + 1
        cpu = (_cpu_seconds(streams), time.process_time(), time.monotonic())
        result = reads()
        elapsed = time.monotonic() - cpu[2]
        # Where the cores went besides the reads: the stream worker's fan-out, and this process (clients + mover).
        stream_cpu = (_cpu_seconds(streams) - cpu[0]) / elapsed
        bench_cpu = (time.process_time() - cpu[1]) / elapsed
        last_round = mover.round
        time.sleep(3)  # the last round's messages reach the clients
    finally:
        opened.close()
    expected = list(range(first_round, last_round + 1))
    complete = no_gap = 0
    delays = []
    for inbox in opened.inboxes:
        by_asset: dict[str, list[int]] = {}
        for when, message in inbox:
            seq = message["asset_seq"]
            by_asset.setdefault(message["asset_id"], []).append(seq)
            if first_round <= seq <= last_round:
                delays.append(when - mover.commits[seq])
        # Rounds before the reads may have arrived too (the clients opened while the mover ran).
        seqs = {a: [s for s in v if s >= first_round] for a, v in by_asset.items()}
        complete += all(seqs.get(a, [])[:len(expected)] == expected for a in ASSETS)
        no_gap += all(v == list(range(v[0], v[0] + len(v))) for v in by_asset.values() if v)
    return {"connected": connected, "refused": opened.refused, "updates": len(expected) * len(ASSETS),
            "complete": complete, "no_gap": no_gap, "delays": delays, "reads": result, "open_kb": open_kb,
            "stream_cpu": round(stream_cpu, 2), "bench_cpu": round(bench_cpu, 2)}


def report(result: dict, command: str) -> None:
    c, phases = result["clients"], result["phases"]
    sessions = c * phases
    kinds = result["kinds"]
    names = {"sse": "SSE", "websocket": "WebSocket"}

    def row(measure: str, value, target: str = "") -> list[str]:
        return [measure, *(value(k) for k in kinds.values()), target]

    rows = [
        row(f"client sessions connected (snapshot received) / refused ({phases} phases x {c})",
            lambda k: f"{k['connected']} / {k['refused']}", f"{sessions} / 0"),
        row("sessions with every update of their read phase", lambda k: str(k["clients_with_every_update"]),
            str(sessions)),
        row("sessions with consecutive asset_seq (no gap)", lambda k: str(k["clients_without_gap"]), str(sessions)),
        row("commit-to-client delay p50 / p99 / max",
            lambda k: f"{k['delay_ms_p50']} / {k['delay_ms_p99']} / {k['delay_ms_max']} ms",
            f"p99 <= {TARGET_P99_MS} ms"),
        row("cached detail reads with the streams (each phase)",
            lambda k: " / ".join(map(str, k["reads_with_streams_rps"])) + " req/s"),
        row("median with streams / median alone", lambda k: str(k["reads_ratio"]), f">= {REQUIRED_RATIO}"),
        row("read p99 with streams (median)", lambda k: f"{k['read_p99_ms_with_streams']} ms"),
        row("read errors (non-2xx, timeouts)", lambda k: str(k["read_errors"]), "0"),
        row("CPU cores busy in the first phase: stream worker / this bench's clients",
            lambda k: f"{k['stream_worker_cpu']} / {k['bench_clients_cpu']}", "of 2"),
        row("stream worker RSS growth per open connection", lambda k: f"{k['rss_kb_per_connection']} KB"),
        row("stream worker RSS with every stream open", lambda k: f"{k['stream_worker_rss_mb']} MB"),
    ]
    notes = (f"Cached detail reads alone (each phase): {' / '.join(map(str, result['reads_alone_rps']))} req/s, "
             f"p99 {result['read_p99_ms_alone']} ms (median). "
             "Phases alternate on the same two masters: reads alone, reads with SSE streams, reads alone, reads "
             "with WebSocket streams, ..., reads alone. API role: 2 gthread workers (defaults), wrk -c16 on "
             "`GET /inventory/assets/BTC`; stream role: STREAM_ROLE=1 with the default per-client limits (every "
             "client comes from one address); one price move of 5 assets committed per second in every phase "
             "(so the only difference between the phases is the open streams); the clients share one "
             "selectors thread (WebSocket: wsproto, answering the server's pings); all on one 2-core machine "
             f"with DynamoDB Local, shared with other work (load average {result['load_before']} at the start). "
             "Delay is measured from the write's acknowledgement to the client's read, so it includes the "
             "poll interval (STREAM_POLL_SECONDS=0.5) and the fan-out.")
    write_section(f"Live stream: {c} clients (SSE, WebSocket) beside cached detail reads", command,
                  ["measure", *(names[k] for k in kinds), "target"], rows, notes)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=2, help="read phases with each kind of stream")
    parser.add_argument("--kinds", default=",".join(KINDS), help="sse,websocket (either, or both)")
    parser.add_argument("--no-write", action="store_true", help="print the JSON only, leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    kinds = tuple(args.kinds.split(","))
    result = run(args.clients, args.seconds, args.rounds, kinds)
    print(json.dumps(result))
    if not args.no_write:
        report(result, f".venv/bin/python -m bench.stream --clients {args.clients} --seconds {args.seconds} "
                       f"--rounds {args.rounds} --kinds {args.kinds}")


if __name__ == "__main__":
    sys.exit(main())
