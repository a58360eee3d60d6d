"""refresh_prices against the local fake CoinGecko server (real HTTP) over a moto table."""

from __future__ import annotations

import io
import json
import logging
import time
from contextlib import contextmanager
from decimal import Decimal

import pytest

from inventory.domain import AssetStatus, utcnow
from inventory.jobs.refresh import refresh_prices
from inventory.jobs.seed import bundled_rows, sync_catalog
from inventory.source.client import CircuitBreaker, CoinGeckoClient
from inventory.store.prices import PriceStore
from inventory.telemetry.logs import configure_logging, json_formatter
from tests.fakes.coingecko import FakeCoinGecko, generate_catalog


# moto copies the whole table on every transaction action, so unit tests keep
# catalogs small; sizes that show cost and races run on DynamoDB Local
# (tests/integration/test_refresh_dynamodb_local.py).
@pytest.fixture
def cg():
    with FakeCoinGecko(generate_catalog(40)) as server:
        yield server


@pytest.fixture
def prices(moto_client, config):
    return PriceStore(moto_client, config.DYNAMODB_TABLE_NAME, history_days=30, write_concurrency=1)


def make_client(cg, **kwargs):
    options = dict(retries=2, backoff=0.01, read_timeout=1.0, calls_per_minute=0,
                   breaker=CircuitBreaker(threshold=2, cooldown=60))
    options.update(kwargs)
    return CoinGeckoClient(cg.url, **options)


def run(client, store, prices, pages=2):
    return refresh_prices(client, store, prices, pages=pages)


def stored_prices(store):
    return {a.coingecko_id: a.current_price for a in store.iter_all()}


def test_refresh_stores_the_source_prices_exactly(cg, store, prices):
    report = run(make_client(cg), store, prices)
    assert report.ok and report.fetched == len(cg.coins)
    expected = {row["id"]: row["current_price"] for row in cg.coins}
    stored = stored_prices(store)
    assert stored  # new coins were added
    for coingecko_id, price in stored.items():
        assert price == expected[coingecko_id]
        assert isinstance(price, Decimal)
    tiny = [p for p in stored.values() if p is not None and p < Decimal("0.0001")]
    assert tiny, "the generated catalog has tiny prices; they must survive exactly"


def test_second_refresh_rewrites_only_what_changed(cg, store, prices):
    run(make_client(cg), store, prices)
    changed_id = cg.coins[0]["id"]
    cg.set_price(changed_id, Decimal("12345.678901"))
    report = run(make_client(cg), store, prices)
    assert report.updated == 1
    assert report.unchanged == report.fetched - 1 - sum(report.skipped.values())
    assert stored_prices(store)[changed_id] == Decimal("12345.678901")


def test_duplicate_and_odd_tickers_follow_identity_rules(cg, store, prices):
    report = run(make_client(cg), store, prices)
    by_cg = {a.coingecko_id: a for a in store.iter_all()}
    ranks = {row["id"]: row["market_cap_rank"] for row in cg.coins}
    for symbol in ("weth", "usdc"):
        holders = sorted((r for r in cg.coins if r["symbol"] == symbol), key=lambda r: r["market_cap_rank"] or 10**9)
        assert len(holders) >= 2
        assert by_cg[holders[0]["id"]].asset_id == symbol.upper()
        assert holders[1]["id"] not in by_cg  # the lower-ranked one is reported, never merged
    assert report.skipped["ticker_owned_by_another_coin"] >= 2
    assert report.skipped["ticker_not_usable_as_id"] >= 1
    assert all(ranks[a.coingecko_id] == a.market_cap_rank for a in by_cg.values())


def test_refresh_never_overwrites_a_status_change_made_during_it(cg, store, prices, moto_client):
    # GIVEN a priced catalog
    run(make_client(cg), store, prices)
    ids = [a.asset_id for a in store.iter_all()]
    cg.tick()
    # WHEN operators suspend every asset after the refresh read the catalog but
    # before it writes (the window of the original lost-update bug)
    def suspend_all(**_):
        moto_client.meta.events.unregister("before-call.dynamodb.TransactWriteItems", suspend_all)
        for asset_id in ids:
            store.update_fields(asset_id, {"status": AssetStatus.SUSPENDED}, utcnow())

    moto_client.meta.events.register("before-call.dynamodb.TransactWriteItems", suspend_all)
    report = run(make_client(cg), store, prices)
    # THEN the prices moved and every status change survived
    assert report.updated == len(ids)
    assert {a.status for a in store.iter_all()} == {AssetStatus.SUSPENDED}


@pytest.mark.parametrize("fault", ["500", "502", "503", "truncated", "html", "object", "401"])
def test_a_failing_source_changes_nothing_stored(cg, store, prices, refresh_state, fault):
    run(make_client(cg), store, prices)
    before = {a.asset_id: a for a in store.iter_all()}
    cg.tick()
    cg.set_fault(fault)
    report = run(make_client(cg), store, prices)
    assert not report.ok and report.error
    assert {a.asset_id: a for a in store.iter_all()} == before
    state = refresh_state.get()
    assert state.last_error == report.error
    assert state.last_success_at is not None  # the earlier success is kept


