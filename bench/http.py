"""Benchmark: the HTTP read path under the real gunicorn, with wrk, on DynamoDB Local.

    make bench            (or: .venv/bin/python -m bench.http)

Every figure is a ratio (or a pair) measured side by side in this one run, so the
machine's noise cancels: A and B are run alternately (A, B, A, B) and the median
of each is compared. Set-up: DynamoDB Local in memory; two tables (100 and
10,000 assets) migrated with `flask migrate` and loaded by one price refresh
from the local fake CoinGecko; gunicorn servers as subprocesses with
`gunicorn.conf.py`, bound to loopback ports. Every process started here is
stopped on the way out, whatever happens.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from inventory.config import Config
from inventory.devtools.dynamodb_local import DynamoDBLocal, free_port
from inventory.jobs.scheduler import build_refresher
from tests.fakes.coingecko import FakeCoinGecko, generate_catalog

from .report import write_section

REPO = Path(__file__).resolve().parent.parent
UNLIMITED_READS = "1000000000/minute"
MAX_AGE = 86_400  # prices stay tradable for the whole bench (no refresher runs)
ROUNDS = 3  # A, B, A, B, A, B
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0

DETAIL = "/inventory/assets/BTC"
LIST = "/inventory/assets?limit=50"
SEARCH = "/inventory/assets/search?q=co"


# ---------------------------------------------------------------------------
# wrk
# ---------------------------------------------------------------------------

# Prints one JSON line at the end of a run: counts, errors and latency percentiles (us).
_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"status":%d,"timeout":%d,"p50":%d,"p90":%d,"p99":%d,"mean":%.1f,"max":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end
"""

# Rotates over a list of paths; each thread starts at its own offset.
_ROTATE = r"""
local paths = {%s}
local threads_seen = 0
setup = function(thread)
  thread:set("tid", threads_seen)
  threads_seen = threads_seen + 1
end
init = function(args)
  i = (tid or 0) * 7919
end
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
"""


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    requests: int
    errors: dict

    @property
    def bad(self) -> int:
        return sum(self.errors.values())


def lua_script(directory: Path, name: str, paths: list[str] | None = None) -> Path:
    """A wrk script: a fixed request (paths None) or one rotating over `paths`; both report JSON."""
    text = _DONE
    if paths:
        text = _ROTATE % ",".join(json.dumps(p) for p in paths) + text
    path = directory / f"{name}.lua"
    path.write_text(text)
    return path


def wrk(url: str, script: Path, connections: int, seconds: int, threads: int = 2) -> WrkResult:
    threads = min(threads, connections)
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
           "--latency", "-s", str(script), url]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr}\n{done.stdout}")
    line = next((l for l in done.stdout.splitlines() if l.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"no summary from wrk:\n{done.stdout}\n{done.stderr}")
    data = json.loads(line[len("BENCH_JSON "):])
    errors = {k: data[k] for k in ("connect", "read", "write", "status", "timeout") if data[k]}
    return WrkResult(
        # Only 2xx/3xx answers count: a 429 or 5xx is not throughput.
        rps=(data["requests"] - data["status"]) / (data["duration_us"] / 1e6),
        p50_ms=data["p50"] / 1000,
        p90_ms=data["p90"] / 1000,
        p99_ms=data["p99"] / 1000,
        requests=data["requests"],
        errors=errors,
    )


def median_result(results: list[WrkResult]) -> WrkResult:
    """The median of each figure over repeated runs; errors summed."""
    errors: dict = {}
    for r in results:
        for k, v in r.errors.items():
            errors[k] = errors.get(k, 0) + v
    return WrkResult(
        rps=statistics.median(r.rps for r in results),
        p50_ms=statistics.median(r.p50_ms for r in results),
        p90_ms=statistics.median(r.p90_ms for r in results),
        p99_ms=statistics.median(r.p99_ms for r in results),
        requests=sum(r.requests for r in results),
        errors=errors,
    )


# ---------------------------------------------------------------------------
# gunicorn servers
# ---------------------------------------------------------------------------


def base_env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PROMETHEUS_MULTIPROC_DIR", "GUNICORN_CMD_ARGS", "WORKER_CLASS", "THREADS",
                        "WEB_CONCURRENCY", "MAX_REQUESTS", "ACCESS_LOG")}
    # The read limit (per client address) would answer most of the bench with 429s;
    # raised, not removed, so the limiter's work stays in every measured request.
    env.update(PRICE_REFRESH_ENABLED="false", RATE_LIMIT_READS=UNLIMITED_READS)
    return env


