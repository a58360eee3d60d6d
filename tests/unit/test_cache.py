"""LoadingCache contracts (fake timer, threads) and the caching the HTTP API shows."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest
import simplejson
from botocore.exceptions import EndpointConnectionError

from inventory.domain import AssetNotFound, StoreError, utcnow
from inventory.services.cache import LoadingCache
from tests.conftest import build_asset

TTL, GRACE = 10.0, 30.0


class FakeTimer:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingLoader:
    """A loader returning the next of `values` (the last one repeats), counting its calls."""

    def __init__(self, *values):
        self.values = list(values)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        value = self.values[min(self.calls, len(self.values)) - 1]
        if isinstance(value, BaseException):
            raise value
        return value


@pytest.fixture
def timer():
    return FakeTimer()


@pytest.fixture
def cache(timer):
    return LoadingCache("test", maxsize=100, ttl=TTL, grace=GRACE, timer=timer)


def test_get_within_ttl_is_a_hit_and_after_ttl_reloads(cache, timer):
    loader = CountingLoader("v1", "v2")
    assert cache.get("k", loader).value == "v1"
    timer.now += TTL - 0.5
    assert cache.get("k", loader).value == "v1"
    assert loader.calls == 1

    timer.now += 1
    fresh = cache.get("k", loader)
    assert (fresh.value, fresh.stale, loader.calls) == ("v2", False, 2)
    # The reload starts a new ttl.
    timer.now += TTL - 0.5
    assert cache.get("k", loader).value == "v2" and loader.calls == 2


def test_keys_are_cached_separately(cache):
    assert cache.get("a", CountingLoader("A")).value == "A"
    assert cache.get("b", CountingLoader("B")).value == "B"
    assert cache.get("a", CountingLoader("other")).value == "A"


def test_invalidate_makes_the_next_get_reload_at_once(cache):
    loader = CountingLoader("old", "new")
    cache.get("k", loader)
    cache.get("other", CountingLoader("x"))
    cache.invalidate("k")
    assert cache.get("k", loader).value == "new" and loader.calls == 2
    # Only the invalidated key was dropped.
    assert cache.get("other", CountingLoader("y")).value == "x"


def test_clear_makes_every_key_reload(cache):
    cache.get("a", CountingLoader("a1"))
    cache.get("b", CountingLoader("b1"))
    cache.clear()
    assert cache.get("a", CountingLoader("a2")).value == "a2"
    assert cache.get("b", CountingLoader("b2")).value == "b2"


def test_invalidate_during_a_load_is_not_undone_by_that_load(cache):
    # GIVEN a load that read the store before a write and is still in progress
    read_done, release = threading.Event(), threading.Event()

    def slow_old_read():
        read_done.set()
        assert release.wait(5)
        return "before-write"

    results = []
    loader_thread = threading.Thread(target=lambda: results.append(cache.get("k", slow_old_read)))
    loader_thread.start()
    assert read_done.wait(5)

    # WHEN this process writes and drops the key, and then the old read finishes
    cache.invalidate("k")
    release.set()
    loader_thread.join(5)
    assert results[0].value == "before-write"

    # THEN the next get reads the store again instead of serving the pre-write value
    assert cache.get("k", CountingLoader("after-write")).value == "after-write"


def test_concurrent_misses_share_one_load(timer):
    threads_n = 8
    release = threading.Event()
    misses = []
    cache = LoadingCache("test", maxsize=10, ttl=TTL, timer=timer,
                         on_lookup=lambda name, hit: misses.append(hit))
    calls = []

    def loader():
        calls.append(threading.get_ident())
        assert release.wait(5), "never released"
        return "value"

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("k", loader)))
               for _ in range(threads_n)]
    for thread in threads:
        thread.start()
    # Release the loader only once every thread has missed and is loading or waiting.
    deadline = time.monotonic() + 5
    while len(misses) < threads_n and time.monotonic() < deadline:
        time.sleep(0.005)
    assert len(misses) == threads_n
    release.set()
    for thread in threads:
        thread.join(5)

    assert len(calls) == 1
    assert [r.value for r in results] == ["value"] * threads_n


def test_concurrent_misses_all_see_the_load_failure(timer):
    release = threading.Event()
    misses = []
    cache = LoadingCache("test", maxsize=10, ttl=TTL, timer=timer,
                         on_lookup=lambda name, hit: misses.append(hit))
    calls = []

    def loader():
        calls.append(1)
        release.wait(5)
        raise StoreError()

    errors = []

    def get():
        try:
            cache.get("k", loader)
        except StoreError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=get) for _ in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while len(misses) < 4 and time.monotonic() < deadline:
        time.sleep(0.005)
    release.set()
    for thread in threads:
        thread.join(5)
    assert len(calls) == 1 and len(errors) == 4


def test_store_error_serves_stale_value_within_grace_then_raises(cache, timer):
    loader = CountingLoader("v1", StoreError())
    cache.get("k", loader)

    timer.now += TTL + 1
    stale = cache.get("k", loader)
    assert (stale.value, stale.stale) == ("v1", True)
    timer.now = 1000.0 + TTL + GRACE - 1
    assert cache.get("k", loader) == stale
    assert loader.calls == 3  # every get past the ttl tries the store again

    timer.now = 1000.0 + TTL + GRACE + 1
    with pytest.raises(StoreError):
        cache.get("k", loader)


def test_store_recovering_within_grace_serves_fresh_again(cache, timer):
    loader = CountingLoader("v1", StoreError(), "v2")
    cache.get("k", loader)
    timer.now += TTL + 1
    assert cache.get("k", loader).stale
    fresh = cache.get("k", loader)
    assert (fresh.value, fresh.stale) == ("v2", False)
    # A successful reload is cached again for a full ttl.
    timer.now += TTL - 1
    assert cache.get("k", loader).value == "v2" and loader.calls == 3


def test_store_error_without_a_cached_value_is_raised(cache):
    with pytest.raises(StoreError):
        cache.get("k", CountingLoader(StoreError()))


@pytest.mark.parametrize("error", [AssetNotFound("gone"), ValueError("bug"), KeyError("k")])
def test_other_errors_are_never_masked_by_a_stale_value(cache, timer, error):
    loader = CountingLoader("v1", error)
    cache.get("k", loader)
    timer.now += TTL + 1
    with pytest.raises(type(error)):
        cache.get("k", loader)


def test_size_is_bounded_by_maxsize(timer):
    lookups = []
    cache = LoadingCache("test", maxsize=3, ttl=TTL, timer=timer,
                         on_lookup=lambda name, hit: lookups.append(hit))
    for key in range(50):
        cache.get(key, CountingLoader(key))
    lookups.clear()

    # Most recent first: each miss reloads and evicts a key already checked.
    for key in reversed(range(50)):
        assert cache.get(key, CountingLoader(key)).value == key
    assert lookups.count(True) == 3
    assert lookups[:3] == [True, True, True]


def test_least_recently_used_key_is_evicted_first(timer):
    cache = LoadingCache("test", maxsize=3, ttl=TTL, timer=timer)
    for key in ("a", "b", "c"):
        cache.get(key, CountingLoader(key))
    cache.get("a", CountingLoader("reloaded"))  # touch a: b is now the oldest
    cache.get("d", CountingLoader("d"))
    assert cache.get("a", CountingLoader("reloaded")).value == "a"
    assert cache.get("b", CountingLoader("reloaded")).value == "reloaded"


def test_sizeof_bounds_the_sum_of_sizes_and_a_value_above_the_bound_is_served_not_kept(timer):
    cache = LoadingCache("test", maxsize=10, ttl=TTL, timer=timer, sizeof=len)
    for key in ("a", "b", "c"):
        cache.get(key, CountingLoader(key * 4))  # 4 + 4 + 4 > 10: "a" goes
    assert cache.get("a", CountingLoader("AAAA")).value == "AAAA"  # reloaded; "b" goes
    assert len(cache) == 2
    huge = CountingLoader("x" * 11)
    assert cache.get("huge", huge).value == "x" * 11
    assert cache.get("huge", huge).value == "x" * 11 and huge.calls == 2  # never kept
    assert cache.get("c", CountingLoader("reloaded")).value == "cccc"  # and it evicted nothing


def test_response_caches_are_bounded_by_body_bytes_and_by_entry_count():
    from inventory.api.responses import (
        ENTRY_OVERHEAD_BYTES,
        ResponseCache,
        rendered_bytes,
    )
    from inventory.config import Config

    config = Config(CACHE_MAX_PAGES=100, CACHE_MAX_PAGE_BYTES=100 * 1000, CACHE_MAX_ASSETS=1000,
                    CACHE_MAX_ASSET_BYTES=10**9)
    responses = ResponseCache(config, None)
    for page in range(20):
        responses.get("list", page, lambda: rendered_bytes(b"x" * (20_000 - ENTRY_OVERHEAD_BYTES)))
    assert len(responses.caches["list"]) == 5  # 100 kB of 20 kB entries
    for key in range(1200):
        responses.get("asset", key, lambda: rendered_bytes(b"{}"))
    assert len(responses.caches["asset"]) == 1000  # small bodies: the entry count binds


# -- through the HTTP API ------------------------------------------------------


def body(response):
    return simplejson.loads(response.get_data(), use_decimal=True)


class Outage:
    """Makes every DynamoDB call on one client fail as if the endpoint were unreachable."""

    def __init__(self, client):
        self.on = False
        client.meta.events.register("before-call.dynamodb", self._fail)

    def _fail(self, **_):
        if self.on:
            raise EndpointConnectionError(endpoint_url="x")


def test_a_store_write_reaches_the_next_read_through_the_feed(app, client, store, add_assets):
    # GIVEN cached detail and list bodies
    add_assets(build_asset("BTC", 1, price="100"), build_asset("ETH", 2, price="50"))
    assert body(client.get("/inventory/assets/BTC"))["data"]["current_price"] == Decimal("100")
    assert [a["current_price"] for a in body(client.get("/inventory/assets"))["data"]] == [100, 50]

    # WHEN the store changes (its feed entry in the same transaction), well within the ttl
    store.update_fields("BTC", {"current_price": Decimal("101.5")}, utcnow())

    # THEN the next reads answer the new state: bodies are keyed by the version they render
    assert body(client.get("/inventory/assets/BTC"))["data"]["current_price"] == Decimal("101.5")
    listed = body(client.get("/inventory/assets"))["data"]
    assert [a["current_price"] for a in listed] == [Decimal("101.5"), 50]


def test_outage_serves_reads_from_the_model_marked_stale(app, client, moto_client, add_assets):
    add_assets(build_asset("BTC", 1, price="100", name="Bitcoin"))
    outage = Outage(moto_client)
    assert client.get("/inventory/assets/BTC").status_code == 200

    # GIVEN the store goes down after the model loaded
    outage.on = True
    # WHEN reads come, past every cache ttl
    started = time.monotonic()
    detail = client.get("/inventory/assets/BTC")
    listed = client.get("/inventory/assets?active_only=false")
    # THEN they are answered from memory at once, marked stale: the model cannot tell it is current
    assert time.monotonic() - started < 1
    assert detail.status_code == listed.status_code == 200
    assert body(detail)["data"]["name"] == "Bitcoin"
    assert [a["asset_id"] for a in body(listed)["data"]] == ["BTC"]
    assert listed.headers["Warning"].startswith("110 ")

    # WHEN the store answers again THEN so does the model, not stale
    outage.on = False
    assert "Warning" not in client.get("/inventory/assets?active_only=false").headers


def test_outage_before_the_first_load_is_a_plain_503(app, client, moto_client, add_assets):
    add_assets(build_asset("BTC", 1, price="100"))
    Outage(moto_client).on = True
    response = client.get("/inventory/assets/BTC", headers={"X-Request-ID": "outage-1"})
    assert response.status_code == 503
    payload = body(response)
    assert set(payload) == {"code", "status", "error", "message", "request_id"}
    assert (payload["code"], payload["status"], payload["request_id"]) == (503, "Service Unavailable", "outage-1")
    assert response.headers["Retry-After"].isdigit()
    text = response.get_data(as_text=True)
    for leak in ("botocore", "Endpoint", "Traceback"):
        assert leak not in text


def test_a_cached_detail_turns_stale_the_moment_its_price_does(app, client, add_assets, config):
    # GIVEN a cached detail whose price turns stale in a second (bodies are kept far longer than that)
    add_assets(build_asset("BTC", 1, price="100", age_seconds=config.PRICE_MAX_AGE_SECONDS - 1))
    first = body(client.get("/inventory/assets/BTC"))["data"]
    assert (first["is_active"], first["price_stale"]) == (True, False)
    time.sleep(1.5)
    # THEN the next read says so: the clock-dependent fields are part of the body's key
    later = body(client.get("/inventory/assets/BTC"))["data"]
    assert (later["is_active"], later["price_stale"]) == (False, True)
