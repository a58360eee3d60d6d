"""CatalogService: what the API and the CLI ask of the catalog, and the domain caches (counts, search index) in front of it."""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from .cache import LoadingCache
from .config import Config
from .domain import (
    ALLOWED_TRANSITIONS,
    Asset,
    AssetNotFound,
    AssetStatus,
    CatalogStats,
    InvalidRequest,
    Lease,
    PricePoint,
    RefreshState,
    StatusChange,
    StoreError,
    TransitionNotAllowed,
    VersionConflict,
    utcnow,
)
from .generation import LocalGeneration
from .jobs.seed import SyncReport, sync_catalog
from .search import SearchQuery, SnapshotLoader, SortKey, WalkOrders
from .store import PageKey, PlannedChange, Stores, plan_list_query
from .store.migrate import migrate, table_status

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
    next_key: PageKey | SortKey | None  # PageKey for listings, SortKey for search; None on the last page
    total_count: int
    active_count: int
    stale: bool = False  # served from cache while the store was failing
    snapshot: str | None = None  # the fingerprint a snapshot-path cursor pins: its walk's first snapshot


@dataclass(frozen=True)
class HealthFacts:
    """What /health/detailed reports, read straight from the store (never cached)."""

    table_status: str
    counts: CatalogStats
    refresh: RefreshState
    lease: Lease | None