def test_server_errors_are_retried_a_bounded_number_of_times(cg, store, prices):
    cg.set_fault("503", count=2)  # two failures, then healthy: retries absorb them
    report = run(make_client(cg, retries=3), store, prices, pages=1)
    assert report.ok
    assert cg.count() == 3
    cg.reset_log()
    cg.set_fault("503")
    report = run(make_client(cg, retries=2), store, prices, pages=1)
    assert not report.ok
    assert cg.count() == 3  # the first try and two retries, no more


def test_rate_limit_with_long_retry_after_pauses_the_source(cg, store, prices):
    client = make_client(cg, retries=0)
    cg.set_fault("429", retry_after=120)
    report = run(client, store, prices, pages=1)
    assert not report.ok and "429" in report.error
    assert client.breaker.state == "open"
    calls = cg.count()
    cg.set_fault(None)
    report = run(client, store, prices, pages=1)
    assert not report.ok and "paused" in report.error
    assert cg.count() == calls  # honoured: no call while paused


def test_short_retry_after_is_honoured_then_succeeds(cg, store, prices):
    cg.set_fault("429", count=1, retry_after=1)
    report = run(make_client(cg, retries=2), store, prices, pages=1)
    assert report.ok
    first, second = [r for r in cg.requests if r["path"].endswith("/coins/markets")][:2]
    assert second["time"] - first["time"] >= 0.9


def test_breaker_opens_after_repeated_failures_and_probes_once(cg, store, prices):
    now = [0.0]
    breaker = CircuitBreaker(threshold=2, cooldown=30, clock=lambda: now[0])
    client = make_client(cg, retries=0, breaker=breaker)
    cg.set_fault("500")
    assert not run(client, store, prices, pages=1).ok
    assert not run(client, store, prices, pages=1).ok
    assert breaker.state == "open"
    calls = cg.count()
    assert not run(client, store, prices, pages=1).ok
    assert cg.count() == calls
    now[0] = 31
    assert breaker.state == "half_open"
    assert not run(client, store, prices, pages=1).ok  # the probe fails: open again
    assert cg.count() == calls + 1
    assert breaker.state == "open"
    cg.set_fault(None)
    now[0] = 62
    assert run(client, store, prices, pages=1).ok
    assert breaker.state == "closed"


def test_timeouts_fail_cleanly(cg, store, prices):
    cg.set_fault("slow", delay=1.5)
    report = run(make_client(cg, retries=0, read_timeout=0.3), store, prices, pages=1)
    assert not report.ok and "unreachable" in report.error
    assert list(store.iter_all()) == []


def test_bad_rows_are_skipped_and_counted_never_stored(cg, store, prices):
    cg.set_fault("bad_rows")
    report = run(make_client(cg), store, prices, pages=1)
    assert report.ok
    assert sum(report.skipped.values()) >= 5
    stored = {a.coingecko_id: a for a in store.iter_all()}
    for asset in stored.values():
        assert asset.current_price is None or asset.current_price >= 0


def test_coins_that_drop_out_keep_their_price_and_go_stale(cg, store, prices):
    run(make_client(cg), store, prices)
    gone = cg.coins.pop(0)
    before = {a.coingecko_id: a for a in store.iter_all()}[gone["id"]]
    run(make_client(cg), store, prices)
    after = {a.coingecko_id: a for a in store.iter_all()}[gone["id"]]
    assert after.current_price == before.current_price
    assert after.last_price_update == before.last_price_update


def test_seed_catalog_then_refresh_links_by_coingecko_id(store, prices):
    sync_catalog(bundled_rows(), store, utcnow())
    rows = [dict(r) for r in bundled_rows() if r["id"] in ("bitcoin", "binance-peg-weth", "weth")]
    for i, row in enumerate(rows):
        row.update(current_price=Decimal(f"{i + 1}.5"), last_updated=None)
    with FakeCoinGecko(rows) as server:
        report = run(make_client(server), store, prices, pages=1)
    assert report.ok and report.updated == 2
    assets = {a.coingecko_id: a for a in store.iter_all()}
    assert assets["weth"].asset_id == "WETH" and assets["weth"].current_price is not None
    assert "binance-peg-weth" not in assets


