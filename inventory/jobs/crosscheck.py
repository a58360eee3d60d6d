"""crosscheck_prices: compare every mapped asset's price with the second source, as a plain function.

One call to the exchange (every pair's last price), one read of the catalog and
of the pair map, and one conditional write per asset whose check changed. While
the primary refresh is failing, an asset whose second price agreed at its last
check is priced from the second source instead (marked with its name), so
quotes keep working through a CoinGecko outage; CoinGecko's next good refresh
takes it back (docs/design.md "Cross-checked prices").
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Context, Decimal

from ..domain import Asset, Fence, InventoryError, PriceSourceError, utcnow
from ..domain.pricecheck import (
    CheckStatus,
    CrossCheckState,
    Pair,
    PriceCheck,
    SourcePrice,
    compare,
)
from ..source.client import CoinGeckoClient
from ..source.exchange import BinanceClient, Tickers
from ..source.pairs import pairs_from_tickers
from ..store import AssetStore, PriceStore
from ..store.crosscheck import CrossCheckStore
from ..store.dynamo import LeaseLost
from ..store.prices import CheckUpdate, PriceUpdate

log = logging.getLogger(__name__)

# Wide enough that a pair price (8 decimals) times a quote coin's price is exact.
_EXACT = Context(prec=60)
# Rounds of writes a check makes when other writes (a refresh) changed its assets meanwhile.
WRITE_ROUNDS = 4
# The assets whose largest divergence is exported, and whose diverged checks page someone.
TOP_DIVERGENCE_RANK = 100
ALERT_RANK = 20


@dataclass
class CrossCheckReport:
    source: str
    checked: int = 0  # assets with a check written or kept
    written: int = 0
    stood_in: int = 0  # prices taken from the second source while the primary fails
    rejected: int = 0  # changed by another write since read: checked again next time
    counts: Counter = field(default_factory=Counter)  # status -> assets
    diverged: list[str] = field(default_factory=list)
    max_divergence_bps: Decimal | None = None  # the largest among the top 100
    # Consecutive diverged checks of each top-20 asset (0: not diverged), for the alert.
    top_streaks: dict[str, int] = field(default_factory=dict)
    source_calls: int = 0
    pairs_refreshed: bool = False
    error: str | None = None
    duration_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def log_fields(self) -> dict:
        return {
            "source": self.source, "ok": self.ok, "checked": self.checked, "written": self.written,
            "stood_in": self.stood_in, "rejected": self.rejected, "counts": dict(self.counts),
            "diverged": self.diverged, "max_divergence_bps": None if self.max_divergence_bps is None
            else str(self.max_divergence_bps), "error": self.error,
            "duration_seconds": round(self.duration_seconds, 3),
        }


def observe(pair: Pair, tickers: Tickers, usd_prices: dict[str, Decimal], source: str) -> SourcePrice | None:
    """The pair's price in USD: as quoted, or converted with the quote coin's own (primary) price."""
    price = tickers.prices.get(pair.symbol)
    if price is None:
        return None
    if pair.quote_coin_id is None:
        return SourcePrice(source, price, tickers.fetched_at, pair.symbol)
    rate = usd_prices.get(pair.quote_coin_id)
    if rate is None:
        return None
    return SourcePrice(source, _EXACT.multiply(price, rate), tickers.fetched_at, pair.symbol, pair.quote, rate)


def may_stand_in(asset: Asset, source: str) -> bool:
    """Whether the second source may price `asset` while the primary fails: it already does,
    or its price agreed with the primary's at the last check (never an asset it disagreed on)."""
    check = asset.price_check
    return asset.price_source == source or (check is not None and check.status is CheckStatus.OK)


def stand_in(asset: Asset, observed: SourcePrice, now: datetime) -> PriceUpdate:
    """The second source's price as the asset's price, marked with its name and checked against nothing."""
    check = PriceCheck(CheckStatus.SINGLE_SOURCE, (observed,), None, asset.band_bps, now)
    return PriceUpdate(
        asset_id=asset.asset_id,
        changes={"current_price": observed.price, "last_price_update": observed.as_of,
                 "price_source": observed.source, "price_check": check},
        last_price_update=observed.as_of,
        point={"price": observed.price},
        stream_seq=asset.stream_seq,
        day_change={"price_change_24h": asset.price_change_24h,
                    "price_change_percentage_24h": asset.price_change_percentage_24h},
    )


