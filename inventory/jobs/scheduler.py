"""The one price refresher: APScheduler and the lease, in the refresher process (or once, from the CLI)."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import timedelta, timezone

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_RUNNING

from ..config import Config
from ..domain import Fence, InventoryError, Lease, utcnow
from ..source import client_from_config, exchange_from_config
from ..store import (
    AssetStore,
    CandleStore,
    FeedStore,
    LeaseStore,
    PriceStore,
    ProfileStore,
    RefreshStateStore,
    make_client,
)
from ..store.crosscheck import CrossCheckStore
from ..store.dynamo import LeaseLost, instrument
from ..telemetry.logs import configure_logging
from ..telemetry.metrics import InventoryMetrics, RefreshMetrics
from . import categories as category_job
from .candles import RollupReport, roll_up_days
from .crosscheck import CrossCheckReport, crosscheck_prices
from .process import instance_id
from .recommend import recommend
from .refresh import RefreshReport, refresh_prices
from .sparklines import refresh_sparklines

log = logging.getLogger(__name__)

JOB_ID = "refresh-prices"
HISTORY_JOB_ID = "history-rollup"
CROSSCHECK_JOB_ID = "crosscheck-prices"


def build_refresher(
    config: Config, metrics: RefreshMetrics | None = None, dynamodb=None, source=None, on_failure=None
) -> Callable[..., RefreshReport]:
    """Wire the client and stores for refreshes in this process; return the job (fence optional)."""
    client = source or client_from_config(config, on_response=metrics.source_response if metrics else None)
    dynamodb = dynamodb or make_client(config, patient=True)
    feed = FeedStore(dynamodb, config.DYNAMODB_TABLE_NAME, config.STREAM_FEED_RETENTION_SECONDS)
    # Imported here: the read model's module loads the search index, which jobs otherwise need not.
    from ..readmodel.model import instance_seq, publish_commits

    publish_commits(feed, instance_seq(config))
    store = AssetStore(dynamodb, config.DYNAMODB_TABLE_NAME, config.DYNAMODB_WRITE_CONCURRENCY, feed)
    prices = PriceStore(
        dynamodb, config.DYNAMODB_TABLE_NAME, config.PRICE_HISTORY_DAYS, config.DYNAMODB_WRITE_CONCURRENCY, feed,
    )

    def run(fence: Fence | None = None) -> RefreshReport:
        started = utcnow()
        report = refresh_prices(
            client,
            store,
            prices,
            pages=config.PRICE_REFRESH_PAGES,
            fence=fence,
            check_max_age=config.CROSSCHECK_MAX_AGE_SECONDS if config.CROSSCHECK_ENABLED else None,
        )
        if metrics:
            metrics.record(report, client.breaker.state, started, report.oldest_price_at)
        if not report.ok and on_failure is not None:
            on_failure()  # the second source may stand in now, not an interval later
        return report

    return run


def build_crosscheck_job(
    config: Config, metrics: RefreshMetrics | None = None, dynamodb=None, coingecko=None, exchange=None
) -> Callable[..., CrossCheckReport]:
    """Wire the second source, the stores and the primary's state; return the check (fence optional)."""
    source_name = config.CROSSCHECK_EXCHANGE
    exchange = exchange or exchange_from_config(
        config, on_response=(lambda path, status: metrics.exchange_response(source_name, path, status))
        if metrics else None,
    )
    dynamodb = dynamodb or make_client(config, patient=True)
    table = config.DYNAMODB_TABLE_NAME
    feed = FeedStore(dynamodb, table, config.STREAM_FEED_RETENTION_SECONDS)
    from ..readmodel.model import instance_seq, publish_commits

    publish_commits(feed, instance_seq(config))
    assets = AssetStore(dynamodb, table, config.DYNAMODB_WRITE_CONCURRENCY, feed)
    prices = PriceStore(dynamodb, table, config.PRICE_HISTORY_DAYS, config.DYNAMODB_WRITE_CONCURRENCY, feed)
    checks, primary = CrossCheckStore(dynamodb, table), RefreshStateStore(dynamodb, table)

    def crosscheck(fence: Fence | None = None) -> CrossCheckReport:
        report = crosscheck_prices(
            exchange, assets, prices, checks,
            exchange_id=config.CROSSCHECK_EXCHANGE,
            max_age_seconds=config.CROSSCHECK_MAX_AGE_SECONDS,
            primary_failing=lambda: primary.get().last_error is not None,
            coingecko=coingecko,
            pairs_max_age=timedelta(hours=config.CROSSCHECK_PAIRS_HOURS),
            fence=fence,
        )
        if metrics:
            metrics.record_crosscheck(report)
        return report

    return crosscheck


