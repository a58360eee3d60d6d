"""CatalogService: what the API and the CLI ask of the catalog: reads from the read model, writes through the stores."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..config import Config
from ..domain import (
    ALLOWED_TRANSITIONS,
    Asset,
    AssetNotFound,
    AssetStatus,
    InvalidRequest,
    Lease,
    PricePoint,
    RefreshState,
    StatusChange,
    TransitionNotAllowed,
    VersionConflict,
    utcnow,
)
from ..domain.search import SearchIndex, SearchQuery, SortKey, WalkOrders
from ..jobs.candles import RollupReport, finished_days, roll_up_backfilled
from ..jobs.seed import SyncReport, sync_catalog
from ..readmodel.model import ReadModel, build_read_model
from ..store import PlannedChange, Stores
from ..store.changes import written
from ..store.migrate import migrate, table_status
from .cache import Cached

# A history response holds at most this many points, and reads at most this many
# raw ones (30 days of one-minute refreshes is 43,200).
MAX_HISTORY_POINTS = 1000
MAX_RAW_POINTS = 50_000
# A status change retried this often when a price write lands between its read and its write.
PRICE_RACE_RETRIES = 3

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Listing:
    assets: list[Asset]
    next_key: SortKey | None  # None on the last page
    total_count: int
    active_count: int
    stale: bool = False  # the read model could not confirm it is current (the store did not answer)
    snapshot: str | None = None  # the fingerprint a snapshot-path cursor pins: its walk's first snapshot


@dataclass(frozen=True)
class HealthFacts:
    """What /health/detailed reports, read straight from the store (never cached)."""

    table_status: str
    refresh: RefreshState
    lease: Lease | None


class CatalogService:
    """Reads from the process's read model; writes through the stores, applied to the model once committed."""

    def __init__(
        self,
        stores: Stores,
        config: Config,
        model: ReadModel | None = None,
        clock: Callable[[], datetime] = utcnow,
        on_status_change: Callable[[str, str], None] | None = None,
    ):
        self._stores = stores
        self._assets = stores.assets
        self.config = config
        self.model = model or build_read_model(stores, config)
        self.clock = clock
        self._on_status_change = on_status_change
        # The orderings cursor walks began in (search.py).
        self.walks = WalkOrders(config.CURSOR_SNAPSHOT_SECONDS)

    @property
    def stores(self) -> Stores:
        return self._stores

    @property
    def max_age(self) -> int:
        return self.config.PRICE_MAX_AGE_SECONDS

    def get_asset(self, asset_id: str) -> Asset:
        """The asset as the read model holds it (no store request).

        :raises AssetNotFound: no such asset.
        """
        try:
            return self.model.get(asset_id)
        except KeyError:
            raise AssetNotFound(f"Asset {asset_id} not found.") from None

    def catalog_snapshot(self) -> Cached[SearchIndex]:
        """The read model's current version (search, market, valuations, streams read it); stale
        while the store does not answer, so the model cannot tell whether it is current."""
        view = self.model.view()
        return Cached(view, stale=not self.model.store_answering())

    def counts(self, now: datetime) -> tuple[int, int]:
        """(assets, tradable now) in the read model."""
        result = self.catalog_snapshot().value.search(SearchQuery(), 1, None, now, self.max_age)
        return result.total, result.active

    def search(self, query: SearchQuery, limit: int, after: SortKey | None, pin: str | None = None) -> Listing:
        index = self.catalog_snapshot()
        result, pin = self.walks.page(index.value, query, limit, after, pin, self.clock(), self.max_age)
        return Listing(result.page, result.next_key, result.total, result.active, index.stale, pin)

    def by_coingecko_ids(
        self, coingecko_ids: list[str], *, status: AssetStatus | None, category: str | None, active_only: bool
    ) -> Listing:
        """The assets linked to these CoinGecko ids, in the order asked, filtered like a listing."""
        index = self.catalog_snapshot()
        now = self.clock()
        found = [index.value.by_coingecko_id.get(cg_id) for cg_id in dict.fromkeys(coingecko_ids)]
        matching = [
            a for a in found
            if a is not None
            and (status is None or a.status is status)
            and (category is None or a.category == category)
        ]
        tradable = [a for a in matching if a.is_tradable(now, self.max_age)]
        return Listing(tradable if active_only else matching, None, len(matching), len(tradable), index.stale)

    def history(self, asset_id: str, start: datetime | None, end: datetime | None, interval: int) -> list[PricePoint]:
        """Points between start and end, the last one of each interval, oldest first.

        :raises AssetNotFound: no such asset.
        :raises InvalidRequest: an empty or too long range for the interval.
        """
        start, end = history_range(start, end, interval, self.clock())
        self.get_asset(asset_id)
        buckets: dict[int, PricePoint] = {}
        for point in self._stores.prices.history(asset_id, start, end, MAX_RAW_POINTS):
            # Points come oldest first, so the last one written to a bucket is its close.
            buckets[int(point.at.timestamp()) // interval] = point
        return list(buckets.values())

    def audit(self, asset_id: str, limit: int, after: str | None) -> tuple[list[StatusChange], str | None]:
        """Status changes of an asset, newest first, and the key to resume after (none for an unknown id)."""
        return self._stores.changes.audit(asset_id, limit, after)

    def health(self) -> HealthFacts:
        """The table's status, the refresh state and the lease holder.

        :raises StoreError: the store is unreachable.
        """
        self.model.check_store()  # its poller already found the store silent: no need to wait again
        stores = self._stores
        return HealthFacts(
            table_status=table_status(stores.client, stores.table_name),
            refresh=stores.refresh_state.get(),
            lease=stores.leases.current(),
        )

    # -- operator writes ------------------------------------------------------

    def after_write(self, asset_ids: list[str]) -> None:
        """Read back assets this process wrote without knowing their image (imports) into the model.

        The feed brings the change to every other process.
        """
        if asset_ids:
            self.model.reread(list(dict.fromkeys(asset_ids)))

    def change_status(
        self, asset_id: str, to_status: AssetStatus, reason: str, expected_version: int, actor: str, request_id: str
    ) -> Asset:
        """Apply one operator status change at the version the caller saw; return the asset as written.

        :raises AssetNotFound, VersionConflict, TransitionNotAllowed:
        """
        self.model.check_store()
        asset = self._assets.get(asset_id)
        if asset.version != expected_version:
            raise VersionConflict()
        if asset.status is to_status:
            return asset  # a no-op: no new version, no audit record
        _check_transition(asset, to_status)
        (changed,) = self._apply([PlannedChange(asset, to_status, reason)], actor, request_id)
        return changed

    def _apply(self, plans: list[PlannedChange], actor: str, request_id: str) -> list[Asset]:
        """Commit the changes and apply them to the model; return the assets exactly as written.

        :raises VersionConflict: (errors name the stale assets)
        """
        for attempt in range(PRICE_RACE_RETRIES + 1):
            now = self.clock()
            try:
                self._stores.changes.apply(plans, actor, request_id, now)
                break
            except VersionConflict:
                if attempt == PRICE_RACE_RETRIES:
                    raise
                plans = self._replan(plans)
        # The transaction's conditions pinned each asset as read: this is what it wrote.
        assets = [written(plan, actor, now) for plan in plans]
        self.model.written(assets)
        for plan in plans if self._on_status_change else ():
            self._on_status_change(plan.asset.status.value, plan.to_status.value)
        return assets

    def _replan(self, plans: list[PlannedChange]) -> list[PlannedChange]:
        """The same changes over the assets as stored now, when only a price write came between.

        A price write moves an asset's stream_seq but
        never its version: the operator's change still applies to what they saw.
        :raises VersionConflict: an asset's version or status moved (another operator).
        """
        stored = self._assets.batch_get([p.asset.asset_id for p in plans], True)
        fresh = []
        for plan in plans:
            now = stored.get(plan.asset.asset_id)
            if now is None or now.version != plan.asset.version or now.status is not plan.asset.status:
                raise VersionConflict(errors={"conflicts": [plan.asset.asset_id]})
            fresh.append(PlannedChange(now, plan.to_status, plan.reason))
        return fresh

    def batch_get(self, asset_ids: list[str], consistent: bool = False) -> tuple[list[Asset], list[str]]:
        """(assets found, in request order; ids not found): from the model, or with `consistent`
        from the store (strongly consistent reads: quotes must not lag)."""
        if consistent:
            self.model.check_store()
            found = self._assets.batch_get(asset_ids, True)
        else:
            view = self.model.view(asset_ids)
            found = {i: row for i in asset_ids if (row := view.row(i)) is not None}
        return [found[i] for i in asset_ids if i in found], [i for i in asset_ids if i not in found]

    def bulk_status(self, items: list[dict], atomic: bool, reason: str, actor: str, request_id: str) -> list[dict]:
        """Plan every item, then apply all-or-none (atomic) or item by item; one result per item."""
        self.model.check_store()
        ids = [item["asset_id"] for item in items]
        found = self._assets.batch_get(list(dict.fromkeys(ids)))
        results, plans = [], []
        for item in items:
            result = {"asset_id": item["asset_id"], "status": item["status"].value}
            asset = found.get(item["asset_id"])
            expected = item.get("expected_version")
            if asset is None:
                result["result"] = "not_found"
            elif expected is not None and expected != asset.version:
                result["result"] = "conflict"
            elif asset.status is item["status"]:
                result["result"] = "unchanged"
            elif item["status"] not in ALLOWED_TRANSITIONS[asset.status]:
                result["result"] = "invalid"
                result["message"] = f"{asset.status.value} -> {item['status'].value} is not allowed"
            else:
                result["result"] = "planned"
                plans.append((result, PlannedChange(asset, item["status"], reason)))
            results.append(result)
        if atomic:
            if any(r["result"] in ("not_found", "conflict", "invalid") for r in results):
                for result, _ in plans:
                    result["result"] = "not_applied"
                return results
            try:
                self._apply([plan for _, plan in plans], actor, request_id)
            except VersionConflict as exc:
                stale = set((exc.errors or {}).get("conflicts", []))
                for result, plan in plans:
                    result["result"] = "conflict" if plan.asset.asset_id in stale else "not_applied"
                return results
            for result, _ in plans:
                result["result"] = "applied"
        else:
            for result, plan in plans:
                try:
                    self._apply([plan], actor, request_id)
                    result["result"] = "applied"
                except VersionConflict:
                    result["result"] = "conflict"
        return results

    def import_asset(self, asset: Asset, overwrite_linked: bool, actor: str) -> str:
        """Create or update one asset that CoinGecko does not list; return what happened.

        An asset without a coingecko_id is operator-priced: it keeps its own
        staleness bound (OPERATOR_PRICE_MAX_AGE_SECONDS unless the import sets
        one), and an import with a price renews the price's age even when the
        price is the same ("renewed"). The caller reads what it imported back
        into the read model (after_write), once for the whole import.

        :raises VersionConflict: it changed while being imported.
        """
        self.model.check_store()
        try:
            current = self._assets.get(asset.asset_id)
        except AssetNotFound:
            created = asset.replace(
                created_at=self.clock(), updated_at=self.clock(), updated_by=actor,
                price_max_age_seconds=_operator_bound(asset, None, self.config.OPERATOR_PRICE_MAX_AGE_SECONDS),
            )
            if not self._assets.create(created):
                raise VersionConflict() from None
            return "created"
        if current.coingecko_id and not overwrite_linked:
            return "refused_linked"
        changes = {
            name: getattr(asset, name)
            for name in ("symbol", "name", "category", "image", "current_price")
            if getattr(asset, name) is not None and getattr(asset, name) != getattr(current, name)
        }
        if current.coingecko_id is None:
            bound = _operator_bound(asset, current, self.config.OPERATOR_PRICE_MAX_AGE_SECONDS)
            if asset.current_price is not None or bound != current.price_max_age_seconds:
                # Both, always together: the store derives price_fresh_until from them.
                changes["price_max_age_seconds"] = bound
                changes["last_price_update"] = (
                    asset.last_price_update if asset.current_price is not None else current.last_price_update
                )
        elif "current_price" in changes:
            changes["last_price_update"] = asset.last_price_update
        if "category" in changes:
            changes["categories"] = (changes["category"],)  # an import names one category: its only one
        if not changes:
            return "unchanged"
        self._assets.update_catalog(asset.asset_id, changes, current.version, actor, self.clock())
        renewed_only = set(changes) <= {"last_price_update", "price_max_age_seconds"} and (
            changes["price_max_age_seconds"] == current.price_max_age_seconds
        )
        return "renewed" if renewed_only else "updated"

    # -- jobs the CLI runs ----------------------------------------------------

    def migrate(self) -> list[str]:
        """Apply pending table migrations; return the names applied this time."""
        return migrate(self._stores.client, self._stores.table_name, self.clock())

    def seed(self, rows: list[dict], progress: Callable[[int], None] | None = None) -> SyncReport:
        """Load catalog rows (create or refresh identities); return the report."""
        return sync_catalog(rows, self._assets, self.clock(), progress=progress)

    def backfill_history(self, source, asset_id: str, days: int) -> tuple[Asset, int, RollupReport]:
        """Fill an asset's price history from `source` (a CoinGecko client), then roll up every finished
        day it covered (daily candles and day reports); (asset, points written, the roll-up).

        :raises AssetNotFound: no such asset.
        """
        # Imported here: the price source's HTTP stack loads only where a job needs it.
        from ..jobs.backfill import backfill_history

        asset, now, stores = self.get_asset(asset_id), self.clock(), self._stores
        written = backfill_history(source, stores.prices, asset, days, now)
        rolled = roll_up_backfilled(
            stores.assets, stores.prices, stores.candles, asset.asset_id,
            finished_days(now - timedelta(days=days), now), now, self.config.PRICE_HISTORY_DAYS,
        )
        return asset, written, rolled


def history_range(start: datetime | None, end: datetime | None, interval: int, now: datetime) -> tuple[datetime, datetime]:
    """The history range asked for (default: the day before `end`, which defaults to now).

    :raises InvalidRequest: an empty range, or more than MAX_HISTORY_POINTS intervals.
    """
    end = end or now
    start = start or end - timedelta(days=1)
    if start >= end:
        raise InvalidRequest("`from` must be before `to`.", errors={"query": {"from": ["Not before `to`."]}})
    if (end - start).total_seconds() / interval > MAX_HISTORY_POINTS:
        raise InvalidRequest(
            f"The range holds more than {MAX_HISTORY_POINTS} intervals; narrow it or use a longer interval.",
            errors={"query": {"interval": ["Too many points for this range."]}},
        )
    return start, end


def _operator_bound(asset: Asset, current: Asset | None, default_seconds: int) -> int:
    """An operator-priced asset's staleness bound: the import's, else the one it has, else the default."""
    for candidate in (asset, current):
        if candidate is not None and candidate.price_max_age_seconds is not None:
            return candidate.price_max_age_seconds
    return default_seconds


def _check_transition(asset: Asset, to_status: AssetStatus) -> None:
    if to_status not in ALLOWED_TRANSITIONS[asset.status]:
        allowed = sorted(s.value for s in ALLOWED_TRANSITIONS[asset.status])
        raise TransitionNotAllowed(
            f"{asset.status.value} -> {to_status.value} is not allowed; from {asset.status.value}: {', '.join(allowed)}."
        )
