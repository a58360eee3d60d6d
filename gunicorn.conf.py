"""gunicorn settings and hooks for the Inventory Service (settings and hooks only)."""

import os
import shutil
import tempfile

# Live stream (issue 13): STREAM_ROLE=1 makes this server the stream role, whose
# threads hold the long-lived SSE/WebSocket connections, so they never take the
# API role's request threads. The API role accepts no streams (503 + Retry-After).
stream_role = os.environ.get("STREAM_ROLE", "").lower() in {"1", "true", "yes", "on"}
if stream_role:
    os.environ.setdefault("BIND", os.environ.get("STREAM_BIND", "0.0.0.0:8012"))
    os.environ.setdefault("WEB_CONCURRENCY", "1")
    # One gthread thread per open stream (simple-websocket adds a reader thread per WebSocket,
    # outside this pool); a few more for the requests a stream client also makes.
    os.environ.setdefault("THREADS", str(int(os.environ.get("STREAM_MAX_CONNECTIONS", "500")) + 8))
    # The API role's master runs the refresher; one per instance is enough.
    os.environ["PRICE_REFRESH_ENABLED"] = "false"
else:
    os.environ.setdefault("STREAM_MAX_CONNECTIONS", "0")

bind = os.environ.get("BIND", "0.0.0.0:8002")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# The workers' Config reads it: each enforces its share of a memory:// rate limit.
os.environ["WEB_CONCURRENCY"] = str(workers)
# Measured (BENCHMARKS.md, worker model): on the mixed read workload gthread with
# 4 threads served 2.3x the requests of sync workers, with a third of the p99; a
# sync worker stalls every request queued behind a slow one (a cache miss, a search).
worker_class = os.environ.get("WORKER_CLASS", "gthread")
threads = int(os.environ.get("THREADS", "4"))
timeout = 30
graceful_timeout = 20
keepalive = 5
# No recycling by default: measured, a worker's RSS plateaus once its caches are
# full and stays flat over 100k requests (BENCHMARKS.md, bench/recycling.py), and
# each restart empties the caches that keep reads answering during a store outage.
# MAX_REQUESTS=N recycles after N (+ up to 10% jitter, so workers do not restart together).
max_requests = int(os.environ.get("MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10
# gunicorn's control socket is one path per user, so a second server (tests,
# benchmarks) would take over and then delete the first one's; not needed here.
control_socket_disable = True
accesslog = os.environ.get("ACCESS_LOG")  # unset: no access log (the app logs each request)
# gunicorn's own lines as JSON too, like the app's.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "inventory.telemetry.logs.JsonLines"}
    },
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    # The app sets up the root logger itself (with the request id on each line).
    "root": {"level": "INFO", "handlers": []},
    "loggers": {
        "gunicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        # The app logs every request itself (with the request id and route);
        # logconfig_dict would otherwise switch gunicorn's access lines on too.
        "gunicorn.access": {"handlers": ["stderr"], "level": "INFO" if accesslog else "WARNING", "propagate": False},
    },
}

# Workers share metric values through this directory; it must exist before any
# process imports prometheus_client, which is why it is set here at load time.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="inventory-metrics-")


def on_starting(server):
    # A malformed setting (API_TOKENS, API_TOKENS_FILE, ...) stops the master in
    # one line before any worker boots, instead of a traceback per worker.
    from inventory.settings import load_config_or_exit

    load_config_or_exit()
    # Values left over from an earlier run would be summed into this one's.
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory, exist_ok=True)


def child_exit(server, worker):
    from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics

    GunicornInternalPrometheusMetrics.mark_process_dead_on_child_exit(worker.pid)


