"""A price written between an operator's read and write never costs the operator a 412 (only another operator does)."""

from __future__ import annotations

import pytest

from inventory.domain import AssetStatus, VersionConflict
from tests.conftest import build_asset
from tests.streams import move_price


def _write_after_first_read(assets, write):
    """Run `write` once, right after the asset store first reads the asset: the race a refresh can win."""
    read = assets.get
    pending = [write]

    def get(asset_id):
        asset = read(asset_id)
        if pending:
            pending.pop()()
        return asset

    assets.get = get


def test_a_price_write_between_read_and_write_is_absorbed(app, add_assets):
    add_assets(build_asset("BTC", 1, price="97000"))
    with app.app_context():
        from inventory.api.extension import services

        service = services().catalog
        before = service.get_asset("BTC")
        _write_after_first_read(service.stores.assets, lambda: move_price(app, "BTC", "97100", 1))
        changed = services().writes.change_status("BTC", AssetStatus.SUSPENDED, "t", before.version, "ops", "r1")
    assert changed.status is AssetStatus.SUSPENDED
    assert changed.version == before.version + 1
    # The price write and the status change each moved the per-asset stream sequence once.
    assert changed.stream_seq == before.stream_seq + 2
    assert str(changed.current_price) == "97100"


def test_another_operators_change_between_read_and_write_still_conflicts(app, add_assets):
    add_assets(build_asset("BTC", 1, price="97000"))
    with app.app_context():
        from inventory.api.extension import services

        service = services().catalog
        before = service.get_asset("BTC")
        _write_after_first_read(service.stores.assets, lambda: service.stores.assets.update_catalog(
            "BTC", {"name": "Bitcoin (renamed)"}, before.version, "other", service.clock()))
        with pytest.raises(VersionConflict):
            services().writes.change_status("BTC", AssetStatus.SUSPENDED, "t", before.version, "ops", "r1")
        assert service.get_asset("BTC").status is AssetStatus.ACTIVE
