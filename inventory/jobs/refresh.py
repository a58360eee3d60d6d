"""refresh_prices: one price refresh as a plain function returning a report."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from ..domain import (
    Asset,
    AssetStatus,
    Fence,
    InventoryError,
    RefreshState,
    utcnow,
)
from ..domain.pricecheck import PRIMARY_SOURCE, SourcePrice
from ..source.client import CoinGeckoClient
from ..source.rows import match_rows
from ..store import AssetStore, RefreshStateStore
from ..store.dynamo import LeaseLost, count_calls
from ..store.prices import PriceStore, PriceUpdate
from .crosscheck import recheck

log = logging.getLogger(__name__)


@dataclass
class RefreshReport:
    fetched: int = 0
    updated: int = 0
    unchanged: int = 0
    created: int = 0
    skipped: Counter = field(default_factory=Counter)
    source_calls: int = 0
    dynamodb_requests: int = 0
    duration_seconds: float = 0.0
    error: str | None = None
    oldest_price_at: datetime | None = None  # stalest ACTIVE priced asset after this refresh

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "fetched": self.fetched,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "created": self.created,
            "skipped": sum(self.skipped.values()),
            "skipped_by_reason": dict(sorted(self.skipped.items())),
            "source_calls": self.source_calls,
            "dynamodb_requests": self.dynamodb_requests,
            "duration_seconds": round(self.duration_seconds, 3),
            "error": self.error,
        }

    def log_fields(self) -> dict:
        """The report as top-level log fields (`created` is a LogRecord attribute, so it is renamed)."""
        fields = self.as_dict()
        fields["created_assets"] = fields.pop("created")
        return fields


def refresh_prices(
    client: CoinGeckoClient,
    store: AssetStore,
    prices: PriceStore,
    *,
    pages: int,
    clock: Callable[[], datetime] = utcnow,
    fence: Fence | None = None,
    state: RefreshStateStore | None = None,
    check_max_age: float | None = None,
) -> RefreshReport:
    """Fetch market pages, write changed figures (never operator fields), record the outcome.

    A failure of the source or the store leaves every stored asset as it was and
    is recorded in the refresh state for /health/detailed; it is not raised.
    `fence` (from the lease) joins every write, so an instance that lost the
    lease mid-refresh writes nothing more. `state` defaults to the refresh state
    in the asset store's table. `check_max_age` (cross-checks on): every new price
    is checked against the second price its asset's last check had, if not older
    than that (jobs/crosscheck.py recheck); None: stored checks are dropped.
    """
    state = state or RefreshStateStore(store.client, store.table_name)
    report = RefreshReport()
    started, began = clock(), time.perf_counter()
    with count_calls(store.client) as calls:
        try:
            _refresh(client, store, prices, pages, started, report, fence, check_max_age)
        except InventoryError as exc:
            report.error = str(exc)
            log.warning("price refresh failed: %s", exc)
        except LeaseLost:
            report.error = "the refresh lease was lost to another instance; writes stopped"
            log.warning("price refresh fenced off: lease lost")
        _record_state(state, client, started, report)
    report.dynamodb_requests = calls["calls"]
    report.duration_seconds = time.perf_counter() - began
    log.info("price refresh", extra=report.log_fields())
    return report


def _refresh(client, store, prices, pages, now, report: RefreshReport, fence, check_max_age) -> None:
    existing = list(store.iter_all())
    fetch = client.fetch_markets(pages)
    report.source_calls = fetch.calls
    report.fetched = len(fetch.rows)
    matched = match_rows(fetch.rows, existing, now, require_price=True)
    for reason, labels in matched.skipped.items():
        report.skipped[reason] += len(labels)
    new_assets: list[Asset] = matched.new
    updates: list[PriceUpdate] = []
    for row, current in matched.known:
        # Market figures and the source's catalog facts (image), never an operator field.
        changes = {k: v for k, v in row.linked_facts().items() if getattr(current, k) != v}
        # The second source stood in during an outage: CoinGecko's price takes over, whatever its time.
        stood_in = current.price_source is not None
        if not changes:
            report.unchanged += 1
        elif not stood_in and current.last_price_update and row.market["last_price_update"] < current.last_price_update:
            report.skipped["older_than_stored"] += 1
        else:
            changes.update(_provenance(current, row, now, check_max_age))
            updates.append(
                PriceUpdate(
                    asset_id=current.asset_id,
                    changes=changes,
                    last_price_update=row.market["last_price_update"],
                    point={
                        "price": row.market["current_price"],
                        "market_cap": row.market["market_cap"],
                        "volume_24h": row.market["volume_24h"],
                    },
                    stream_seq=current.stream_seq,
                    day_change={k: row.market.get(k) for k in ("price_change_24h", "price_change_percentage_24h")},
                )
            )
    result = prices.apply(updates, fence)
    report.updated = len(result.applied)
    report.skipped["newer_price_stored"] += len(result.rejected)
    created, existed = store.create_many(new_assets, fence)
    created_ids = set(created)
    added = [a for a in new_assets if a.asset_id in created_ids]
    prices.record_first_points(added, fence)
    report.created = len(created)
    report.skipped["created_concurrently"] += len(existed)
    report.skipped += Counter()  # `+=` drops the reasons that stayed at zero

    # The stalest tradable price as this refresh left the catalog, without reading it again.
    applied = set(result.applied)
    changed = {u.asset_id: u.changes for u in updates if u.asset_id in applied}
    catalog = [a.replace(**changed[a.asset_id]) if a.asset_id in changed else a for a in existing] + added
    priced_times = [
        a.last_price_update
        for a in catalog
        if a.status is AssetStatus.ACTIVE and a.current_price is not None and a.last_price_update
    ]
    report.oldest_price_at = min(priced_times, default=None)


def _provenance(current: Asset, row, now: datetime, check_max_age: float | None) -> dict:
    """What a new primary price also writes: its source (the primary's), the market figures' time,
    and its check against the second price the asset's last check had."""
    priced_at = row.market["last_price_update"]
    out = {"price_source": None} if current.price_source is not None else {}
    if current.market_as_of != priced_at:
        out["market_as_of"] = priced_at
    check = None
    if check_max_age is not None and row.market["current_price"] is not None:
        primary = SourcePrice(PRIMARY_SOURCE, row.market["current_price"], priced_at)
        check = recheck(current, primary, now, check_max_age)
    if check != current.price_check:
        out["price_check"] = check
    return out


def _record_state(state: RefreshStateStore, client: CoinGeckoClient, now: datetime, report: RefreshReport) -> None:
    try:
        previous = state.get()
        state.put(
            RefreshState(
                last_success_at=now if report.ok else previous.last_success_at,
                last_attempt_at=now,
                last_error=report.error,
                breaker_state=client.breaker.state,
            )
        )
    except InventoryError as exc:  # the store itself is down: the report says so already
        log.warning("could not record refresh state: %s", exc)
        report.error = report.error or str(exc)

