"""refresh_categories: one category membership run as a plain function, and the scheduled check that runs it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..config import Config
from ..domain import InventoryError, utcnow
from ..domain.taxonomy import SOURCE_CATEGORIES, classify
from ..source.client import CoinGeckoClient
from ..store import CategoryStore

log = logging.getLogger(__name__)

JOB_ID = "refresh-categories"
# How often the lease holder checks whether a run is due (the run itself is
# every CATEGORY_REFRESH_HOURS, counted from the last completed run, stored).
CHECK_SECONDS = 600
# The first check after start: the first price refresh has its turn at the rate limit first.
FIRST_CHECK_DELAY_SECONDS = 30


@dataclass
class CategoryReport:
    assets: int = 0
    changed: int = 0
    unchanged: int = 0
    operator_set: int = 0  # left alone: an operator set them
    unlinked: int = 0  # not linked to CoinGecko: their categories are the importer's
    raced: int = 0  # changed by someone else between read and write: left for the next run
    source_calls: int = 0
    missing: list[str] = field(default_factory=list)  # mapped CoinGecko ids the source no longer lists
    duration_seconds: float = 0.0
    error: str | None = None

    def as_dict(self) -> dict:
        return {**vars(self), "duration_seconds": round(self.duration_seconds, 3)}


def fetch_memberships(
    client: CoinGeckoClient, max_rank: int | None, max_pages: int, report: CategoryReport
) -> dict[str, set[str]]:
    """Taxonomy slug -> the CoinGecko ids in any of the source categories it maps from.

    :raises PriceSourceError: a call failed (a partial membership would drop categories, so nothing is kept).
    """
    available = client.categories_list()
    report.source_calls += 1
    members: dict[str, set[str]] = {}
    for slug, source_ids in SOURCE_CATEGORIES.items():
        found = members.setdefault(slug, set())
        for source_id in source_ids:
            if source_id not in available:
                report.missing.append(source_id)
                continue
            fetch = client.category_members(source_id, max_rank, max_pages)
            report.source_calls += fetch.calls
            found.update(row["id"] for row in fetch.rows if isinstance(row, dict) and isinstance(row.get("id"), str))
    return members


def refresh_categories(
    client: CoinGeckoClient,
    categories: CategoryStore,
    now: datetime,
    *,
    max_pages: int,
) -> CategoryReport:
    """Set every linked asset's categories from CoinGecko's membership; write only those that changed.

    Never writes an asset whose categories an operator set, never a price field,
    never the version (an operator's If-Match stays valid).
    """
    report = CategoryReport()
    started = time.monotonic()
    try:
        stored = list(categories.memberships())
        report.assets = len(stored)
        ranks = [m.rank for m in stored if m.coingecko_id and m.rank is not None]
        members = fetch_memberships(client, max(ranks) if ranks else None, max_pages, report)
        for member in stored:
            if member.set_by:
                report.operator_set += 1
                continue
            if not member.coingecko_id:
                report.unlinked += 1
                continue
            wanted = classify(member.coingecko_id, members)
            if wanted == member.categories:
                report.unchanged += 1
            elif categories.set_from_source(member, wanted, now):
                report.changed += 1
            else:
                report.raced += 1
        categories.record_run(now, report.as_dict())
    except InventoryError as exc:
        report.error = str(exc)
        log.warning("category refresh failed: %s", exc)
    report.duration_seconds = time.monotonic() - started
    log.info("category refresh: %s changed, %s unchanged, %s source calls", report.changed, report.unchanged,
             report.source_calls, extra={"categories": report.as_dict()})
    return report


def build_category_job(
    config: Config, source: CoinGeckoClient, dynamodb, holds_lease: Callable[[], bool]
) -> Callable[[], CategoryReport | None]:
    """The scheduled check: run when this instance holds the lease and the last run is CATEGORY_REFRESH_HOURS old."""
    table = config.DYNAMODB_TABLE_NAME
    categories = CategoryStore(dynamodb, table)
    interval = timedelta(hours=config.CATEGORY_REFRESH_HOURS)

    def check() -> CategoryReport | None:
        if not holds_lease():
            return None
        now = utcnow()
        try:
            last = categories.last_run()
        except InventoryError as exc:
            log.warning("could not read the last category refresh: %s", exc)
            return None
        if last is not None and now - last < interval:
            return None
        return refresh_categories(source, categories, now, max_pages=config.CATEGORY_MAX_PAGES)

    return check
