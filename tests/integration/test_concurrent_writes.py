"""Concurrent operator writes on DynamoDB Local (moto is not safe under concurrent transactions)."""

from __future__ import annotations

import json
import threading

import pytest

from inventory import create_app
from inventory.services.tokens import hash_token
from tests.conftest import build_asset

pytestmark = pytest.mark.integration
TOKEN = "inv_ops-token"


def test_two_concurrent_patches_with_one_etag_exactly_one_wins(local_config, local_store):
    # GIVEN one asset and two operators who both read the same ETag
    assert local_store.create(build_asset("BTC", 1, price="97000"))
    entries = [{"name": "ops", "scopes": ["assets:write"], "hash": hash_token(TOKEN)}]
    app = create_app(local_config.replace(API_TOKENS=json.dumps(entries)))
    seen = app.test_client().get("/inventory/assets/BTC").headers["ETag"]
    barrier = threading.Barrier(2)
    outcomes = []

    def operator(status):
        client = app.test_client()
        barrier.wait()
        response = client.patch(
            "/inventory/assets/BTC/status",
            json={"status": status, "reason": "race"},
            headers={"Authorization": f"Bearer {TOKEN}", "If-Match": seen},
        )
        outcomes.append((status, response.status_code))

    # WHEN they PATCH at the same moment
    threads = [threading.Thread(target=operator, args=(s,)) for s in ("SUSPENDED", "INACTIVE")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # THEN exactly one wins, the other gets 412, and the winner's change is the one kept and audited
    assert sorted(code for _, code in outcomes) == [200, 412]
    winner = next(status for status, code in outcomes if code == 200)
    client = app.test_client()
    assert client.get("/inventory/assets/BTC").get_json()["data"]["status"] == winner
    audit = client.get("/inventory/assets/BTC/audit", headers={"Authorization": f"Bearer {TOKEN}"}).get_json()["data"]
    assert [e["to_status"] for e in audit] == [winner]