def check_code_origin() -> None:
    """Refuse to measure a mix: every `inventory` module the app imports must come from this checkout.

    (An editable install elsewhere can fill in modules a checkout lacks.)
    """
    script = ("import sys, wsgi\n"
              "print('\\n'.join(getattr(m, '__file__', None) or '' for n, m in sys.modules.items()"
              " if n.split('.')[0] == 'inventory'))")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=base_env(),
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"the app does not import:\n{done.stderr[-3000:]}")
    foreign = [f for f in done.stdout.split() if f and not Path(f).resolve().is_relative_to(REPO)]
    if foreign:
        raise RuntimeError(f"modules from outside {REPO}: {foreign}")


@dataclass
class Server:
    name: str
    app: str
    env: dict
    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self) -> "Server":
        metrics = Path(tempfile.mkdtemp(prefix=f"metrics-{self.name}-", dir=self.workdir))
        env = {**self.env, "BIND": f"127.0.0.1:{self.port}", "PROMETHEUS_MULTIPROC_DIR": str(metrics)}
        with open(self.log_path, "wb") as log:
            # Its own session, so the cleanup can reach the workers even if the master dies.
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", self.app],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        return self

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name}: gunicorn exited with {self.process.returncode}:\n"
                                   f"{self.log()[-3000:]}")
            try:
                if requests.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{self.name}: no /health in time:\n{self.log()[-3000:]}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        # Anything left in the server's own process group (the group id is its pid).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def worker_pids(self) -> list[int]:
        out = subprocess.run(["ps", "--ppid", str(self.process.pid), "-o", "pid="],
                             capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def worker_rss_mb(self) -> dict[int, float]:
        rss = {}
        for pid in self.worker_pids():
            with contextlib.suppress(FileNotFoundError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        rss[pid] = int(line.split()[1]) / 1024
        return rss

    def restarts(self) -> int:
        """Workers recycled by max_requests so far (gunicorn logs each one)."""
        return self.log().count("Autorestarting worker")


# ---------------------------------------------------------------------------
# Set-up: tables loaded by one price refresh
# ---------------------------------------------------------------------------


def load_table(endpoint: str, table: str, assets: int) -> int:
    env = {**base_env(), "DYNAMODB_ENDPOINT_URL": endpoint, "DYNAMODB_TABLE_NAME": table}
    migrate = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "migrate"],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    if migrate.returncode != 0:
        raise RuntimeError(f"flask migrate failed:\n{migrate.stdout}\n{migrate.stderr}")
    with FakeCoinGecko(generate_catalog(assets)) as fake:
        config = Config(
            DYNAMODB_ENDPOINT_URL=endpoint,
            DYNAMODB_TABLE_NAME=table,
            COINGECKO_API_URL=fake.url,
            COINGECKO_CALLS_PER_MINUTE=0,
            PRICE_REFRESH_PAGES=40,
            PRICE_MAX_AGE_SECONDS=MAX_AGE,
        )
        report = build_refresher(config)()
    if not report.ok or not report.created:
        raise RuntimeError(f"loading {table} failed: {report.as_dict()}")
    return report.created


def all_ids(url: str) -> list[str]:
    """Every asset id, in rank order, through the API's cursor paging."""
    ids, cursor = [], None
    while True:
        params = {"limit": 250, "active_only": "false"}
        if cursor:
            params["cursor"] = cursor
        response = requests.get(url + "/inventory/assets", params=params, timeout=30)
        response.raise_for_status()
        page = response.json()
        ids.extend(a["asset_id"] for a in page["data"])
        cursor = page["next_cursor"]
        if not cursor:
            return ids


def fmt_ms(value: float) -> str:
    return f"{value:.1f} ms" if value >= 1 else f"{value:.2f} ms"


def yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def errors_note(*results: WrkResult) -> str:
    bad = {}
    for r in results:
        for k, v in r.errors.items():
            bad[k] = bad.get(k, 0) + v
    return "" if not bad else " (errors: " + ", ".join(f"{k} {v}" for k, v in sorted(bad.items())) + ")"


def git_state() -> str:
    def git(*args):
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def run(seconds: int) -> tuple[list[list[str]], str]:
    load_before = os.getloadavg()[0]
    rows: list[list[str]] = []
    notes: list[str] = []
    check_code_origin()
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-http-")))
        ddb = stack.enter_context(DynamoDBLocal())
        print(f"DynamoDB Local at {ddb.endpoint}", flush=True)
        small_n = load_table(ddb.endpoint, "bench-100", 100)
        large_n = load_table(ddb.endpoint, "bench-10000", 10_000)
        print(f"tables loaded: {small_n} and {large_n} assets", flush=True)

        def server(name: str, table: str | None, app: str = "wsgi:app", **extra) -> Server:
            env = {**base_env(), "DYNAMODB_ENDPOINT_URL": ddb.endpoint, "PRICE_MAX_AGE_SECONDS": str(MAX_AGE),
                   "WEB_CONCURRENCY": "2", **extra}
            if table:
                env["DYNAMODB_TABLE_NAME"] = table
            s = Server(name, app, env, workdir)
            stack.callback(s.stop)
            return s.start()

        def measure(label: str, url: str, script: Path, connections: int) -> WrkResult:
            result = wrk(url, script, connections, seconds)
            print(f"  {label:<34} c={connections:<3} {result.rps:8.0f} req/s  p50 {result.p50_ms:7.2f} ms"
                  f"  p99 {result.p99_ms:7.2f} ms{errors_note(result)}", flush=True)
            return result

        def warm(url: str, script: Path, connections: int = 16) -> None:
            wrk(url, script, connections, 3)

        def alternate(a: tuple, b: tuple, connections: int, rounds: int = ROUNDS) -> tuple[WrkResult, WrkResult]:
            """(label, url, script) A and B run A, B, A, B, ...; median of each."""
            warm(a[1], a[2], connections)
            warm(b[1], b[2], connections)
            ra, rb = [], []
            for _ in range(rounds):
                ra.append(measure(a[0], a[1], a[2], connections))
                rb.append(measure(b[0], b[1], b[2], connections))
            return median_result(ra), median_result(rb)

        large = server("large", "bench-10000")
        small = server("small", "bench-100")
        large.wait_healthy()
        small.wait_healthy()
        rss_at_start = large.worker_rss_mb()
        ids = all_ids(large.url)
        scripts = workdir / "lua"
        scripts.mkdir()
        plain = lua_script(scripts, "plain")

        # 1. Ceiling: cache-hit detail vs a bare Flask app answering the same number of bytes.
        btc = requests.get(large.url + DETAIL, timeout=10)
        btc.raise_for_status()
        body_file = workdir / "btc.json"
        body_file.write_bytes(btc.content)
        first_page = requests.get(large.url + LIST, timeout=10)
        first_page.raise_for_status()
        list_file = workdir / "list.json"
        list_file.write_bytes(first_page.content)
        ceiling = server("ceiling", None, "bench.ceiling_app:app", CEILING_BODY_FILE=str(body_file),
                         CEILING_LIST_BODY_FILE=str(list_file))
        ceiling.wait_healthy()
        real, bare = alternate(("detail BTC (service)", large.url + DETAIL, plain),
                               ("detail BTC (bare Flask ceiling)", ceiling.url + DETAIL, plain), 16)
        ratio = real.rps / bare.rps
        rows.append(["1. ceiling: cache-hit detail / bare Flask, same body size, c16",
                     f"{ratio:.2f} ({real.rps:.0f} vs {bare.rps:.0f} req/s){errors_note(real, bare)}",
                     ">= 0.8", yes(ratio >= 0.8 and not real.bad)])
        real, bare = alternate(("list ?limit=50 (service)", large.url + LIST, plain),
                               ("list (bare Flask, same bytes)", ceiling.url + LIST, plain), 16)
        ceiling.stop()
        ratio = real.rps / bare.rps
        rows.append(["1. ceiling: first list page (limit 50) / bare Flask, same body size, c16",
                     f"{ratio:.2f} ({real.rps:.0f} vs {bare.rps:.0f} req/s){errors_note(real, bare)}",
                     ">= 0.6", yes(ratio >= 0.6 and not real.bad)])
        notes.append(f"BTC detail body: {len(btc.content)} bytes; first list page: {len(first_page.content)} bytes. "
                     "Throughput counts only 2xx/3xx answers (wrk's non-2xx/3xx are subtracted).")

        # 2. Flatness: list and search, 10,000 vs 100 assets.
        for label, path in (("list ?limit=50", LIST), ("search ?q=co", SEARCH)):
            big, little = alternate((f"{label} ({large_n})", large.url + path, plain),
                                    (f"{label} ({small_n})", small.url + path, plain), 16)
            ratio = big.rps / little.rps
            rows.append([f"2. flatness: {label}, {large_n} / {small_n} assets, c16",
                         f"{ratio:.2f} ({big.rps:.0f} vs {little.rps:.0f} req/s; p99 {fmt_ms(big.p99_ms)} vs "
                         f"{fmt_ms(little.p99_ms)}){errors_note(big, little)}",
                         ">= 0.9", yes(ratio >= 0.9 and not big.bad)])
        small.stop()

        # 4. Latency under load on the 10,000-asset server (cache hits).
        for label, path in (("detail BTC", DETAIL), ("list ?limit=50", LIST), ("search ?q=co", SEARCH)):
            warm(large.url + path, plain)
            for connections in (16, 64):
                r = measure(label, large.url + path, plain, connections)
                target, met = "", ""
                if connections == 64:
                    target, met = "p99 <= 4 x p50", yes(r.p99_ms <= 4 * r.p50_ms and not r.bad)
                rows.append([f"4. latency: {label}, c{connections}",
                             f"p50 {fmt_ms(r.p50_ms)}, p99 {fmt_ms(r.p99_ms)} ({r.p99_ms / r.p50_ms:.1f}x), "
                             f"{r.rps:.0f} req/s{errors_note(r)}", target, met])

        # 6. Worker model: mixed reads, sync vs gthread (4 threads), 10,000 assets.
        gthread = server("gthread", "bench-10000", WORKER_CLASS="gthread", THREADS="4")
        sync = server("sync", "bench-10000", WORKER_CLASS="sync", THREADS="1")
        gthread.wait_healthy()
        sync.wait_healthy()
        # Interleave so every window of requests sees all three kinds: detail, detail, list, search...
        detail_paths = [f"/inventory/assets/{i}" for i in ids[:100]]
        interleaved = []
        for n, p in enumerate(detail_paths):
            interleaved.append(p)
            if n % 2 == 1:
                interleaved += [LIST, SEARCH]
        mixed = lua_script(scripts, "mixed", interleaved)
        sync_r, gthread_r = alternate(("mixed (sync, 2 workers)", sync.url, mixed),
                                      ("mixed (gthread, 2x4 threads)", gthread.url, mixed), 16)
        ratio = gthread_r.rps / sync_r.rps
        better = "gthread" if ratio > 1.05 else "sync" if ratio < 0.95 else "neither (within 5%)"
        rows.append(["6. worker model: mixed detail/list/search, gthread / sync, c16",
                     f"{ratio:.2f} ({gthread_r.rps:.0f} vs {sync_r.rps:.0f} req/s); p99 gthread "
                     f"{fmt_ms(gthread_r.p99_ms)}, sync {fmt_ms(sync_r.p99_ms)}; better: {better}"
                     f"{errors_note(sync_r, gthread_r)}", "state which is better", "n/a"])
        gthread_rss = gthread.worker_rss_mb()
        gthread_restarts = gthread.restarts()
        gthread.stop()
        sync.stop()

        # 5. Memory of the 10,000-asset server's workers after the load, plus a sweep over every id.
        sweep = lua_script(scripts, "sweep", [f"/inventory/assets/{i}" for i in ids])
        sweep_r = wrk(large.url, sweep, 16, 20)
        # Every worker holds the search index, list pages and history too.
        history = lua_script(scripts, "history", [f"/inventory/assets/{i}/history?interval=1h" for i in ids[:200]])
        warm(large.url, mixed)
        warm(large.url, history)
        rss = large.worker_rss_mb()
        top = max(rss.values())
        rows.append([f"5. memory: RSS per worker, {large_n} assets, after the load",
                     ", ".join(f"{v:.0f} MB" for v in sorted(rss.values())) +
                     f" (at start {', '.join(f'{v:.0f}' for v in sorted(rss_at_start.values()))} MB; gthread "
                     f"server after its load: {', '.join(f'{v:.0f}' for v in sorted(gthread_rss.values()))} MB)",
                     "< 120 MB", yes(top < 120)])
        restarts = large.restarts()
        notes.append(f"Before RSS was read, the {large_n}-asset server also took a 20 s sweep of detail reads "
                     f"cycling over all {len(ids)} ids ({sweep_r.requests} requests, {sweep_r.rps:.0f} req/s, "
                     f"mostly cache misses){errors_note(sweep_r)}. Its workers were recycled by max_requests "
                     f"{restarts} time(s) during the run (gthread server: {gthread_restarts}).")
        large.stop()

    notes = [
        f"Tables: {large_n} and {small_n} assets, loaded by one refresh from the fake CoinGecko; "
        f"gunicorn with gunicorn.conf.py (its defaults: gthread with 4 threads, WEB_CONCURRENCY=2, unless stated), PRICE_REFRESH_ENABLED=false, "
        f"PRICE_MAX_AGE_SECONDS={MAX_AGE}, RATE_LIMIT_READS={UNLIMITED_READS} (the limiter runs but never "
        f"throttles), default caches (CACHE_TTL_SECONDS=5). wrk -t2 -d{seconds}s; "
        f"A and B alternate {ROUNDS} times, medians shown; wrk, gunicorn and DynamoDB Local share the "
        f"{os.cpu_count()} cores (1-minute load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} "
        f"after). Code: {git_state()}.",
        *notes,
    ]
    return rows, " ".join(notes)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8, help="length of each wrk run")
    args = parser.parse_args(argv)
    started = time.monotonic()
    rows, notes = run(args.seconds)
    notes += f" Whole run: {time.monotonic() - started:.0f} s."
    write_section(
        "HTTP read path (gunicorn + DynamoDB Local, wrk)",
        "make bench",
        ["measurement", "measured", "target", "met"],
        rows,
        notes,
    )


if __name__ == "__main__":
    main()