def build_history_job(config: Config, dynamodb=None) -> Callable[..., RollupReport]:
    """Wire the stores for the daily roll-up and the recommendations; return the job (fence optional).

    Recommendations are recomputed after a day is rolled up, and on a process's
    first run (the tradable set may have moved while no refresher ran).
    """
    dynamodb = dynamodb or make_client(config, patient=True)
    table, concurrency = config.DYNAMODB_TABLE_NAME, config.DYNAMODB_WRITE_CONCURRENCY
    assets = AssetStore(dynamodb, table, concurrency)
    prices = PriceStore(dynamodb, table, config.PRICE_HISTORY_DAYS, concurrency)
    candles, profiles = CandleStore(dynamodb, table, concurrency), ProfileStore(dynamodb, table, concurrency)
    # Rolling up a day whose points have expired would store nothing.
    catchup = min(config.CANDLE_CATCHUP_DAYS, config.PRICE_HISTORY_DAYS)
    first_run = True

    def run(fence: Fence | None = None) -> RollupReport:
        nonlocal first_run
        now = utcnow()
        report = roll_up_days(assets, prices, candles, now, catchup, fence)
        refresh_sparklines(assets, prices, now)
        if report.days or first_run:
            recommend(
                assets, candles, profiles, now, config.RECOMMEND_WINDOW_DAYS, config.RECOMMEND_TOP_K, fence,
                config.RECOMMEND_MAX_ASSETS,
            )
            first_run = False
        return report

    return run


def while_leased(refresher: "LeasedRefresher", job: Callable[..., object]) -> Callable[[], object]:
    """A scheduled job that runs `job(fence)` only while `refresher` holds the lease (its heartbeat keeps it)."""

    def tick():
        lease = refresher.lease
        if lease is None:
            return None
        try:
            return job(lease.fence_check())
        except (InventoryError, LeaseLost) as exc:  # the next run tries again; puts are idempotent
            log.warning("%s job failed: %s", getattr(job, "__name__", "leased"), type(exc).__name__)
            return None

    return tick


def one_at_a_time(job: Callable[[], object]) -> Callable[[], object]:
    """`job`, skipped (None) while another thread is running it: the scheduled cross-check and the
    one a failed refresh runs at once never overlap."""
    running = threading.Lock()

    def run():
        if not running.acquire(blocking=False):
            return None
        try:
            return job()
        finally:
            running.release()

    return run


class LeasedRefresher:
    """Refreshes only while this instance holds the lease; renews it by heartbeat."""

    def __init__(self, config: Config, leases: LeaseStore, state: RefreshStateStore, run, owner: str,
                 metrics: RefreshMetrics | None = None, clock_ms=lambda: int(time.time() * 1000)):
        self.config, self.leases, self.state, self.run = config, leases, state, run
        self.owner, self.metrics, self.clock_ms = owner, metrics, clock_ms
        self.lease: Lease | None = None
        self._lock = threading.Lock()

    @property
    def ttl_ms(self) -> int:
        return self.config.REFRESH_LEASE_SECONDS * 1000

    def heartbeat(self) -> None:
        """Renew the lease we hold, or try to take a free or expired one."""
        with self._lock:
            try:
                now = self.clock_ms()
                if self.lease is not None:
                    self.lease = self.leases.renew(self.lease, now, self.ttl_ms)
                    if self.lease is None:
                        log.warning("refresh lease lost by %s", self.owner, extra={"owner": self.owner})
                if self.lease is None:
                    self.lease = self.leases.acquire(self.owner, now, self.ttl_ms)
                    if self.lease is not None:
                        log.info(
                            "refresh lease taken by %s (fence %s)", self.owner, self.lease.fence,
                            extra={"owner": self.owner, "fence": self.lease.fence},
                        )
            except InventoryError as exc:  # store down: keep what we believe; fencing protects writes
                log.warning("refresh lease heartbeat failed: %s", exc)
            if self.metrics:
                self.metrics.lease_held.set(1 if self.lease else 0)

    def tick(self) -> RefreshReport | None:
        """The scheduled job: refresh if we hold the lease and this interval is not done yet."""
        self.heartbeat()
        lease = self.lease
        if lease is None:
            return None
        try:
            last = self.state.get().last_attempt_at
        except InventoryError:
            last = None
        interval = self.config.PRICE_REFRESH_INTERVAL_SECONDS
        if last is not None and (utcnow() - last).total_seconds() < interval * 0.8:
            return None  # a previous holder refreshed this interval just before the takeover
        return self.run(lease.fence_check())

    def release(self) -> None:
        with self._lock:
            if self.lease is not None:
                try:
                    self.leases.release(self.lease)
                except InventoryError as exc:
                    log.warning("could not release the refresh lease: %s", exc)
                self.lease = None


