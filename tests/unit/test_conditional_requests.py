"""ETags and 304s on cached responses; one store read per key under concurrent misses."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from inventory.api.extension import services
from inventory.domain import AssetStatus, utcnow
from tests.conftest import build_asset

URLS = ["/inventory/assets/BTC", "/inventory/assets?limit=5", "/inventory/assets/search?q=b"]


@pytest.fixture
def catalog(add_assets):
    return add_assets(build_asset("BTC", 1, price="97000"), build_asset("BNB", 2, price="600"))


@pytest.mark.parametrize("url", URLS)
def test_matching_if_none_match_answers_304_without_body(client, catalog, url):
    first = client.get(url)
    etag = first.headers["ETag"]
    assert first.status_code == 200 and etag
    assert first.headers["Cache-Control"] == "no-cache"
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.get_data() == b""
    assert again.headers["ETag"] == etag
    assert client.get(url, headers={"If-None-Match": '"something-else"'}).status_code == 200


@pytest.mark.parametrize("change", [{"current_price": Decimal("98000.5")}, {"status": AssetStatus.SUSPENDED}])
@pytest.mark.parametrize("url", URLS)
def test_etag_changes_when_price_or_status_changes(app, client, store, catalog, url, change):
    before = client.get(url).headers["ETag"]
    store.update_fields("BTC", change, utcnow())
    after = client.get(url, headers={"If-None-Match": before})
    assert after.status_code == 200
    assert after.headers["ETag"] != before


def test_unchanged_representation_keeps_its_etag_across_cache_fills(app, client, catalog):
    before = client.get("/inventory/assets/BTC").headers["ETag"]
    with app.app_context():
        services().responses.caches["asset"].clear()
    assert client.get("/inventory/assets/BTC").headers["ETag"] == before


def test_concurrent_first_requests_load_the_catalog_once(app, catalog, moto_client):
    reads = []
    moto_client.meta.events.register(
        "before-parameter-build.dynamodb.Query",
        lambda params, **_: reads.append(1) if params.get("IndexName") == "by_rank" else None,
    )
    barrier = threading.Barrier(8)
    statuses = []

    def fetch():
        client = app.test_client()
        barrier.wait()
        statuses.append(client.get("/inventory/assets/BTC").status_code)

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 8
    assert len(reads) == 1


def test_cache_hits_and_misses_are_counted_in_metrics(client, catalog):
    client.get("/inventory/assets/BTC")
    client.get("/inventory/assets/BTC")
    client.get("/inventory/assets/BTC")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'inventory_cache_lookups_total{cache="asset",result="miss"} 1.0' in text
    assert 'inventory_cache_lookups_total{cache="asset",result="hit"} 2.0' in text


def test_dynamodb_calls_are_counted_by_operation_and_outcome(client, catalog, store):
    client.get("/inventory/assets/BTC")
    client.get("/inventory/assets/NOPE")
    text = client.get("/metrics").get_data(as_text=True)
    counts = {
        line.split("{")[1].split("}")[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("inventory_dynamodb_requests_total{")
    }
    # The cold load: the feed head (one GetItem) and the catalog; then one feed poll per read
    # (STREAM_POLL_SECONDS=0 here). Detail reads themselves make none.
    assert counts['operation="GetItem",outcome="ok"'] == 1
    assert 'inventory_dynamodb_request_duration_seconds_count{operation="GetItem"} 1.0' in text
    assert counts['operation="Query",outcome="ok"'] >= 3
    assert '"/inventory/assets/BTC"' not in text and '"/inventory/assets/NOPE"' not in text
