"""Per-hook cost of a cached detail read: every before/after-request hook, the view and the WSGI rest, timed.

In one process on the Flask test client (moto for the store, no network): the
app's hooks are wrapped with timers, N cache-hit reads of one asset are made,
and the time per request is split by hook. A bare Flask app answering the same
bytes is timed the same way, for the floor.

    .venv/bin/python -m bench.profile --requests 20000
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time
from collections import defaultdict

from .report import write_section

DETAIL = "/inventory/assets/BTC"


def _timed(totals: dict, name: str, func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            totals[name] += time.perf_counter() - started

    return wrapper


def _hook_name(func) -> str:
    if isinstance(func, functools.partial):
        func = func.func
    module = getattr(func, "__module__", "?").replace("inventory.", "").replace("prometheus_flask_exporter", "prom")
    return f"{module}.{getattr(func, '__qualname__', repr(func)).replace('<locals>.', '')}"


def instrument(app, totals: dict) -> None:
    """Wrap every request hook and view function of `app` with a timer into `totals`."""
    for kind, registry in (("before", app.before_request_funcs), ("after", app.after_request_funcs),
                           ("teardown", app.teardown_request_funcs)):
        for blueprint, funcs in registry.items():
            registry[blueprint] = [_timed(totals, f"{kind}: {_hook_name(f)}", f) for f in funcs]
    for endpoint, view in list(app.view_functions.items()):
        app.view_functions[endpoint] = _timed(totals, "view (cache hit, response object)", view)


ROUNDS = 5


def drive(apps: list, n: int) -> list[float]:
    """Make n GETs of DETAIL on each (app, totals)'s test client, in interleaved rounds.

    Returns each app's seconds per request: the median of its rounds, so a burst
    of load from other processes moves one round, not the comparison.
    """
    clients = [app.test_client() for app, _ in apps]
    for client in clients:
        for _ in range(200):
            assert client.get(DETAIL).status_code == 200
    for _, totals in apps:
        totals.clear()
    per_round = max(n // ROUNDS, 1)
    times: list[list[float]] = [[] for _ in apps]
    for _ in range(ROUNDS):
        for client, spent in zip(clients, times):
            started = time.perf_counter()
            for _ in range(per_round):
                client.get(DETAIL)
            spent.append((time.perf_counter() - started) / per_round)
    return [statistics.median(spent) for spent in times]


def service_app():
    from moto import mock_aws

    from inventory import create_app
    from inventory.config import Config
    from inventory.store import AssetStore, make_client
    from inventory.store.migrate import migrate
    from tests.conftest import NOW, build_asset

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    mock = mock_aws()
    mock.start()
    config = Config(DYNAMODB_TABLE_NAME="bench-profile", RATE_LIMIT_READS="1000000000/minute",
                    PRICE_MAX_AGE_SECONDS=86_400, CACHE_TTL_SECONDS=3600)
    client = make_client(config)
    migrate(client, config.DYNAMODB_TABLE_NAME, NOW)
    AssetStore(client, config.DYNAMODB_TABLE_NAME).create(build_asset("BTC", 1, price="97000.12"))
    return create_app(config, dynamodb_client=client)


def bare_app(body: bytes):
    from flask import Flask, Response

    app = Flask("bare")

    @app.get("/inventory/assets/<asset_id>")
    def detail(asset_id):
        return Response(body, mimetype="application/json")

    return app


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    import logging

    app = service_app()
    logging.getLogger("inventory.request").setLevel(logging.INFO)
    totals: dict[str, float] = defaultdict(float)
    instrument(app, totals)
    body = app.test_client().get(DETAIL).get_data()
    bare_totals: dict[str, float] = defaultdict(float)
    bare = bare_app(body)
    instrument(bare, bare_totals)
    per_request, bare_per_request = drive([(app, totals), (bare, bare_totals)], args.requests)
    # The hooks' totals are over all rounds; the table is per request of the median round.
    requests_made = ROUNDS * max(args.requests // ROUNDS, 1)

    rows = []
    hooks = sum(totals.values())
    for name, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        us = seconds / requests_made * 1e6
        rows.append([f"`{name}`", f"{us:.1f}", f"{seconds / requests_made / per_request:.0%}"])
    rest = per_request - hooks / requests_made
    rows.append(["Flask/Werkzeug dispatch, test client, WSGI (the rest)", f"{rest * 1e6:.1f}",
                 f"{rest / per_request:.0%}"])
    rows.append(["**total per cache-hit detail read**", f"**{per_request * 1e6:.1f}**", "100%"])
    rows.append(["bare Flask, same body (floor), total", f"{bare_per_request * 1e6:.1f}",
                 f"service / bare throughput {bare_per_request / per_request:.2f}"])
    notes = (f"{args.requests} cache-hit GETs of {DETAIL} ({len(body)} bytes) on the Flask test client in one "
             "process (moto store, access log on at INFO into stderr's handler, limiter with memory storage); "
             "each hook and the view wrapped with a perf_counter timer (adds ~0.3 us per wrapped call). "
             f"Service and bare app alternate in {ROUNDS} rounds; totals are the median round's, hooks the mean. "
             "Not gunicorn: socket, HTTP parsing and gunicorn's worker are outside this table.")
    header = ["hook / stage", "us per request", "share"]
    if args.no_write:
        print("| " + " | ".join(header) + " |")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        print(notes)
    else:
        write_section("Per-hook profile of a cached detail read (Flask test client)",
                      f".venv/bin/python -m bench.profile --requests {args.requests}", header, rows, notes)


if __name__ == "__main__":
    main()
