"""Live stream benchmark: N SSE clients on the stream role while wrk reads cached details from the API role.

    .venv/bin/python -m bench.stream --clients 500 --seconds 15     (also part of `make bench`)

One run, the same two gunicorn masters throughout (API role: the default 2 gthread
workers; stream role: STREAM_ROLE=1), DynamoDB Local, price moves committed to the
table once a second by a PriceStore write (as the refresher writes them) in every
phase. Phases: reads alone (A), reads with N streams open (B), reads alone again
(A'), so drift on a shared machine shows. Reports the read throughput ratio B / mean(A, A'),
that every client got every update of B with consecutive asset_seq (no gap), the
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
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from inventory.config import Config
from inventory.devtools.dynamodb_local import DynamoDBLocal
from inventory.store import AssetStore, make_client
from inventory.store.migrate import migrate
from inventory.store.prices import PriceStore, PriceUpdate
from tests.conftest import build_asset

from .http import DETAIL, MAX_AGE, Server, base_env, lua_script, wrk
from .report import write_section

ASSETS = ["BTC", "ETH", "SOL", "XRP", "ADA"]
READ_CONNECTIONS = 16
REQUIRED_RATIO = 0.7
TARGET_P99_MS = 2000


class Clients:
    """N SSE clients in one thread (selectors), so the load generator's own cost stays small.

    HTTP/1.0 requests: gunicorn then streams the body unchunked until it closes, so events are
    split on blank lines alone.
    """

    def __init__(self, host: str, port: int, path: str, count: int):
        self.selector = selectors.DefaultSelector()
        self.inboxes: list[list[tuple[float, dict]]] = [[] for _ in range(count)]
        self.snapshots = [0] * count
        self.buffers = [b""] * count
        self.answered = [False] * count
        self.refused = 0
        self.stopping = threading.Event()
        request = f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n\r\n".encode()
        for n in range(count):
            sock = socket.create_connection((host, port), timeout=30)
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
                buffer = self.buffers[n] + data
                if not self.answered[n]:
                    self.answered[n] = True
                    self.refused += b" 200 " not in buffer.split(b"\r\n", 1)[0]  # the status line
                *events, self.buffers[n] = buffer.split(b"\n\n")
                for event in events:
                    for line in event.split(b"\n"):
                        if line.startswith(b"data:"):
                            message = json.loads(line[5:])
                            if message["type"] == "snapshot":
                                self.snapshots[n] += 1
                            else:
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


def run(clients: int, seconds: int) -> dict:
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
        api = Server("api", "wsgi:app", {**env, "WEB_CONCURRENCY": "2"}, workdir)
        streams = Server("stream", "wsgi:app", {**env, "STREAM_ROLE": "1", "STREAM_MAX_CONNECTIONS": str(clients + 10),
                                                "STREAM_MAX_PER_CLIENT": str(clients + 10)}, workdir)
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
            print(f"  {label:<28} {result.rps:8.0f} req/s  p99 {result.p99_ms:7.2f} ms  errors {result.errors}",
                  flush=True)
            return result

        alone = reads("reads alone")
        # Opening the clients warms the stream worker's hub; measure its idle RSS with one stream served first.
        Clients("127.0.0.1", streams.port, "/inventory/assets/stream?assets=BTC", 1).close()
        time.sleep(1)
        idle_kb = _rss_kb(streams)
        opened = Clients("127.0.0.1", streams.port, "/inventory/assets/stream", clients)
        connected = opened.ready(len(ASSETS), 120)
        time.sleep(1)
        open_kb = _rss_kb(streams)
        first_round = mover.round + 1
        cpu = (_cpu_seconds(streams), time.process_time(), time.monotonic())
        with_streams = reads(f"reads with {clients} streams")
        elapsed = time.monotonic() - cpu[2]
        # Where the cores went besides the reads: the stream worker's fan-out, and this process (clients + mover).
        stream_cpu = (_cpu_seconds(streams) - cpu[0]) / elapsed
        bench_cpu = (time.process_time() - cpu[1]) / elapsed
        last_round = mover.round
        time.sleep(3)  # the last round's messages reach the clients
        opened.close()
        again = reads("reads alone again")
        mover.stop()

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
            # Rounds before B may have arrived too (the clients opened while the mover ran).
            seqs = {a: [s for s in v if s >= first_round] for a, v in by_asset.items()}
            complete += all(seqs.get(a, [])[:len(expected)] == expected for a in ASSETS)
            no_gap += all(v == list(range(v[0], v[0] + len(v))) for v in by_asset.values() if v)
        delays.sort()

        def pick(q: float):
            return round(delays[min(len(delays) - 1, int(q * len(delays)))] * 1000) if delays else None

        baseline = (alone.rps + again.rps) / 2
        return {"clients": clients, "connected": connected, "refused": opened.refused,
                "rounds_during_reads": len(expected), "updates_per_client": len(expected) * len(ASSETS),
                "clients_with_every_update": complete, "clients_without_gap": no_gap,
                "delay_ms_p50": pick(0.5), "delay_ms_p99": pick(0.99), "delay_ms_max": pick(1.0),
                "reads_alone_rps": round(alone.rps), "reads_alone_again_rps": round(again.rps),
                "reads_with_streams_rps": round(with_streams.rps),
                "reads_ratio": round(with_streams.rps / baseline, 3) if baseline else None,
                "read_p99_ms_alone": round(alone.p99_ms, 1), "read_p99_ms_with_streams": round(with_streams.p99_ms, 1),
                "read_errors": {**alone.errors, **with_streams.errors, **again.errors},
                "stream_worker_cpu": round(stream_cpu, 2), "bench_clients_cpu": round(bench_cpu, 2),
                "rss_kb_per_connection": round((open_kb - idle_kb) / max(connected, 1), 1),
                "stream_worker_rss_mb": round(open_kb / 1024, 1)}


def report(result: dict, command: str) -> None:
    c = result["clients"]
    rows = [
        ["clients connected (snapshot received) / refused", f"{result['connected']} / {result['refused']}", f"{c} / 0"],
        [f"clients with every update of the read phase ({result['updates_per_client']} each)",
         str(result["clients_with_every_update"]), str(c)],
        ["clients with consecutive asset_seq (no gap)", str(result["clients_without_gap"]), str(c)],
        ["commit-to-client delay p50 / p99 / max", (f"{result['delay_ms_p50']} / {result['delay_ms_p99']} / "
                                                   f"{result['delay_ms_max']} ms"), f"p99 <= {TARGET_P99_MS} ms"],
        ["cached detail reads alone / with streams / alone again",
         f"{result['reads_alone_rps']} / {result['reads_with_streams_rps']} / {result['reads_alone_again_rps']} req/s", ""],
        ["reads with streams / mean of reads alone", str(result["reads_ratio"]), f">= {REQUIRED_RATIO}"],
        ["read p99 alone / with streams", f"{result['read_p99_ms_alone']} / {result['read_p99_ms_with_streams']} ms", ""],
        ["CPU cores busy during the streams phase: stream worker / this bench's clients",
         f"{result['stream_worker_cpu']} / {result['bench_clients_cpu']}", "of 2"],
        ["stream worker RSS growth per open connection", f"{result['rss_kb_per_connection']} KB", ""],
        ["stream worker RSS with every stream open", f"{result['stream_worker_rss_mb']} MB", ""],
    ]
    notes = ("API role: 2 gthread workers (defaults), wrk -c16 on `GET /inventory/assets/BTC`; stream role: "
             f"STREAM_ROLE=1, THREADS={c + 18}; one price move of 5 assets committed per second in every phase "
             "(so the only difference between the phases is the open streams); the clients share one "
             "selectors thread; all on one 2-core machine with DynamoDB Local. Delay is measured from the "
             "write's acknowledgement to the client's read, so it includes the poll interval "
             "(STREAM_POLL_SECONDS=0.5) and the fan-out.")
    write_section(f"Live stream: {c} SSE clients beside cached detail reads", command,
                  ["measure", "value", "target"], rows, notes)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--no-write", action="store_true", help="print the JSON only, leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    result = run(args.clients, args.seconds)
    print(json.dumps(result))
    if not args.no_write:
        report(result, f".venv/bin/python -m bench.stream --clients {args.clients} --seconds {args.seconds}")


if __name__ == "__main__":
    sys.exit(main())
