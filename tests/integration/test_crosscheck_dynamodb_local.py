"""Cross-checked prices over DynamoDB Local: the check's Map attribute, its conditional writes, the
band's transaction and the stand-in price, as the real store takes them (moto is lenient where it is not)."""

from __future__ import annotations

import pytest

from inventory import create_app
from inventory.domain.pricecheck import CheckStatus
from inventory.store import make_client
from tests.conftest import ADMIN
from tests.unit.test_crosscheck import KEY, World, _row, exact_bps, fakes  # noqa: F401 - fakes is a fixture

pytestmark = pytest.mark.integration


@pytest.fixture
def world(fakes, local_config, local_store):  # noqa: F811
    config = local_config.replace(QUOTE_SIGNING_KEY=KEY, HEALTH_TOP_ASSETS="BTC,ETH")
    dynamodb = make_client(config)
    app = create_app(config, dynamodb_client=dynamodb)
    app.config["TESTING"] = True
    return World(fakes, dynamodb, config, app.test_client())


def test_a_whole_cycle_on_dynamodb_local(world):
    assert world.refresh().ok
    report = world.check()
    assert report.ok and report.rejected == 0 and report.counts["ok"] >= 20
    btc = world.asset("BTC")
    primary, secondary = btc["price_check"]["sources"]
    assert btc["price_check"]["divergence_bps"] == exact_bps(primary["price"], secondary["price"])

    # diverged, refused, then an operator's band (one transaction: asset, audit, feed entry)
    world.bn.skew("ethereum", 250)
    world.check()
    assert world.quote("ETH").status_code == 409
    etag = world.client.get("/inventory/assets/ETH").headers["ETag"]
    banded = world.client.put("/inventory/assets/ETH/price-band", json={"band_bps": 400, "reason": "test"},
                              headers={**ADMIN, "If-Match": etag})
    assert banded.status_code == 200 and banded.get_json()["data"]["price_check"]["status"] == "ok"
    stale_etag = world.client.put("/inventory/assets/ETH/price-band", json={"band_bps": None},
                                  headers={**ADMIN, "If-Match": etag})
    assert stale_etag.status_code == 412
    back = world.client.put("/inventory/assets/ETH/price-band", json={"band_bps": None},
                            headers={**ADMIN, "If-Match": banded.headers["ETag"]})
    assert back.status_code == 200 and back.get_json()["data"]["price_check"]["status"] == "diverged"
    world.bn.skew("ethereum", 0)

    # CoinGecko down: the exchange stands in, then CoinGecko takes over again
    world.cg.set_fault("429")
    assert not world.refresh().ok
    assert world.check().stood_in >= 20
    assert world.asset("BTC")["price_source"] == "binance"
    assert world.quote("BTC").status_code == 200
    world.cg.set_fault(None)
    assert world.refresh().ok
    btc = world.asset("BTC")
    assert btc["price_source"] == "coingecko" and btc["current_price"] == _row(world.cg, "bitcoin")["current_price"]

    # a pair lost: the attribute is removed, the asset is single_source
    world.stores.crosschecks.put_pairs("binance", {}, world.clock())
    world.check()
    assets = list(world.stores.assets.iter_all())
    assert all(a.price_check is None for a in assets)
    assert world.asset("BTC")["price_check"]["status"] == CheckStatus.SINGLE_SOURCE.value
