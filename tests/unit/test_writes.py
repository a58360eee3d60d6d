"""Operator writes: tokens and scopes, optimistic locking, audit, batch-get, bulk status, import."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import simplejson

from inventory import create_app
from inventory.domain import AssetStatus
from inventory.services.tokens import hash_token
from tests.conftest import build_asset

TOKENS = {
    "reader": (["assets:read"], "inv_reader-token"),
    "ops": (["assets:write"], "inv_ops-token"),
    "admin": (["assets:admin"], "inv_admin-token"),
}


def auth(name):
    return {"Authorization": f"Bearer {TOKENS[name][1]}"}


def body(response):
    return simplejson.loads(response.get_data(), use_decimal=True)


@pytest.fixture
def app(config, moto_client):
    entries = [{"name": n, "scopes": s, "hash": hash_token(t)} for n, (s, t) in TOKENS.items()]
    app = create_app(config.replace(API_TOKENS=json.dumps(entries)), dynamodb_client=moto_client)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def catalog(add_assets):
    return add_assets(
        build_asset("BTC", 1, price="97000"),
        build_asset("ETH", 2, price="3500"),
        build_asset("GONE", 3, price="1", status=AssetStatus.INACTIVE),
    )


def etag(client, asset_id="BTC"):
    return client.get(f"/inventory/assets/{asset_id}").headers["ETag"]


def patch(client, status, *, token="ops", if_match=None, asset_id="BTC", reason="test"):
    headers = dict(auth(token)) if token else {}
    if if_match:
        headers["If-Match"] = if_match
    return client.patch(f"/inventory/assets/{asset_id}/status", json={"status": status, "reason": reason}, headers=headers)


def test_writes_need_a_token(client, catalog):
    response = patch(client, "SUSPENDED", token=None, if_match=etag(client))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert body(response)["code"] == 401
    bad = client.patch("/inventory/assets/BTC/status", json={"status": "SUSPENDED"},
                       headers={"Authorization": "Bearer inv_not-a-token", "If-Match": etag(client)})
    assert bad.status_code == 401
    malformed = client.patch("/inventory/assets/BTC/status", json={"status": "SUSPENDED"},
                             headers={"Authorization": "Basic abc", "If-Match": etag(client)})
    assert malformed.status_code == 401


def test_read_only_token_is_forbidden_to_write(client, catalog):
    response = patch(client, "SUSPENDED", token="reader", if_match=etag(client))
    assert response.status_code == 403
    assert body(response)["code"] == 403
    assert client.get("/inventory/assets/BTC").get_json()["data"]["status"] == "ACTIVE"


def test_status_change_is_applied_and_audited(client, catalog):
    response = patch(client, "SUSPENDED", if_match=etag(client), reason="exchange halt")
    assert response.status_code == 200
    data = body(response)["data"]
    assert data["status"] == "SUSPENDED" and data["is_active"] is False
    assert client.get("/inventory/assets/BTC").get_json()["data"]["status"] == "SUSPENDED"
    audit = body(client.get("/inventory/assets/BTC/audit", headers=auth("reader")))["data"]
    assert len(audit) == 1
    entry = audit[0]
    assert (entry["actor"], entry["from_status"], entry["to_status"], entry["reason"]) == (
        "ops", "ACTIVE", "SUSPENDED", "exchange halt")
    assert entry["request_id"] == response.headers["X-Request-ID"]


def test_if_match_is_required_and_checked(client, catalog):
    assert patch(client, "SUSPENDED").status_code == 428
    assert patch(client, "SUSPENDED", if_match="*").status_code == 428
    old = etag(client)
    assert patch(client, "SUSPENDED", if_match=old).status_code == 200
    stale = patch(client, "ACTIVE", if_match=old)
    assert stale.status_code == 412
    assert body(stale)["code"] == 412


def test_a_price_change_does_not_void_an_if_match(client, store, catalog, app):
    from inventory.domain import utcnow

    seen = etag(client)
    store.update_fields("BTC", {"current_price": Decimal("1")}, utcnow())
    assert etag(client) != seen
    assert patch(client, "SUSPENDED", if_match=seen).status_code == 200


def test_noop_change_keeps_the_version(client, catalog):
    before = etag(client)
    response = patch(client, "ACTIVE", if_match=before)
    assert response.status_code == 200
    assert response.headers["ETag"].split(".")[0] == before.split(".")[0] == '"v1'
    assert body(client.get("/inventory/assets/BTC/audit", headers=auth("ops")))["data"] == []


def test_disallowed_transition_is_409(client, catalog):
    response = patch(client, "SUSPENDED", asset_id="GONE", if_match=etag(client, "GONE"))
    assert response.status_code == 409
    assert "INACTIVE" in body(response)["message"]


def test_audit_pages_newest_first(client, catalog):
    for status in ["SUSPENDED", "ACTIVE", "SUSPENDED", "ACTIVE", "INACTIVE"]:
        assert patch(client, status, if_match=etag(client)).status_code == 200
    seen, cursor = [], None
    while True:
        url = "/inventory/assets/BTC/audit?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = body(client.get(url, headers=auth("reader")))
        seen += [e["version"] for e in page["data"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == [6, 5, 4, 3, 2]


def test_batch_get_reports_found_missing_and_invalid(client, catalog):
    response = client.post("/inventory/assets/batch-get", json={"ids": ["btc", " ETH ", "NOPE", "BAD!", "BTC"]})
    assert response.status_code == 200
    payload = body(response)
    assert [a["asset_id"] for a in payload["data"]] == ["BTC", "ETH"]
    assert payload["not_found"] == ["NOPE"] and payload["invalid"] == ["BAD!"]
    assert client.post("/inventory/assets/batch-get", json={"ids": ["A"] * 101}).status_code == 422


def test_bulk_status_non_atomic_reports_per_item(client, catalog):
    btc_etag = etag(client)
    response = client.post("/inventory/assets/bulk-status", headers=auth("ops"), json={
        "items": [
            {"asset_id": "BTC", "status": "SUSPENDED", "expected_etag": btc_etag},
            {"asset_id": "ETH", "status": "SUSPENDED", "expected_etag": "v99.abc"},
            {"asset_id": "NOPE", "status": "SUSPENDED"},
            {"asset_id": "GONE", "status": "SUSPENDED"},
        ],
        "reason": "bulk",
    })
    assert response.status_code == 200
    results = {r["asset_id"]: r["result"] for r in body(response)["results"]}
    assert results == {"BTC": "applied", "ETH": "conflict", "NOPE": "not_found", "GONE": "invalid"}
    assert client.get("/inventory/assets/BTC").get_json()["data"]["status"] == "SUSPENDED"
    assert client.get("/inventory/assets/ETH").get_json()["data"]["status"] == "ACTIVE"


def test_bulk_status_atomic_is_all_or_none(client, catalog):
    items = [{"asset_id": "BTC", "status": "SUSPENDED"}, {"asset_id": "NOPE", "status": "SUSPENDED"}]
    response = client.post("/inventory/assets/bulk-status", headers=auth("ops"), json={"items": items, "atomic": True})
    results = {r["asset_id"]: r["result"] for r in body(response)["results"]}
    assert results == {"BTC": "not_applied", "NOPE": "not_found"}
    assert client.get("/inventory/assets/BTC").get_json()["data"]["status"] == "ACTIVE"
    items = [{"asset_id": "BTC", "status": "SUSPENDED"}, {"asset_id": "ETH", "status": "INACTIVE"}]
    response = client.post("/inventory/assets/bulk-status", headers=auth("ops"), json={"items": items, "atomic": True})
    assert {r["result"] for r in body(response)["results"]} == {"applied"}
    statuses = [client.get(f"/inventory/assets/{i}").get_json()["data"]["status"] for i in ("BTC", "ETH")]
    assert statuses == ["SUSPENDED", "INACTIVE"]
    assert len(body(client.get("/inventory/assets/ETH/audit", headers=auth("ops")))["data"]) == 1


def test_bulk_status_atomic_holds_at_most_49_items_one_transaction_with_the_counts(client, catalog):
    items = [{"asset_id": f"X{i}", "status": "SUSPENDED"} for i in range(50)]
    response = client.post("/inventory/assets/bulk-status", headers=auth("ops"), json={"items": items, "atomic": True})
    assert response.status_code == 422
    assert "at most 49" in str(body(response)["errors"])
    response = client.post("/inventory/assets/bulk-status", headers=auth("ops"), json={"items": items[:49], "atomic": True})
    assert response.status_code == 200


def test_operator_writes_move_the_counts_at_once(client, catalog):
    def counts():
        data = body(client.get("/inventory/assets?active_only=false&limit=1"))
        return data["total_count"], data["active_count"]

    assert counts() == (3, 2)
    response = patch(client, "SUSPENDED", if_match=etag(client))
    assert response.status_code == 200
    assert counts() == (3, 1)
    items = [{"asset_id": "NEWC", "symbol": "newc", "name": "New coin", "current_price": "2"}]
    response = client.post("/inventory/assets/import", headers=auth("admin"), json={"items": items})
    assert body(response)["results"][0]["result"] == "created"
    assert counts() == (4, 2)


def test_import_is_admin_only_idempotent_and_guards_linked_assets(client, catalog):
    items = [
        {"asset_id": "INTX", "symbol": "intx", "name": "Internal token", "current_price": "1.25", "category": "internal"},
        {"asset_id": "BTC", "symbol": "btc", "name": "Renamed"},
        {"asset_id": "bad id", "symbol": "x", "name": "x"},
    ]
    assert client.post("/inventory/assets/import", headers=auth("ops"), json={"items": items}).status_code == 403
    first = body(client.post("/inventory/assets/import", headers=auth("admin"), json={"items": items}))["results"]
    assert [r["result"] for r in first] == ["created", "refused_linked", "invalid"]
    again = body(client.post("/inventory/assets/import", headers=auth("admin"), json={"items": items}))["results"]
    # INTX has no CoinGecko id: operators price it, so the same price again renews its age.
    assert [r["result"] for r in again] == ["renewed", "refused_linked", "invalid"]
    forced = body(client.post("/inventory/assets/import", headers=auth("admin"),
                              json={"items": items[1:2], "overwrite_linked": True}))["results"]
    assert forced[0]["result"] == "updated"
    intx = body(client.get("/inventory/assets/INTX"))["data"]
    assert intx["current_price"] == Decimal("1.25") and intx["category"] == "internal"
    assert client.get("/inventory/assets/BTC").get_json()["data"]["name"] == "Renamed"


def test_reads_can_require_a_token(config, moto_client, catalog):
    entries = [{"name": "reader", "scopes": ["assets:read"], "hash": hash_token("inv_r")}]
    app = create_app(config.replace(API_TOKENS=json.dumps(entries), REQUIRE_AUTH_FOR_READS=True),
                     dynamodb_client=moto_client)
    client = app.test_client()
    assert client.get("/inventory/assets/BTC").status_code == 401
    assert client.post("/inventory/assets/batch-get", json={"ids": ["BTC"]}).status_code == 401
    assert client.get("/inventory/assets/BTC", headers={"Authorization": "Bearer inv_r"}).status_code == 200
    assert client.get("/health").status_code == 200


def test_create_token_prints_a_working_token(runner, config, moto_client):
    result = runner.invoke(args=["create-token", "ops", "--scope", "assets:write"])
    assert result.exit_code == 0, result.output
    token = result.output.split(": ", 1)[1].split()[0]
    # The printed API_TOKENS value is a list, pasted as it is.
    entries = json.loads(result.output.strip().splitlines()[-1])
    assert token not in json.dumps(entries)
    app = create_app(config.replace(API_TOKENS=json.dumps(entries)), dynamodb_client=moto_client)
    response = app.test_client().patch("/inventory/assets/BTC/status", json={"status": "SUSPENDED"},
                                       headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 428  # authenticated; only If-Match is missing