def recheck(asset: Asset, primary: SourcePrice, now: datetime, max_age_seconds: float) -> PriceCheck | None:
    """The check of a new primary price against the second price the asset's last check had.

    Written with every refreshed price, so a served check always describes the served
    price. Not a new check of the second source: a diverged streak is not counted up.
    None: the asset was never checked (no pair), and still is not.
    """
    previous = asset.price_check
    if previous is None:
        return None
    check = compare(primary, previous.secondary, asset.band_bps, now, max_age_seconds)
    if check.status is CheckStatus.DIVERGED and previous.status is CheckStatus.DIVERGED:
        check = PriceCheck(check.status, check.sources, check.divergence_bps, check.band_bps, check.checked_at,
                           previous.diverged_checks)
    return check


def refresh_pairs(coingecko: CoinGeckoClient, catalog: list[Asset], checks: CrossCheckStore, exchange: str,
                  now: datetime, fence: Fence | None = None, max_pages: int = 10) -> tuple[dict[str, Pair], int]:
    """Map every linked asset's coin to its pair on `exchange` from CoinGecko's tickers, and store the map.

    :raises PriceSourceError: CoinGecko did not answer (the stored map stays as it was).
    """
    coin_ids = sorted({a.coingecko_id for a in catalog if a.coingecko_id})
    fetch = coingecko.exchange_tickers(exchange, coin_ids, max_pages)
    pairs = pairs_from_tickers(fetch.rows, set(coin_ids))
    checks.put_pairs(exchange, pairs, now, fence)
    log.info("cross-check pairs refreshed", extra={"exchange": exchange, "pairs": len(pairs), "calls": fetch.calls})
    return pairs, fetch.calls


def crosscheck_prices(
    exchange: BinanceClient,
    assets: AssetStore,
    prices: PriceStore,
    checks: CrossCheckStore,
    *,
    exchange_id: str,
    max_age_seconds: float,
    primary_failing: Callable[[], bool],
    coingecko: CoinGeckoClient | None = None,
    pairs_max_age: timedelta = timedelta(hours=24),
    clock: Callable[[], datetime] = utcnow,
    fence: Fence | None = None,
) -> CrossCheckReport:
    """One cross-check of every mapped asset; failures are reported and recorded, not raised.

    `primary_failing()`: the primary refresh's last attempt failed (after its own
    retries), so agreeing assets are priced from the second source. Asked after the
    catalog is read: a refresh that succeeds later moves the assets' stream_seq, and a
    second-source price planned on the asset as read is then refused. With
    `coingecko`, a pair map missing or older than `pairs_max_age` is refreshed first.
    """
    now, began = clock(), time.perf_counter()
    result = CrossCheckReport(source=exchange_id)
    try:
        _crosscheck(exchange, assets, prices, checks, exchange_id, max_age_seconds, primary_failing,
                    coingecko, pairs_max_age, now, fence, result)
    except InventoryError as exc:
        result.error = result.error or str(exc)
        log.warning("price cross-check failed: %s", exc)
    except LeaseLost:
        result.error = "the refresh lease was lost to another instance; writes stopped"
    result.duration_seconds = time.perf_counter() - began
    log.info("price cross-check", extra=result.log_fields())
    return result