def test_refresh_fills_the_source_facts_of_seeded_assets_and_leaves_operator_fields(store, prices):
    # GIVEN the bundled seed (no images) and an operator's suspension
    sync_catalog(bundled_rows(), store, utcnow())
    seeded = {a.coingecko_id: a for a in store.iter_all()}
    assert seeded["bitcoin"].image is None
    store.update_fields(seeded["bitcoin"].asset_id, {"status": AssetStatus.SUSPENDED}, utcnow())
    rows = [dict(r) for r in bundled_rows() if r["id"] in ("bitcoin", "ethereum")]
    for i, row in enumerate(rows):
        row.update(
            current_price=Decimal(f"{i + 1}.5"), last_updated=None, image=f"https://img.example/{row['id']}.png",
            ath_change_percentage=Decimal("-12.5"), atl_change_percentage=Decimal("9000.25"),
        )
    # WHEN the source's rows are refreshed in
    with FakeCoinGecko(rows) as server:
        assert run(make_client(server), store, prices, pages=1).updated == 2
    # THEN image and the ath/atl change percentages are stored; the status is the operator's
    assets = {a.coingecko_id: a for a in store.iter_all()}
    btc = assets["bitcoin"]
    assert btc.image == "https://img.example/bitcoin.png"
    assert (btc.ath_change_percentage, btc.atl_change_percentage) == (Decimal("-12.5"), Decimal("9000.25"))
    assert btc.status is AssetStatus.SUSPENDED
    # AND a later row without an image keeps the stored one
    rows[0]["image"] = None
    with FakeCoinGecko(rows) as server:
        run(make_client(server), store, prices, pages=1)
    assert store.get(btc.asset_id).image == "https://img.example/bitcoin.png"


def test_history_points_are_written_with_ttl(cg, store, prices, moto_client, config):
    run(make_client(cg), store, prices)
    btc = next(a for a in store.iter_all() if a.market_cap_rank == 1)
    points = prices.history(btc.asset_id, btc.last_price_update.replace(year=2000), utcnow(), 100)
    assert [p.price for p in points] == [btc.current_price]
    raw = moto_client.get_item(
        TableName=config.DYNAMODB_TABLE_NAME,
        Key={"PK": {"S": f"HISTORY#{btc.asset_id}"}, "SK": {"S": points[0].at.isoformat(timespec="milliseconds")}},
    )["Item"]
    assert int(raw["expires_at"]["N"]) > btc.last_price_update.timestamp() + 29 * 86400


@contextmanager
def json_lines(logger_name: str):
    """Collect what `logger_name` logs, formatted as the service formats it."""
    stream, lines = io.StringIO(), []
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        lines.extend(json.loads(line) for line in stream.getvalue().splitlines())


def test_the_refresh_report_is_one_json_line_with_named_fields(cg, store, prices):
    with json_lines("inventory.jobs.refresh") as lines:
        report = run(make_client(cg), store, prices)
    (line,) = [line for line in lines if line["message"] == "price refresh"]
    assert line["level"] == "INFO" and line["logger"] == "inventory.jobs.refresh"
    assert line["ok"] is True and line["error"] is None
    assert line["fetched"] == report.fetched == len(cg.coins)
    assert line["created_assets"] == report.created > 0
    assert (line["updated"], line["unchanged"]) == (report.updated, report.unchanged)
    assert line["skipped"] == sum(report.skipped.values()) > 0
    assert line["skipped_by_reason"] == dict(report.skipped)
    assert line["source_calls"] == 1 and line["dynamodb_requests"] > 0
    assert line["duration_seconds"] >= 0


def test_catalog_sync_logs_what_it_skipped_as_fields(store):
    rows = [{"id": "bitcoin", "symbol": "btc", "name": "Bitcoin"}, {"id": "x", "symbol": "not a ticker", "name": "X"}, 7]
    with json_lines("inventory.jobs.seed") as lines:
        sync_catalog(rows, store, utcnow())
    (line,) = lines
    assert line["level"] == "WARNING" and line["skipped"] == 2
    assert line["skipped_by_reason"] == {"not_an_object": ["?"], "ticker_not_usable_as_id": ["x (not a ticker, rank None)"]}


def test_apscheduler_says_only_warnings_and_errors():
    configure_logging("INFO")
    job_logger = logging.getLogger("apscheduler.executors.default")
    assert not job_logger.isEnabledFor(logging.INFO)  # "Running job", "executed successfully"
    assert job_logger.isEnabledFor(logging.WARNING) and job_logger.isEnabledFor(logging.ERROR)


def test_a_retry_after_past_the_cap_ends_the_refresh_at_once_and_pauses_the_source(cg, store, prices):
    # Waiting the cap and asking again would come back before the source asked, and hold the
    # refresh (every price ageing) for retries x cap: the refresh fails now, the breaker pauses
    # for exactly the Retry-After, and the second source can stand in meanwhile.
    now = [0.0]
    client = make_client(cg, retries=3, retry_after_max=5,
                         breaker=CircuitBreaker(threshold=3, cooldown=10, clock=lambda: now[0]))
    cg.set_fault("429", count=1, retry_after=30)
    started = time.monotonic()
    report = run(client, store, prices, pages=1)
    assert not report.ok and "429" in report.error
    assert time.monotonic() - started < 3 and cg.count() == 1
    assert client.breaker.state == "open"
    now[0] = 31
    assert run(client, store, prices, pages=1).ok
