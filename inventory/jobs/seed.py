"""sync_catalog: create new coins and update catalog facts of known ones (seed, `seed --from-coingecko`)."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources

from ..domain import Asset
from ..source.rows import CoinRow, load_json, match_rows
from ..store import AssetStore

log = logging.getLogger(__name__)


def bundled_rows() -> list:
    """The seed catalog shipped inside the package."""
    return load_json(resources.files("inventory.data").joinpath("seed_catalog.json").read_bytes())


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    @property
    def skipped_count(self) -> int:
        return sum(len(v) for v in self.skipped.values())

    def skipped_by_reason(self) -> dict[str, list[str]]:
        return {k: sorted(v) for k, v in sorted(self.skipped.items())}

    def as_dict(self) -> dict:
        return {
            "created": len(self.created),
            "updated": len(self.updated),
            "unchanged": self.unchanged,
            "skipped": self.skipped_count,
            "skipped_by_reason": self.skipped_by_reason(),
        }


def sync_catalog(
    raw_rows: list,
    store: AssetStore,
    now: datetime,
    *,
    require_price: bool = False,
    progress: Callable[[int], None] | None = None,
) -> SyncReport:
    """Create new coins and update catalog facts of known ones; idempotent.

    Never touches `status` or `category` of an existing asset (operator fields),
    and never replaces a stored price with an older one.
    """
    report = SyncReport()
    matched = match_rows(raw_rows, store.iter_all(), now, require_price=require_price)
    report.skipped = matched.skipped
    if progress:
        progress(len(raw_rows) - len(matched.known))
    for row, existing in matched.known:
        _refresh_facts(row, existing, store, now, report)
        if progress:
            progress(1)
    created, existed = store.create_many(matched.new)
    report.created.extend(created)
    # Created meanwhile by another seed or a refresh: theirs stands.
    report.unchanged += len(existed)
    if report.skipped_count:
        log.warning(
            "catalog sync skipped coins",
            extra={"skipped": report.skipped_count, "skipped_by_reason": report.skipped_by_reason()},
        )
    return report


def _refresh_facts(row: CoinRow, existing: Asset, store: AssetStore, now, report: SyncReport):
    changes = {
        name: value
        for name, value in (("symbol", row.symbol), ("name", row.name), ("image", row.image))
        if value is not None and getattr(existing, name) != value
    }
    newer_price = row.priced and (
        existing.last_price_update is None
        or row.market["last_price_update"] > existing.last_price_update
    )
    if newer_price:
        changes.update(
            {k: v for k, v in row.market.items() if getattr(existing, k) != v}
        )
    if not changes:
        report.unchanged += 1
        return
    store.update_fields(existing.asset_id, changes, now)
    report.updated.append(existing.asset_id)
