"""LoadingCache contracts (fake timer, threads) and the caching the HTTP API shows."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest
import simplejson
from botocore.exceptions import EndpointConnectionError

from inventory import create_app
from inventory.cache import LoadingCache
from inventory.domain import AssetNotFound, StoreError, utcnow
from inventory.extensions import get_service
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
    from inventory.api.responses import ENTRY_OVERHEAD_BYTES, ResponseCache, rendered_bytes
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


def test_write_in_this_process_is_visible_once_forgotten(app, client, store, add_assets):
    add_assets(build_asset("BTC", 1, price="100"), build_asset("ETH", 2, price="50"))
    assert body(client.get("/inventory/assets/BTC"))["data"]["current_price"] == Decimal("100")
    assert [a["current_price"] for a in body(client.get("/inventory/assets"))["data"]] == [100, 50]

    store.update_fields("BTC", {"current_price": Decimal("101.5")}, utcnow())
    # Still within the ttl: the cached value is served (so the next step proves forget works).
    assert body(client.get("/inventory/assets/BTC"))["data"]["current_price"] == Decimal("100")

    with app.app_context():
        get_service().forget("BTC")

    assert body(client.get("/inventory/assets/BTC"))["data"]["current_price"] == Decimal("101.5")
    listed = body(client.get("/inventory/assets"))["data"]
    assert [a["current_price"] for a in listed] == [Decimal("101.5"), 50]


@pytest.fixture
def short_cache_app(config, moto_client):
    cfg = config.replace(CACHE_TTL_SECONDS=0.25, CACHE_STALE_GRACE_SECONDS=1.0)
    app = create_app(cfg, dynamodb_client=moto_client)
    app.config["TESTING"] = True
    return app


def test_outage_serves_stale_detail_with_warning_then_503(short_cache_app, moto_client, add_assets):
    add_assets(build_asset("BTC", 1, price="100", name="Bitcoin"))
    client = short_cache_app.test_client()
    outage = Outage(moto_client)
    assert client.get("/inventory/assets/BTC").status_code == 200
    loaded = time.monotonic()

    # GIVEN the store goes down after the value was cached
    outage.on = True
    # WHEN the ttl has passed but not the grace period
    time.sleep(0.5)
    response = client.get("/inventory/assets/BTC")
    # THEN the cached detail is served, marked stale
    assert response.status_code == 200
    assert response.headers["Warning"].startswith("110 ")
    assert body(response)["data"]["name"] == "Bitcoin"
    assert time.monotonic() - loaded < 1.0, "too slow to test inside the grace period"

    # WHEN the grace period has passed too
    time.sleep(max(0.0, loaded + 1.0 + 0.35 - time.monotonic()))
    response = client.get("/inventory/assets/BTC", headers={"X-Request-ID": "outage-1"})
    # THEN the failure reaches the caller as a plain 503
    assert response.status_code == 503
    payload = body(response)
    assert set(payload) == {"code", "status", "error", "message", "request_id"}
    assert (payload["code"], payload["status"], payload["request_id"]) == (
        503, "Service Unavailable", "outage-1",
    )
    assert "Warning" not in response.headers
    text = response.get_data(as_text=True)
    for leak in ("botocore", "Endpoint", "Traceback"):
        assert leak not in text


def test_outage_with_nothing_cached_is_503(short_cache_app, moto_client, add_assets):
    add_assets(build_asset("BTC", 1, price="100"))
    Outage(moto_client).on = True
    response = short_cache_app.test_client().get("/inventory/assets/BTC")
    assert response.status_code == 503
    assert body(response)["code"] == 503


def test_refresh_ahead_serves_the_old_value_while_one_thread_reloads():
    from inventory.cache import LoadingCache

    now = [0.0]
    cache = LoadingCache("snapshot", 1, ttl=10, grace=30, timer=lambda: now[0], refresh_ahead=True)
    assert cache.get("k", lambda: "v1").value == "v1"
    release, calls = threading.Event(), []

    def slow_reload():
        calls.append(1)
        assert release.wait(5)
        return "v2"

    now[0] = 11  # expired: the next gets must not wait for the reload
    assert cache.get("k", slow_reload).value == "v1"
    assert cache.get("k", slow_reload).value == "v1"
    release.set()
    deadline = time.monotonic() + 5
    while cache.get("k", slow_reload).value != "v2":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert len(calls) == 1


def test_refresh_ahead_stands_in_however_long_the_value_sat_unused():
    from inventory.cache import LoadingCache

    now = [0.0]
    cache = LoadingCache("snapshot", 1, ttl=10, grace=30, timer=lambda: now[0], refresh_ahead=True)
    assert cache.get("k", lambda: "v1").value == "v1"
    release = threading.Event()

    def slow_reload():
        assert release.wait(5)
        return "v2"

    # GIVEN a snapshot nobody asked for during ten ttls
    now[0] = 100
    # WHEN a request comes THEN it is answered from the old snapshot at once, not after a load
    started = time.monotonic()
    assert cache.get("k", slow_reload).value == "v1"
    assert time.monotonic() - started < 1
    release.set()


# -- generations ----------------------------------------------------------------

def test_an_entry_of_an_older_generation_is_a_miss_within_the_ttl(timer):
    from inventory.generation import LocalGeneration

    generation = LocalGeneration()
    cache = LoadingCache("test", 10, ttl=TTL, grace=GRACE, timer=timer, generation=generation)
    loader = CountingLoader("v1", "v2")
    assert cache.get("k", loader).value == "v1"
    assert cache.get("k", loader).value == "v1"
    generation.advance(1)
    assert cache.get("k", loader).value == "v2"
    assert cache.get("k", loader).value == "v2" and loader.calls == 2


def test_refresh_ahead_never_stands_in_with_an_older_generation():
    from inventory.generation import LocalGeneration

    generation = LocalGeneration()
    cache = LoadingCache("snapshot", 1, ttl=10, grace=30, timer=lambda: 0.0, refresh_ahead=True,
                         generation=generation)
    assert cache.get("k", lambda: "old").value == "old"
    generation.advance(5)
    # A new generation is waited for, not served from the old snapshot.
    assert cache.get("k", lambda: "new").value == "new"


def test_a_generation_published_during_a_load_makes_it_load_again(timer):
    from inventory.generation import LocalGeneration

    generation = LocalGeneration()
    cache = LoadingCache("test", 10, ttl=TTL, timer=timer, generation=generation)
    values = iter(["read before the change", "read after it"])

    def loader():
        value = next(values)
        generation.step()  # another worker publishes mid-load, once
        return value

    assert cache.get("k", loader).value == "read after it"


def test_a_stored_generation_bump_reaches_a_worker_through_its_poll(app, client, store, moto_client, config,
                                                                   add_assets):
    # GIVEN a worker that cached BTC
    from inventory.generation import GenerationPoller
    from inventory.store import GenerationStore

    add_assets(build_asset("BTC", 1, price="100"))
    assert body(client.get("/inventory/assets/BTC"))["data"]["current_price"] == Decimal("100")
    # WHEN another process (a refresh, a write on another instance) changes it and bumps the generation
    store.update_fields("BTC", {"current_price": Decimal("101")}, utcnow())
    assert body(client.get("/inventory/assets/BTC"))["data"]["current_price"] == Decimal("100")
    GenerationStore(moto_client, config.DYNAMODB_TABLE_NAME).bump()
    with app.app_context():
        poller = GenerationPoller(get_service().generation,
                                  GenerationStore(moto_client, config.DYNAMODB_TABLE_NAME).read, 0.5)
    poller.poll_once()
    # THEN the next read serves the new price, within the ttl
    assert body(client.get("/inventory/assets/BTC"))["data"]["current_price"] == Decimal("101")


def test_operator_write_bumps_the_stored_generation(app, client, store, moto_client, config, add_assets):
    from inventory.store import GenerationStore

    add_assets(build_asset("BTC", 1, price="100"))
    before = GenerationStore(moto_client, config.DYNAMODB_TABLE_NAME).read()
    with app.app_context():
        get_service().after_write(["BTC"])
        assert get_service().generation.current() == before + 1
    assert GenerationStore(moto_client, config.DYNAMODB_TABLE_NAME).read() == before + 1


def test_a_reload_that_finds_changed_data_steps_that_keys_counter(timer):
    # GIVEN two workers' caches on one shared generation, both holding v1
    from inventory.generation import LocalGeneration

    generation = LocalGeneration()
    worker_a = LoadingCache("asset", 10, ttl=TTL, timer=timer, generation=generation, changed=lambda o, n: o != n)
    worker_b = LoadingCache("asset", 10, ttl=TTL, timer=timer, generation=generation, changed=lambda o, n: o != n)
    assert worker_a.get("k", lambda: "v1").value == "v1"
    timer.now += 1
    assert worker_b.get("k", lambda: "v1").value == "v1"
    # WHEN A's entry expires (B's not yet) and its reload finds v2 (written, not yet announced)
    timer.now += TTL - 1
    assert worker_a.get("k", lambda: "v2").value == "v2"
    # THEN B does not serve v1 after A served v2
    assert worker_b.get("k", lambda: "v2").value == "v2"
    assert generation.key(hash(("asset", "k"))) >= 1 and generation.current() == 0


def test_a_reload_that_finds_the_same_data_keeps_the_keys_counter(timer):
    from inventory.generation import LocalGeneration

    generation = LocalGeneration()
    cache = LoadingCache("a", 10, ttl=TTL, timer=timer, generation=generation, changed=lambda o, n: o != n)
    cache.get("k", lambda: "v1")
    first = generation.key(hash(("a", "k")))
    timer.now += TTL
    assert cache.get("k", lambda: "v1").value == "v1"
    assert generation.key(hash(("a", "k"))) == first


def test_a_first_load_drops_other_workers_copies_of_the_key(timer):
    # GIVEN worker A holding v1, and worker B that never loaded the key
    from inventory.generation import LocalGeneration

    generation = LocalGeneration()
    worker_a = LoadingCache("asset", 10, ttl=TTL, timer=timer, generation=generation, changed=lambda o, n: o != n)
    worker_b = LoadingCache("asset", 10, ttl=TTL, timer=timer, generation=generation, changed=lambda o, n: o != n)
    assert worker_a.get("k", lambda: "v1").value == "v1"
    # WHEN B's first load finds v2 (written by a refresh that has not bumped yet)
    assert worker_b.get("k", lambda: "v2").value == "v2"
    # THEN A does not serve v1 after B served v2
    assert worker_a.get("k", lambda: "v2").value == "v2"


def test_a_write_while_the_generation_cannot_be_stored_still_drops_this_process_cache(
    app, client, store, moto_client, add_assets
):
    add_assets(build_asset("BTC", 1, price="100"))
    assert body(client.get("/inventory/assets/BTC"))["data"]["current_price"] == Decimal("100")
    outage = Outage(moto_client)
    store.update_fields("BTC", {"current_price": Decimal("102")}, utcnow())
    with app.app_context():
        outage.on = True
        get_service().forget("BTC")  # the bump fails: logged, stepped locally
        outage.on = False
    assert body(client.get("/inventory/assets/BTC"))["data"]["current_price"] == Decimal("102")
    with app.app_context():
        store.update_fields("BTC", {"current_price": Decimal("103")}, utcnow())
        get_service().forget("BTC")  # the stored bump reaches only what the local step already did
    assert body(client.get("/inventory/assets/BTC"))["data"]["current_price"] == Decimal("103")