def start_scheduler(config: Config) -> tuple[BackgroundScheduler, LeasedRefresher]:
    """Every PRICE_REFRESH_INTERVAL_SECONDS (the first time right away) refresh, if we hold the lease."""
    metrics = RefreshMetrics()
    dynamodb = make_client(config, patient=True)
    # The refresher's DynamoDB calls show in /metrics beside the workers'.
    instrument(dynamodb, InventoryMetrics(None).dynamodb_call)
    # One client for every job: its rate limiter spaces all calls to the source.
    source = client_from_config(config, on_response=metrics.source_response)
    scheduler = BackgroundScheduler(timezone=timezone.utc)
    crosschecks: list[Callable[[], object]] = []  # the cross-check, once built (it needs the lease holder)

    def check_now():
        # A failed refresh runs the cross-check at once, in the refresh's own thread. Never through the
        # scheduler's API: its shutdown holds the job store lock while it waits for this very thread
        # (get_job from here deadlocked a Ctrl-C until the master's SIGKILL, 20 s later). Its state
        # is read without a lock: once the scheduler is stopping, a stop does not wait for a check.
        if scheduler.state != STATE_RUNNING:
            return
        for crosscheck in crosschecks:
            crosscheck()

    refresher = LeasedRefresher(
        config,
        LeaseStore(dynamodb, config.DYNAMODB_TABLE_NAME),
        RefreshStateStore(dynamodb, config.DYNAMODB_TABLE_NAME),
        build_refresher(config, metrics, dynamodb, source, on_failure=check_now),
        instance_id(config),
        metrics,
    )
    scheduler.add_job(
        refresher.heartbeat,
        "interval",
        id="refresh-lease-heartbeat",
        seconds=max(1, config.REFRESH_LEASE_SECONDS // 3),
        coalesce=True,
        max_instances=1,
    )
    scheduler.add_job(
        refresher.tick,
        "interval",
        id=JOB_ID,
        seconds=config.PRICE_REFRESH_INTERVAL_SECONDS,
        next_run_time=utcnow(),
        # A slow refresh never overlaps itself, and missed runs collapse into one.
        coalesce=True,
        max_instances=1,
        misfire_grace_time=config.PRICE_REFRESH_INTERVAL_SECONDS,
    )
    scheduler.add_job(
        while_leased(refresher, build_history_job(config, dynamodb)),
        "interval",
        id=HISTORY_JOB_ID,
        seconds=config.CANDLE_ROLLUP_INTERVAL_SECONDS,
        # After the first heartbeat had its chance to take the lease.
        next_run_time=utcnow() + timedelta(seconds=config.REFRESH_LEASE_SECONDS),
        coalesce=True,
        max_instances=1,
    )
    if config.CROSSCHECK_ENABLED:
        crosschecks.append(one_at_a_time(while_leased(refresher, build_crosscheck_job(config, metrics, dynamodb,
                                                                                        source))))
        scheduler.add_job(
            crosschecks[0],
            "interval",
            id=CROSSCHECK_JOB_ID,
            seconds=config.CROSSCHECK_INTERVAL_SECONDS,
            # Soon after the first refresh, so a new instance shows checks within seconds.
            next_run_time=utcnow() + timedelta(seconds=min(5, config.CROSSCHECK_INTERVAL_SECONDS)),
            coalesce=True,
            max_instances=1,
            misfire_grace_time=config.CROSSCHECK_INTERVAL_SECONDS,
        )
    if config.CATEGORY_REFRESH_HOURS > 0:
        scheduler.add_job(
            category_job.build_category_job(config, source, dynamodb, lambda: refresher.lease is not None),
            "interval",
            id=category_job.JOB_ID,
            seconds=min(category_job.CHECK_SECONDS, config.CATEGORY_REFRESH_HOURS * 3600),
            next_run_time=utcnow() + timedelta(seconds=category_job.FIRST_CHECK_DELAY_SECONDS),
            coalesce=True,
            max_instances=1,
        )
    scheduler.start()
    log.info(
        "price refresher %s started: every %ss", refresher.owner, config.PRICE_REFRESH_INTERVAL_SECONDS,
        extra={"owner": refresher.owner, "pid": os.getpid(), "interval_seconds": config.PRICE_REFRESH_INTERVAL_SECONDS},
    )
    return scheduler, refresher


def run_until_stopped(config: Config, stop_requested: Callable[[float], bool], parent_pid: int | None = None) -> None:
    """Refresh on schedule until `stop_requested(timeout)` says so or the parent is gone; then hand the lease back."""
    scheduler, refresher = start_scheduler(config)
    try:
        while not stop_requested(1.0):
            # A master killed outright cannot stop us; an orphan must not keep the lease alive.
            if parent_pid is not None and os.getppid() != parent_pid:
                log.warning("the gunicorn master %s is gone: price refresher stopping", parent_pid)
                break
    finally:
        scheduler.shutdown(wait=True)
        refresher.release()


def main(config: Config) -> None:
    """Entry point of the refresher process the gunicorn master spawns (jobs/process.py)."""
    configure_logging(config.LOG_LEVEL)
    # SIGTERM from the master, SIGINT from a terminal's Ctrl-C (sent to the whole
    # process group): blocked, in every thread started from here, and waited for
    # in this loop, so no handler interrupts a thread holding a lock.
    # SIGHUP reloads the master's workers, not us.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    run_until_stopped(
        config, lambda timeout: signal.sigtimedwait(stop_signals, timeout) is not None, parent_pid=os.getppid()
    )