def when_ready(server):
    # The one price refresher of this instance runs in its own process, spawned
    # here: this hook runs once per master (a SIGHUP reload does not call it
    # again, and the handle is kept on the arbiter), and the master itself runs
    # no thread, so forking workers never copies a lock some thread holds
    # (inventory/jobs/process.py says what went wrong before).
    from inventory.settings import load_config
    from inventory.telemetry.logs import configure_logging

    config = load_config()
    configure_logging(config.LOG_LEVEL)
    if config.PRICE_REFRESH_ENABLED and getattr(server, "price_refresher", None) is None:
        from inventory.jobs.process import RefresherProcess

        server.price_refresher = RefresherProcess.spawn(config)
        server.log.info("price refresher process started (pid: %s)", server.price_refresher.pid)


def on_exit(server):
    # Stop refreshing and hand the lease over, so another instance takes over at once.
    refresher = getattr(server, "price_refresher", None)
    if refresher is not None:
        refresher.stop(timeout=server.cfg.graceful_timeout)
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(refresher.pid)


def post_worker_init(worker):
    # Every way a worker is told to stop ends its streams at once with a close notice
    # and a reconnect hint: SIGTERM (shutdown, and the old workers of a SIGHUP reload),
    # and SIGINT/SIGQUIT (Ctrl-C reaches the whole process group). Otherwise a stream
    # thread waits for its next heartbeat, interpreter exit waits for that thread, and
    # the master kills the worker after graceful_timeout. gthread's heartbeat to the
    # master runs in the main loop, not in request threads, so the worker timeout
    # never kills a healthy idle stream.
    import signal

    from inventory.stream.hub import close_process_streams

    # Only the first of them acts. Ctrl-C brings two (the terminal's SIGINT, then the
    # master's SIGQUIT), and gunicorn's quit handler is not re-entrant: a second one,
    # arriving inside the first's thread-pool shutdown, waited forever on the pool's lock
    # until the master SIGKILLed the worker (1 stop in 10, bench/stop.py).
    stopping = []
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        _close_streams_first(signum, close_process_streams, stopping, worker)
    # Load the read model now, not on the first request (seconds at 10,000 assets). A
    # store that does not answer yet is tried again by that request.
    import threading

    threading.Thread(target=_load_read_model, args=(worker,), name="read-model-load", daemon=True).start()


def _load_read_model(worker):
    app = worker.wsgi
    if "inventory" not in getattr(app, "extensions", {}):
        return  # another app (the benchmark's ceiling)
    try:
        with app.app_context():
            from inventory.api.extension import services

            services().catalog.model.start()
    except Exception as exc:  # noqa: BLE001  (logged; the first request loads it instead)
        worker.log.warning("read model not loaded at start: %s", exc)


def _close_streams_first(signum, close_process_streams, stopping: list, worker):
    import faulthandler
    import signal

    previous = signal.getsignal(signum)

    def close_streams_then_stop(signum, frame):
        if stopping:
            return  # already on its way out
        stopping.append(signum)
        # A worker still alive shortly before the master's SIGKILL writes every thread's stack
        # to stderr: what held it is then in the log, not a mystery.
        faulthandler.dump_traceback_later(max(1, graceful_timeout - 2), exit=False)
        close_process_streams("shutdown")
        if not callable(previous):
            return
        queue = getattr(worker, "method_queue", None)
        if signum == signal.SIGTERM or queue is None:
            previous(signum, frame)  # the graceful exit only flags the main loop: safe here
            return
        # gthread's quit handler (SIGINT, SIGQUIT) shuts its thread pool down and exits. Run inside
        # this handler it deadlocked when the signal landed while the main loop was in the pool's
        # submit(), which holds that very lock while it starts a thread: the worker waited until
        # the master's SIGKILL (the faulthandler dump: handle_quit over enqueue_req -> Thread.start).
        # Deferred to the main loop it runs between two events, holding nothing (a SimpleQueue put
        # and a pipe write: safe inside a handler). The graceful path is no answer: it lingers up
        # to 2 s on every open stream's close, one after another.
        queue.defer(previous, signum, frame)

    signal.signal(signum, close_streams_then_stop)
