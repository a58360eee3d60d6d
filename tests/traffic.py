"""One request of each kind the service serves, so a scrape afterwards shows every metric family it can export."""

from __future__ import annotations

from tests.conftest import ADMIN


def serve_each_kind_of_request(client) -> None:
    """Reads (hit, miss, 404, search, history), writes (status change, 412, bulk, import, batch-get), health.

    Expects BTC (ACTIVE, priced) in the catalog; leaves it ACTIVE again.
    """
    assert client.get("/inventory/assets/BTC").status_code == 200
    assert client.get("/inventory/assets/BTC").status_code == 200  # a cache hit
    assert client.get("/inventory/assets/NOPE").status_code == 404
    assert client.get("/inventory/assets?limit=5").status_code == 200
    assert client.get("/inventory/assets/search?q=bt").status_code == 200
    assert client.get("/inventory/assets/BTC/history").status_code == 200
    seen = client.get("/inventory/assets/BTC").headers["ETag"]
    change = {"status": "SUSPENDED", "reason": "metrics"}
    assert client.patch("/inventory/assets/BTC/status", json=change, headers={**ADMIN, "If-Match": seen}).status_code == 200
    assert client.patch("/inventory/assets/BTC/status", json={**change, "status": "INACTIVE"},
                        headers={**ADMIN, "If-Match": seen}).status_code == 412
    now = client.get("/inventory/assets/BTC").headers["ETag"]
    bulk = {"items": [{"asset_id": "BTC", "status": "ACTIVE", "expected_etag": now}], "reason": "metrics"}
    assert client.post("/inventory/assets/bulk-status", json=bulk, headers=ADMIN).status_code == 200
    imported = {"items": [{"asset_id": "ACME", "symbol": "acme", "name": "Acme", "current_price": "1.5"},
                          {"asset_id": "bad!", "symbol": "x", "name": "x"}]}
    assert client.post("/inventory/assets/import", json=imported, headers=ADMIN).status_code == 200
    assert client.post("/inventory/assets/batch-get", json={"ids": ["BTC", "ACME"]}).status_code == 200
    assert client.get("/health/detailed").status_code == 200
