"""Asset operation metrics: status changes, imports, write conflicts, batch sizes and the CoinGecko ping, with bounded labels."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ADMIN, build_asset
from tests.traffic import serve_each_kind_of_request


def samples(client) -> dict[str, float]:
    """`name{labels}` -> value of every sample on /metrics."""
    text = client.get("/metrics").get_data(as_text=True)
    return {m[1]: float(m[2]) for m in re.finditer(r"^([a-z_]+(?:\{[^}]*\})?) (\S+)$", text, re.M)}


@pytest.fixture
def catalog(add_assets):
    return add_assets(build_asset("BTC", 1, price="97000"), build_asset("ETH", 2, price="3500"))


def test_each_operation_is_counted_once_with_bounded_labels(client, catalog):
    serve_each_kind_of_request(client)
    seen = samples(client)
    assert seen['inventory_asset_status_changes_total{from_status="ACTIVE",to_status="SUSPENDED"}'] == 1
    assert seen['inventory_asset_status_changes_total{from_status="SUSPENDED",to_status="ACTIVE"}'] == 1
    assert seen['inventory_write_conflicts_total{operation="status"}'] == 1
    assert seen['inventory_asset_imports_total{result="created"}'] == 1
    assert seen['inventory_asset_imports_total{result="rejected"}'] == 1
    assert seen['inventory_batch_items_count{operation="import"}'] == 1
    assert seen['inventory_batch_items_sum{operation="import"}'] == 2
    assert seen['inventory_batch_items_sum{operation="batch_get"}'] == 2
    assert seen['inventory_batch_items_sum{operation="bulk_status"}'] == 1
    # The health call pinged the source (a closed port here): endpoint and status, no raw URL.
    assert seen['inventory_coingecko_requests_total{endpoint="/ping",status="error"}'] == 1
    assert seen["inventory_coingecko_up"] == 0
    # Nothing names an asset id in a label.
    text = client.get("/metrics").get_data(as_text=True)
    assert not re.search(r'\{[^}]*"(BTC|ETH|ACME)"', text)


def test_a_rejected_status_change_is_not_counted(client, catalog):
    seen = client.get("/inventory/assets/BTC").headers["ETag"]
    response = client.patch("/inventory/assets/BTC/status", json={"status": "ACTIVE", "reason": "no-op"},
                            headers={**ADMIN, "If-Match": seen})
    assert response.status_code == 200  # the same status: a no-op
    assert not any(k.startswith("inventory_asset_status_changes_total{") for k in samples(client))


def test_bulk_conflicts_and_import_outcomes_are_counted_per_item(client, catalog):
    bulk = {"items": [{"asset_id": "BTC", "status": "SUSPENDED", "expected_etag": '"v99.x"'},
                      {"asset_id": "ETH", "status": "SUSPENDED"}], "reason": "t"}
    assert client.post("/inventory/assets/bulk-status", json=bulk, headers=ADMIN).status_code == 200
    items = [{"asset_id": "ACME", "symbol": "acme", "name": "Acme"}]
    for _ in range(2):
        assert client.post("/inventory/assets/import", json={"items": items}, headers=ADMIN).status_code == 200
    seen = samples(client)
    assert seen['inventory_write_conflicts_total{operation="bulk_status"}'] == 1
    assert seen['inventory_asset_status_changes_total{from_status="ACTIVE",to_status="SUSPENDED"}'] == 1
    assert seen['inventory_asset_imports_total{result="created"}'] == 1
    assert seen['inventory_asset_imports_total{result="unchanged"}'] == 1
