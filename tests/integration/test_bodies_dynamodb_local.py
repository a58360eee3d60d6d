"""Asset bodies over DynamoDB Local, which normalises numbers: every endpoint writes the same digits."""

from __future__ import annotations

from decimal import Decimal

import pytest

from inventory import create_app
from inventory.store import make_client
from tests.conftest import ADMIN, build_asset

pytestmark = pytest.mark.integration


@pytest.fixture
def local_client(local_config, local_store):
    app = create_app(local_config, dynamodb_client=make_client(local_config))
    app.config["TESTING"] = True
    return app.test_client()


@pytest.mark.parametrize(
    "field, stored, written",
    [
        ("current_price", "388.35561730", "388.3556173"),  # the source's trailing zero
        ("current_price", "0.0000002584652", "0.0000002584652"),  # str() would give 2.584652E-7
        ("total_supply", "12345678901234567890123456789012345678", "12345678901234567890123456789012345678"),
        ("market_cap", "1.5E+12", "1500000000000"),
    ],
)
def test_get_list_batch_get_and_patch_write_the_same_digits(local_client, local_store, field, stored, written):
    asset = build_asset("DEC", 1, price="1", category="layer-1").replace(**{field: Decimal(stored)})
    assert local_store.create(asset)
    detail = local_client.get("/inventory/assets/DEC")
    patched = local_client.patch(
        "/inventory/assets/DEC/status",
        json={"status": "SUSPENDED"},
        headers={**ADMIN, "If-Match": detail.headers["ETag"]},
    )
    responses = {
        "GET": detail,
        "list": local_client.get("/inventory/assets?active_only=false"),
        "search": local_client.get("/inventory/assets/search?q=dec"),
        "batch-get": local_client.post("/inventory/assets/batch-get", json={"ids": ["DEC"]}),
        "PATCH": patched,
    }
    for endpoint, response in responses.items():
        text = response.get_data(as_text=True)
        assert response.status_code == 200, (endpoint, text)
        assert f'"{field}":{written},' in text, (endpoint, text)
