"""The refresher process's loop: it refreshes at once, and stops (handing the lease back) when asked or orphaned."""

from __future__ import annotations

import time

from inventory.jobs.scheduler import run_until_stopped
from inventory.store.lease import LeaseStore
from tests.fakes.coingecko import FakeCoinGecko, generate_catalog


def _stop_after(calls: int, cg: FakeCoinGecko):
    """Say "stop" on the call after `calls`, each call only once the first refresh has asked for prices."""
    asked = []

    def stop_requested(timeout: float) -> bool:
        deadline = time.monotonic() + 10
        while not cg.count() and time.monotonic() < deadline:
            time.sleep(0.05)
        asked.append(timeout)
        return len(asked) > calls

    return stop_requested, asked


def test_refreshes_at_once_then_stops_when_asked_and_releases_the_lease(moto_client, config, store):
    leases = LeaseStore(moto_client, config.DYNAMODB_TABLE_NAME)
    with FakeCoinGecko(generate_catalog(20)) as cg:
        stop_requested, asked = _stop_after(2, cg)
        run_until_stopped(config.replace(COINGECKO_API_URL=cg.url, COINGECKO_CALLS_PER_MINUTE=0, INSTANCE_ID="me"),
                          stop_requested)
    assert len(asked) == 3
    assert len(list(store.iter_all())) > 10  # the first refresh ran at start-up, and was waited for
    lease = leases.current()
    assert lease.owner == "me" and lease.expires_ms <= int(time.time() * 1000)


def test_an_orphaned_refresher_stops_by_itself(moto_client, config):
    leases = LeaseStore(moto_client, config.DYNAMODB_TABLE_NAME)
    with FakeCoinGecko(generate_catalog(5)) as cg:
        stop_requested, asked = _stop_after(1000, cg)
        # A parent pid that is not ours: the master that spawned us is gone.
        run_until_stopped(config.replace(COINGECKO_API_URL=cg.url, COINGECKO_CALLS_PER_MINUTE=0, INSTANCE_ID="me"),
                          stop_requested, parent_pid=-1)
    assert len(asked) == 1
    assert leases.current().expires_ms <= int(time.time() * 1000)


def test_the_lease_holder_also_runs_the_category_job(moto_client, config, store, monkeypatch):
    from inventory.jobs import categories as category_job

    # Checked every second from a second after start: once the first price refresh
    # has taken the lease, the first check runs the job, and the later ones find it done.
    monkeypatch.setattr(category_job, "FIRST_CHECK_DELAY_SECONDS", 1)
    monkeypatch.setattr(category_job, "CHECK_SECONDS", 1)
    with FakeCoinGecko(generate_catalog(20)) as cg:
        def stop_requested(timeout: float) -> bool:
            deadline = time.monotonic() + 20
            while not (store_has_categories() or time.monotonic() > deadline):
                time.sleep(0.1)
            time.sleep(2)  # room for a second check, which must not run the job again
            return True

        def store_has_categories() -> bool:
            return any(a.categories == ("layer-1",) and a.coingecko_id == "bitcoin" for a in store.iter_all())

        run_until_stopped(config.replace(COINGECKO_API_URL=cg.url, COINGECKO_CALLS_PER_MINUTE=0, INSTANCE_ID="me"),
                          stop_requested)
        assert cg.count("/coins/categories/list") == 1
    assert store_has_categories()


def test_a_stop_during_a_failing_refresh_is_not_held_by_the_cross_check_it_starts(moto_client, config):
    # A failed refresh runs the cross-check at once. Through the scheduler's API that deadlocked a
    # stop: shutdown(wait=True) holds the job store lock while it waits for the refresh's thread,
    # and that thread asked the scheduler for the cross-check job (a Ctrl-C then took the master's
    # 20 s SIGKILL). Here the stop comes while the first refresh waits on a source that never answers.
    import threading

    with FakeCoinGecko(generate_catalog(5)) as cg:
        cg.set_fault("slow", delay=3)
        began = time.monotonic()

        def stop_requested(timeout: float) -> bool:
            time.sleep(min(timeout, 0.1))
            return time.monotonic() - began > 0.5  # the first refresh is in flight by now

        cfg = config.replace(COINGECKO_API_URL=cg.url, COINGECKO_CALLS_PER_MINUTE=0, COINGECKO_RETRIES=0,
                             COINGECKO_TIMEOUT_SECONDS=1.5, INSTANCE_ID="me", CROSSCHECK_ENABLED=True,
                             CATEGORY_REFRESH_HOURS=0)
        runner = threading.Thread(target=run_until_stopped, args=(cfg, stop_requested), daemon=True)
        runner.start()
        runner.join(timeout=20)
        assert not runner.is_alive(), "the refresher did not stop"
        assert time.monotonic() - began < 10
        cg.set_fault(None)
