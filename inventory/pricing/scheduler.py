"""The one price refresher: built in the gunicorn master (or the CLI), run by APScheduler."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timezone

from apscheduler.schedulers.background import BackgroundScheduler

from ..config import Config
from ..metrics import RefreshMetrics
from ..store import AssetStore, make_client, utcnow
from ..store.prices import PriceStore
from . import client_from_config
from .refresh import RefreshReport, refresh_prices

log = logging.getLogger(__name__)

JOB_ID = "refresh-prices"


def build_refresher(config: Config, metrics: RefreshMetrics | None = None) -> Callable[[], RefreshReport]:
    """Wire the client and stores for refreshes in this process; return a no-argument job."""
    client = client_from_config(config, on_response=metrics.source_response if metrics else None)
    dynamodb = make_client(config)
    store = AssetStore(dynamodb, config.DYNAMODB_TABLE_NAME, config.DYNAMODB_WRITE_CONCURRENCY)
    prices = PriceStore(
        dynamodb, config.DYNAMODB_TABLE_NAME, config.PRICE_HISTORY_DAYS, config.DYNAMODB_WRITE_CONCURRENCY
    )

    def run() -> RefreshReport:
        started = utcnow()
        report = refresh_prices(
            client,
            store,
            prices,
            pages=config.PRICE_REFRESH_PAGES,
            max_age_seconds=config.PRICE_MAX_AGE_SECONDS,
        )
        if metrics:
            metrics.record(report, client.breaker.state, started, report.oldest_price_at)
        return report

    return run


def start_scheduler(config: Config) -> BackgroundScheduler:
    """Run the refresher every PRICE_REFRESH_INTERVAL_SECONDS, the first time right away."""
    job = build_refresher(config, RefreshMetrics())
    scheduler = BackgroundScheduler(timezone=timezone.utc)
    scheduler.add_job(
        job,
        "interval",
        id=JOB_ID,
        seconds=config.PRICE_REFRESH_INTERVAL_SECONDS,
        next_run_time=utcnow(),
        # A slow refresh never overlaps itself, and missed runs collapse into one.
        coalesce=True,
        max_instances=1,
        misfire_grace_time=config.PRICE_REFRESH_INTERVAL_SECONDS,
    )
    scheduler.start()
    log.info("price refresher started: every %ss", config.PRICE_REFRESH_INTERVAL_SECONDS)
    return scheduler
