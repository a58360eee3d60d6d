"""CatalogService: the catalog's reads, from the read model (writes: writes.py; migrate, seed, backfill: admin.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..config import Config
from ..domain import (
    Asset,
    AssetNotFound,
    AssetStatus,
    InvalidRequest,
    Lease,
    PricePoint,
    RefreshState,
    StatusChange,
    utcnow,
)
from ..domain.pricecheck import CrossCheckState
from ..domain.search import SearchIndex, SearchQuery, SortKey, WalkOrders
from ..readmodel.model import ReadModel, build_read_model
from ..store import Stores
from ..store.migrate import table_status
from .cache import Cached

# A history response holds at most this many points, and reads at most this many
# raw ones (30 days of one-minute refreshes is 43,200).
MAX_HISTORY_POINTS = 1000
MAX_RAW_POINTS = 50_000

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
    crosscheck: CrossCheckState | None = None  # None: cross-checks are off


class CatalogService:
    """Reads from the process's read model (and the few that must go to the store: audit, health facts)."""

    def __init__(
        self,
        stores: Stores,
        config: Config,
        model: ReadModel | None = None,
        clock: Callable[[], datetime] = utcnow,
    ):
        self._stores = stores
        self._assets = stores.assets
        self.config = config
        self.model = model or build_read_model(stores, config)
        self.clock = clock
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
        config = self.config
        return HealthFacts(
            table_status=table_status(stores.client, stores.table_name),
            refresh=stores.refresh_state.get(),
            lease=stores.leases.current(),
            crosscheck=stores.crosschecks.state(config.CROSSCHECK_EXCHANGE) if config.CROSSCHECK_ENABLED else None,
        )

    # -- operator writes ------------------------------------------------------

    def after_write(self, asset_ids: list[str]) -> None:
        """Read back assets this process wrote without knowing their image (imports) into the model.

        The feed brings the change to every other process.
        """
        if asset_ids:
            self.model.reread(list(dict.fromkeys(asset_ids)))

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