def _crosscheck(exchange, assets, prices, checks, exchange_id, max_age, primary_failing, coingecko, pairs_max_age,
                now, fence, report: CrossCheckReport) -> None:
    catalog = list(assets.iter_all())
    failing = primary_failing()
    pairs, mapped_at = checks.pairs(exchange_id)
    if coingecko is not None and (mapped_at is None or now - mapped_at > pairs_max_age):
        try:
            pairs, _ = refresh_pairs(coingecko, catalog, checks, exchange_id, now, fence)
            mapped_at, report.pairs_refreshed = now, True
        except PriceSourceError as exc:  # keep checking with the map we have
            log.warning("cross-check pairs not refreshed: %s", exc)
    tickers = None
    try:
        tickers = exchange.ticker_prices(lambda: now)
        report.source_calls = 1
    except PriceSourceError as exc:
        report.error = str(exc)
    usd_prices = {a.coingecko_id: a.current_price for a in catalog if a.coingecko_id and a.current_price is not None}

    def plan(asset: Asset, may_stand_in_now: bool):
        """(the write this asset needs or None, its check as served after it)."""
        pair = pairs.get(asset.coingecko_id)
        if pair is None:
            # No pair: nothing compares it (a check it had is dropped).
            lost = CheckUpdate(asset.asset_id, None, asset.stream_seq) if asset.price_check is not None else None
            return lost, asset.replace(price_check=None).check()
        observed = observe(pair, tickers, usd_prices, exchange_id) if tickers else None
        if observed is not None and may_stand_in_now and may_stand_in(asset, exchange_id):
            update = stand_in(asset, observed, now)
            return update, update.changes["price_check"]
        if asset.price_source is not None:
            # Priced by the second source already: nothing to compare it with until CoinGecko is back.
            return None, asset.check()
        previous = asset.price_check
        secondary = observed or (previous.secondary if previous else None)
        primary = SourcePrice(asset.source_of_price, asset.current_price, asset.last_price_update)
        check = compare(primary, secondary, asset.band_bps, now, max_age, previous)
        return CheckUpdate(asset.asset_id, check, asset.stream_seq), check

    served: dict[str, PriceCheck] = {}
    pending = [a for a in catalog if a.coingecko_id and a.current_price is not None and a.last_price_update]
    # A refresh writing the same assets moves their stream_seq, and a write planned on the
    # asset as it was is refused: those are read again and planned anew, a few times.
    for attempt in range(WRITE_ROUNDS):
        # Only the first round stands in: an asset changed since then was most likely priced by CoinGecko.
        planned = {asset.asset_id: plan(asset, failing and attempt == 0) for asset in pending}
        served.update({asset_id: check for asset_id, (_, check) in planned.items()})
        checks_, prices_ = [], []
        for write, _ in planned.values():
            if isinstance(write, CheckUpdate):
                checks_.append(write)
            elif write is not None:
                prices_.append(write)
        rejected = []
        if checks_:
            result = prices.record_checks(checks_, fence)
            report.written += len(result.applied)
            rejected += result.rejected
        if prices_:
            result = prices.apply(prices_, fence)
            report.stood_in += len(result.applied)
            rejected += result.rejected
        if not rejected or attempt == WRITE_ROUNDS - 1:
            report.rejected = len(rejected)
            break
        pending = [a for a in assets.batch_get(rejected, consistent=True).values()
                   if a.current_price is not None and a.last_price_update]
    _summarise(report, catalog, served)
    _record_state(checks, exchange, exchange_id, now, report, mapped_at, len(pairs))


def _summarise(report: CrossCheckReport, catalog: list[Asset], served: dict[str, PriceCheck]) -> None:
    report.checked = len(served)
    for asset in catalog:
        check = served.get(asset.asset_id)
        if check is None:
            continue
        report.counts[check.status.value] += 1
        rank = asset.market_cap_rank
        if check.status is CheckStatus.DIVERGED:
            report.diverged.append(asset.asset_id)
        if rank is not None and rank <= TOP_DIVERGENCE_RANK and check.divergence_bps is not None:
            report.max_divergence_bps = max(report.max_divergence_bps or Decimal(0), check.divergence_bps)
        if rank is not None and rank <= ALERT_RANK:
            report.top_streaks[asset.asset_id] = (
                check.diverged_checks if check.status is CheckStatus.DIVERGED else 0
            )


def _record_state(checks: CrossCheckStore, exchange, exchange_id: str, now: datetime, report: CrossCheckReport,
                  mapped_at: datetime | None, pairs: int) -> None:
    try:
        previous = checks.state(exchange_id)
        checks.put_state(CrossCheckState(
            source=exchange_id,
            last_success_at=now if report.ok else previous.last_success_at,
            last_attempt_at=now,
            last_error=report.error,
            breaker_state=exchange.breaker.state,
            counts=dict(report.counts),
            diverged=tuple(report.diverged),
            mapping_refreshed_at=mapped_at,
            pairs=pairs,
        ))
    except InventoryError as exc:
        log.warning("could not record cross-check state: %s", exc)