class CatalogService:
    def __init__(
        self,
        stores: Stores,
        config: Config,
        clock: Callable[[], datetime] = utcnow,
        on_cache_lookup: Callable[[str, bool], None] | None = None,
        generation=None,
        bump_generation: Callable[[], int] | None = None,
        on_status_change: Callable[[str, str], None] | None = None,
    ):
        self._stores = stores
        self._assets = stores.assets
        self.config = config
        self.clock = clock
        # The catalog generation this process's caches (and the API's response
        # cache) are tagged with; bumped in the store after every write.
        self.generation = generation or LocalGeneration()
        self._bump_generation = bump_generation
        self._on_status_change = on_status_change
        ttl, grace = config.CACHE_TTL_SECONDS, config.CACHE_STALE_GRACE_SECONDS

        def cache(name: str, ttl: float = ttl, refresh_ahead: bool = False, changed=None) -> LoadingCache:
            return LoadingCache(
                name, 1, ttl, grace, on_lookup=on_cache_lookup, refresh_ahead=refresh_ahead,
                generation=self.generation, changed=changed,
            )

        self.stats_cache = cache("catalog_counts", changed=operator.ne)
        # Loading 10,000 assets takes seconds: within a generation requests never
        # wait for a reload; a new generation is waited for (never serve older data).
        self.snapshot_cache = cache("catalog_snapshot", config.CATALOG_SNAPSHOT_TTL_SECONDS, refresh_ahead=True)
        self._load_snapshot = SnapshotLoader()
        # The orderings cursor walks began in (search.py).
        self.walks = WalkOrders(config.CURSOR_SNAPSHOT_SECONDS)

    @property
    def stores(self) -> Stores:
        return self._stores

    @property
    def max_age(self) -> int:
        return self.config.PRICE_MAX_AGE_SECONDS

    def get_asset(self, asset_id: str) -> Asset:
        """:raises AssetNotFound: no such asset."""
        return self._assets.get(asset_id)

    def forget(self, *asset_ids: str) -> None:
        """Start a new catalog generation after committed writes (to these assets).

        Every cache tagged with an older generation misses from now on: at once
        in this process, within one poll in the other workers and instances.
        """
        try:
            stored = self._bump_generation() if self._bump_generation else None
        except StoreError as exc:
            log.warning("could not bump the catalog generation: %s", exc)
            stored = None
        before = self.generation.current()
        if stored is None or self.generation.advance(stored) == before:
            # No stored value, or a local step after an earlier failure already
            # reached it: step locally so this instance drops its entries now
            # (other instances: within the ttl).
            self.generation.step()

    def list_assets(
        self,
        *,
        status: AssetStatus | None,
        category: str | None,
        active_only: bool,
        limit: int,
        after: PageKey | None,
    ) -> Listing:
        now = self.clock()
        stats = self.stats_cache.get("stats", self._assets.get_stats)
        total, active = stats.value.counts(now, self.max_age, status, category)
        if active_only and status not in (None, AssetStatus.ACTIVE):
            # Only ACTIVE assets can be tradable: nothing to read.
            return Listing([], None, total, active, stats.stale)
        since = now - timedelta(seconds=self.max_age) if active_only else None
        query = plan_list_query(status, category, since, now)
        page = self._assets.list_page(query, limit, after)
        return Listing(page.assets, page.next_key, total, active, stats.stale)

    def _snapshot(self):
        load = self._load_snapshot
        return self.snapshot_cache.get("all", lambda: load(self._assets.iter_all(), self.generation.current()))

    def catalog_snapshot(self):
        """Cached[search.SearchIndex]: the catalog as this worker last loaded it (search, market, valuations, streams read it)."""
        return self._snapshot()

    def search(self, query: SearchQuery, limit: int, after: SortKey | None, pin: str | None = None) -> Listing:
        index = self._snapshot()
        result, pin = self.walks.page(index.value, query, limit, after, pin, self.clock(), self.max_age)
        return Listing(result.page, result.next_key, result.total, result.active, index.stale, pin)

    def by_coingecko_ids(
        self, coingecko_ids: list[str], *, status: AssetStatus | None, category: str | None, active_only: bool
    ) -> Listing:
        """The assets linked to these CoinGecko ids, in the order asked, filtered like a listing.

        Read from the catalog snapshot search uses (one index Query per load, no Scan).
        """
        index = self._snapshot()
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
        """The table's status, the stored counts, the refresh state and the lease holder.

        :raises StoreError: the store is unreachable.
        """
        stores = self._stores
        return HealthFacts(
            table_status=table_status(stores.client, stores.table_name),
            counts=self._assets.get_stats(),
            refresh=stores.refresh_state.get(),
            lease=stores.leases.current(),
        )

    # -- operator writes ------------------------------------------------------

    def after_write(self, asset_ids: list[str]) -> None:
        """Start a new cache generation after an operator write to these assets.

        The write moved the catalog counts itself, in its own transaction.
        """
        self.forget(*asset_ids)

    def _moved(self, before: list[Asset], after: list[Asset]) -> CatalogStats:
        """The change an operator write makes to the catalog counts (written in its transaction)."""
        return CatalogStats.moved_by(before, after, self.clock(), self.max_age)

    def change_status(
        self, asset_id: str, to_status: AssetStatus, reason: str, expected_version: int, actor: str, request_id: str
    ) -> Asset:
        """Apply one operator status change at the version the caller saw.

        :raises AssetNotFound, VersionConflict, TransitionNotAllowed:
        """
        asset = self._assets.get(asset_id)
        if asset.version != expected_version:
            raise VersionConflict()
        if asset.status is to_status:
            return asset  # a no-op: no new version, no audit record
        _check_transition(asset, to_status)
        plan = PlannedChange(asset, to_status, reason)
        self._apply([plan], actor, request_id)
        self.after_write([asset_id])
        return self._assets.get(asset_id)

    def _apply(self, plans: list[PlannedChange], actor: str, request_id: str) -> None:
        """:raises VersionConflict: (errors name the stale assets)"""
        for attempt in range(PRICE_RACE_RETRIES + 1):
            counts = self._moved([p.asset for p in plans], [p.changed_asset for p in plans])
            try:
                self._stores.changes.apply(plans, actor, request_id, self.clock(), counts)
                break
            except VersionConflict:
                if attempt == PRICE_RACE_RETRIES:
                    raise
                plans = self._replan(plans)
        for plan in plans if self._on_status_change else ():
            self._on_status_change(plan.asset.status.value, plan.to_status.value)

    def _replan(self, plans: list[PlannedChange]) -> list[PlannedChange]:
        """The same changes over the assets as stored now, when only a price write came between.

        A price write moves an asset's stream_seq (and its counts bucket) but
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
        """(assets found, in request order; ids not found); `consistent`: strongly consistent reads."""
        found = self._assets.batch_get(asset_ids, consistent)
        return [found[i] for i in asset_ids if i in found], [i for i in asset_ids if i not in found]

    def bulk_status(self, items: list[dict], atomic: bool, reason: str, actor: str, request_id: str) -> list[dict]:
        """Plan every item, then apply all-or-none (atomic) or item by item; one result per item."""
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
        self.after_write([r["asset_id"] for r in results if r["result"] == "applied"])
        return results

    def import_asset(self, asset: Asset, overwrite_linked: bool, actor: str) -> str:
        """Create or update one asset that CoinGecko does not list; return what happened.

        An asset without a coingecko_id is operator-priced: it keeps its own
        staleness bound (OPERATOR_PRICE_MAX_AGE_SECONDS unless the import sets
        one), and an import with a price renews the price's age even when the
        price is the same ("renewed"). The catalog counts move in the same
        write. Cached views are the caller's to drop (after_write), once for
        the whole import.

        :raises VersionConflict: it changed while being imported.
        """
        try:
            current = self._assets.get(asset.asset_id)
        except AssetNotFound:
            created = asset.replace(
                created_at=self.clock(), updated_at=self.clock(), updated_by=actor,
                price_max_age_seconds=_operator_bound(asset, None, self.config.OPERATOR_PRICE_MAX_AGE_SECONDS),
            )
            if not self._assets.create(created, counts=self._moved([], [created])):
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
        counts = self._moved([current], [current.replace(**changes)])
        self._assets.update_catalog(asset.asset_id, changes, current.version, actor, self.clock(), counts)
        renewed_only = set(changes) <= {"last_price_update", "price_max_age_seconds"} and (
            changes["price_max_age_seconds"] == current.price_max_age_seconds
        )
        return "renewed" if renewed_only else "updated"

    # -- jobs the CLI runs ----------------------------------------------------

    def migrate(self) -> list[str]:
        """Apply pending table migrations; return the names applied this time."""
        return migrate(self._stores.client, self._stores.table_name, self.clock())

    def seed(self, rows: list[dict], progress: Callable[[int], None] | None = None) -> SyncReport:
        """Load catalog rows (create or refresh identities), then rebuild the counts; return the report."""
        now = self.clock()
        report = sync_catalog(rows, self._assets, now, progress=progress)
        self._assets.recount(now, self.max_age)
        self.forget()  # running servers drop what they cached of the old catalog
        return report

    def backfill_history(self, source, asset_id: str, days: int) -> tuple[Asset, int]:
        """Fill an asset's price history from `source` (a CoinGecko client); (asset, points written).

        :raises AssetNotFound: no such asset.
        """
        # Imported here: the price source's HTTP stack loads only where a job needs it.
        from .jobs.backfill import backfill_history

        asset = self.get_asset(asset_id)
        return asset, backfill_history(source, self._stores.prices, asset, days, self.clock())


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
