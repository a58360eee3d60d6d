"""CategoryService: what the categories endpoints ask (boards of the catalog snapshot) and the operator's write."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from ..domain import Asset, VersionConflict
from ..domain.models import UNCATEGORIZED
from ..domain.taxonomy import CategoryBoard, members_of, ordered


class CategoryBoards:
    """The board of the current catalog snapshot: rebuilt only when the snapshot object changes."""

    def __init__(self):
        self._lock = threading.Lock()
        self._source: object | None = None  # held, so its id is never reused while cached
        self._board: CategoryBoard | None = None

    def board(self, snapshot, assets: Iterable[Asset], max_age_seconds: int) -> CategoryBoard:
        with self._lock:
            if self._source is not snapshot or self._board is None or self._board.max_age_seconds != max_age_seconds:
                self._board = CategoryBoard(assets, max_age_seconds)
                self._source = snapshot
            return self._board


class CategoryService:
    """What the categories endpoints ask: boards from the catalog snapshot, and the operator's write.

    Takes the CatalogService (its snapshot, clock, stores and cache generation).
    """

    def __init__(self, catalog, boards: CategoryBoards):
        self.catalog = catalog
        self.boards = boards

    def board(self) -> tuple[CategoryBoard, bool]:
        """The board of the current snapshot, and whether that snapshot is served stale."""
        snapshot = self.catalog.catalog_snapshot()
        return self.boards.board(snapshot.value, snapshot.value.assets, self.catalog.max_age), snapshot.stale

    def set_categories(
        self, asset_id: str, categories: list[str], reason: str, expected_version: int, actor: str, request_id: str
    ) -> Asset:
        """Set an asset's categories as an operator (the first is the primary); the job never overwrites them.

        :raises AssetNotFound, VersionConflict:
        """
        rest = [slug for slug in ordered(categories[1:]) if slug not in (categories[0], UNCATEGORIZED)]
        return self._write(asset_id, (categories[0], *rest), reason, expected_version, actor, request_id, pin=True)

    def release(self, asset_id: str, reason: str, expected_version: int, actor: str, request_id: str) -> Asset:
        """Hand an asset's categories back to the membership job (kept until its next run changes them).

        :raises AssetNotFound, VersionConflict:
        """
        return self._write(asset_id, None, reason, expected_version, actor, request_id, pin=False)

    def _write(self, asset_id, wanted, reason, expected_version, actor, request_id, *, pin: bool) -> Asset:
        stores = self.catalog.stores
        self.catalog.model.check_store()
        asset = stores.assets.get(asset_id)
        if asset.version != expected_version:
            raise VersionConflict()
        before = members_of(asset)
        wanted = wanted or before
        now = self.catalog.clock()
        change = f"categories {','.join(before)} -> {','.join(wanted)}" if pin else "categories handed to the source"
        note = change + (f": {reason}" if reason else "")
        stores.categories.set_by_operator(asset, wanted, actor, note[:500], request_id, now, pin)
        self.catalog.after_write([asset_id])
        return self.catalog.get_asset(asset_id)
