"""/docs can write (bearer scheme, If-Match, a typed import body), and every error carries a stable `error` code."""

from __future__ import annotations

import json

import pytest

from inventory import create_app
from inventory.config import Config
from tests.conftest import ADMIN, build_asset


@pytest.fixture(scope="module")
def spec() -> dict:
    return json.loads(create_app(Config()).test_client().get("/openapi.json").data)


def test_openapi_declares_a_bearer_scheme_that_every_write_uses(spec):
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": spec["components"]["securitySchemes"]["bearerAuth"]["description"]
    }
    paths = spec["paths"]
    for path, method in [("/inventory/assets/{asset_id}/status", "patch"), ("/inventory/assets/bulk-status", "post"),
                         ("/inventory/assets/import", "post"), ("/inventory/assets/{asset_id}/audit", "get")]:
        assert paths[path][method]["security"] == [{"bearerAuth": []}], (path, method)
    assert "security" not in paths["/inventory/assets"]["get"]


def test_patch_documents_a_required_if_match_header(spec):
    (if_match,) = [p for p in spec["paths"]["/inventory/assets/{asset_id}/status"]["patch"]["parameters"]
                   if p["in"] == "header"]
    assert if_match["name"] == "If-Match" and if_match["required"] is True
    assert if_match["example"].startswith('"v')


def test_import_body_is_typed_with_a_realistic_example(spec):
    body = spec["paths"]["/inventory/assets/import"]["post"]["requestBody"]["content"]["application/json"]
    schema = spec["components"]["schemas"][body["schema"]["$ref"].rsplit("/", 1)[1]]
    item_ref = schema["properties"]["items"]["items"]["$ref"]
    item = spec["components"]["schemas"][item_ref.rsplit("/", 1)[1]]
    assert {"asset_id", "symbol", "name", "current_price"} <= set(item["properties"])
    (example,) = body["example"]["items"]
    assert example["asset_id"] == "ACME" and "additionalProp1" not in json.dumps(body)
    assert set(example) <= set(item["properties"])


def test_error_schema_documents_the_error_code(spec):
    error = spec["components"]["schemas"]["Error"]["properties"]["error"]
    assert "asset_not_found" in error["description"] and "store_unavailable" in error["description"]


# -- error codes ----------------------------------------------------------------------------

def test_unknown_asset_is_asset_not_found(client):
    assert client.get("/inventory/assets/NOPE").get_json()["error"] == "asset_not_found"


def test_validation_error_names_the_field_in_the_top_level_message(client):
    payload = client.get("/inventory/assets?limit=0").get_json()

    assert payload["error"] == "validation_failed"
    assert payload["message"].startswith("Invalid request: query.limit: Must be greater than or equal to 1")


@pytest.fixture
def btc(add_assets):
    add_assets(build_asset("BTC", 1, price="97000.5"))


def patch(client, **headers):
    return client.patch("/inventory/assets/BTC/status", json={"status": "SUSPENDED", "reason": "test"},
                        headers={**ADMIN, **headers})


def test_patch_without_if_match_is_precondition_required(client, btc):
    response = patch(client)
    assert (response.status_code, response.get_json()["error"]) == (428, "precondition_required")


def test_if_match_star_is_refused_by_name(client, btc):
    response = patch(client, **{"If-Match": "*"})

    payload = response.get_json()
    assert (response.status_code, payload["error"]) == (428, "precondition_required")
    assert payload["message"].startswith("If-Match: * is not accepted")


def test_a_stale_etag_is_precondition_failed(client, btc):
    etag = client.get("/inventory/assets/BTC").headers["ETag"]
    assert patch(client, **{"If-Match": etag}).status_code == 200

    response = patch(client, **{"If-Match": etag})

    assert (response.status_code, response.get_json()["error"]) == (412, "precondition_failed")


def test_a_store_outage_is_503_store_unavailable_with_retry_after(config, moto_client):
    app = create_app(config.replace(DYNAMODB_TABLE_NAME="gone"), dynamodb_client=moto_client)

    response = app.test_client().get("/inventory/assets/BTC")

    assert response.status_code == 503
    assert response.get_json()["error"] == "store_unavailable"
    assert int(response.headers["Retry-After"]) > 0


def test_rate_limited_is_rate_limited(config, moto_client, add_assets):
    app = create_app(config.replace(RATE_LIMIT_READS="1/minute"), dynamodb_client=moto_client)
    client = app.test_client()

    responses = [client.get("/inventory/assets", headers=ADMIN) for _ in range(3)]

    assert responses[-1].status_code == 429
    assert responses[-1].get_json()["error"] == "rate_limited"


def test_an_empty_if_match_tag_is_precondition_required_not_a_crash(client, btc):
    # Found by the OpenAPI fuzzer once If-Match was documented.
    response = patch(client, **{"If-Match": '""'})
    assert (response.status_code, response.get_json()["error"]) == (428, "precondition_required")
