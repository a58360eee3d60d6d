"""CatalogWrites: the operator's writes (status changes, one or in bulk; imports), each committed
in its own transaction and applied to this process's read model exactly as written."""

from __future__ import annotations

from collections.abc import Callable

from ..domain import (
    ALLOWED_TRANSITIONS,
    Asset,
    AssetNotFound,
    AssetStatus,
    TransitionNotAllowed,
    VersionConflict,
)
from ..domain.pricecheck import rebanded
from ..store import PlannedChange
from ..store.changes import written
from .catalog import CatalogService

# A status change retried this often when a price write lands between its read and its write.
PRICE_RACE_RETRIES = 3


class CatalogWrites:
    """Writes through the stores; the read model applies each once committed (read-your-writes)."""

    def __init__(self, catalog: CatalogService, on_status_change: Callable[[str, str], None] | None = None):
        self.catalog = catalog
        self.config, self.model, self.clock = catalog.config, catalog.model, catalog.clock
        self.stores = catalog.stores
        self._assets = catalog.stores.assets
        self._on_status_change = on_status_change

    def import_item(self, item: dict, overwrite_linked: bool, actor: str) -> str:
        """Import one validated item (ImportItemSchema): an asset CoinGecko does not list.

        :raises VersionConflict: it changed while being imported.
        """
        priced = item.get("current_price") is not None
        asset = Asset(
            asset_id=item["asset_id"],
            symbol=item["symbol"],
            name=item["name"],
            category=item.get("category"),
            image=item.get("image"),
            current_price=item.get("current_price"),
            last_price_update=self.clock() if priced else None,
            price_max_age_seconds=item.get("price_max_age_seconds"),
        )
        return self.import_asset(asset, overwrite_linked, actor)

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

    def set_price_band(
        self, asset_id: str, band_bps: int | None, reason: str, expected_version: int, actor: str, request_id: str
    ) -> Asset:
        """Set (None: drop) the operator's band for the asset's price check, at the version the caller saw.

        The stored check is judged against the new band at once, without new prices;
        the next cross-check uses it too. Audited like a status change.

        :raises AssetNotFound, VersionConflict:
        """
        self.model.check_store()
        asset = self._assets.get(asset_id)
        if asset.version != expected_version:
            raise VersionConflict()
        if asset.price_band_bps == band_bps:
            return asset  # a no-op: no new version, no audit record
        band = asset.replace(price_band_bps=band_bps).band_bps
        check = rebanded(asset.price_check, band) if asset.price_check is not None else None
        before = "default" if asset.price_band_bps is None else f"{asset.price_band_bps} bps"
        after = "default" if band_bps is None else f"{band_bps} bps"
        note = f"price band {before} -> {after}" + (f": {reason}" if reason else "")
        self.stores.crosschecks.set_band(asset, band_bps, check, actor, note[:500], request_id, self.clock())
        self.catalog.after_write([asset_id])
        return self.catalog.get_asset(asset_id)

    def _apply(self, plans: list[PlannedChange], actor: str, request_id: str) -> list[Asset]:
        """Commit the changes and apply them to the model; return the assets exactly as written.

        :raises VersionConflict: (errors name the stale assets)
        """
        for attempt in range(PRICE_RACE_RETRIES + 1):
            now = self.clock()
            try:
                self.stores.changes.apply(plans, actor, request_id, now)
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
