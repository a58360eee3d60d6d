"""CatalogAdmin: what the CLI runs on the catalog: migrations, the seed, history backfills."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from ..domain import Asset
from ..jobs.candles import RollupReport, finished_days, roll_up_backfilled
from ..jobs.seed import SyncReport, sync_catalog
from ..store.migrate import migrate
from .catalog import CatalogService


class CatalogAdmin:
    """Jobs over the whole catalog, run by an operator's command (no lease: one at a time by hand)."""

    def __init__(self, catalog: CatalogService):
        self.catalog = catalog
        self.config, self.clock = catalog.config, catalog.clock
        self.stores = catalog.stores
        self._assets = catalog.stores.assets

    def get_asset(self, asset_id: str) -> Asset:
        return self.catalog.get_asset(asset_id)

    def migrate(self) -> list[str]:
        """Apply pending table migrations; return the names applied this time."""
        return migrate(self.stores.client, self.stores.table_name, self.clock())

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

        asset, now, stores = self.get_asset(asset_id), self.clock(), self.stores
        written = backfill_history(source, stores.prices, asset, days, now)
        rolled = roll_up_backfilled(
            stores.assets, stores.prices, stores.candles, asset.asset_id,
            finished_days(now - timedelta(days=days), now), now, self.config.PRICE_HISTORY_DAYS,
        )
        return asset, written, rolled
