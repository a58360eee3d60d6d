"""/health/detailed's rules: the store, price freshness, the lease, the watched assets (stale or
unpriced, read from the catalog snapshot) and the price source, each problem with a stable code."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from ..domain import Asset, AssetStatus, StoreError
from ..domain.numbers import plain_number
from ..domain.pricecheck import CheckStatus
from ..domain.search import SearchIndex, SearchQuery

_BY_RANK = SearchQuery()  # the default order: by rank


@dataclass(frozen=True)
class WatchedAssets:
    """HEALTH_TOP_ASSETS parsed: the assets ranked 1 to `count`, or these `ids`."""

    count: int = 0
    ids: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: str) -> "WatchedAssets":
        """:raises ValueError: neither a count nor a list of asset ids."""
        text = raw.strip()
        if text.isdigit():
            return cls(count=int(text))
        ids = tuple(dict.fromkeys(part.strip().upper() for part in text.split(",") if part.strip()))
        if not ids or any(not (part.isascii() and part.isalnum()) for part in ids):
            raise ValueError(f"HEALTH_TOP_ASSETS: expected a count or comma-separated asset ids, got {raw!r}")
        return cls(ids=ids)

    def describe(self) -> str:
        return f"ranks 1-{self.count}" if not self.ids else ", ".join(self.ids)


@dataclass(frozen=True)
class AssetProblem:
    asset_id: str
    # Stable codes: no_price (ACTIVE, never priced or the price was dropped),
    # stale (ACTIVE, older than PRICE_MAX_AGE_SECONDS), missing (a listed id not in the catalog).
    problem: str
    last_price_update: datetime | None = None


def watched(index: SearchIndex, which: WatchedAssets, now: datetime, max_age: int) -> tuple[list[Asset], list[str]]:
    """(the watched assets found in the snapshot, listed ids it lacks)."""
    if which.ids:
        found = {a.asset_id: a for a in index.assets if a.asset_id in set(which.ids)}
        return [found[i] for i in which.ids if i in found], [i for i in which.ids if i not in found]
    if which.count <= 0:
        return [], []
    page = index.search(_BY_RANK, which.count, None, now, max_age).page
    # Ranks 1..count as the source ranks them: a coin we never stored (no usable
    # ticker) leaves a gap rather than pulling a minor coin into the watch list.
    return [a for a in page if a.market_cap_rank is not None and a.market_cap_rank <= which.count], []


def price_problems(index: SearchIndex, which: WatchedAssets, now: datetime, max_age: int) -> tuple[int, list[AssetProblem]]:
    """(how many assets were checked, the problems among them).

    Only ACTIVE assets count: INACTIVE and SUSPENDED are an operator's choice,
    and their prices are not expected to be tradable.
    """
    assets, missing = watched(index, which, now, max_age)
    problems = [AssetProblem(asset_id, "missing") for asset_id in missing]
    for asset in assets:
        if asset.status is not AssetStatus.ACTIVE:
            continue
        if asset.current_price is None:
            problems.append(AssetProblem(asset.asset_id, "no_price", asset.last_price_update))
        elif asset.price_stale(now, max_age):
            problems.append(AssetProblem(asset.asset_id, "stale", asset.last_price_update))
    return len(assets) + len(missing), problems


def diverged_assets(index: SearchIndex, which: WatchedAssets, now: datetime, max_age: int) -> list:
    """(asset, its check) for each watched asset whose price check is diverged: quotes refuse them."""
    assets, _ = watched(index, which, now, max_age)
    return [(a, a.check()) for a in assets if a.check().status is CheckStatus.DIVERGED]


class Report:
    """The detailed report being built, and the problems found so far."""

    def __init__(self):
        self.body: dict = {"status": "healthy", "reasons": [], "problems": []}

    def problem(self, dependency: str, code: str, message: str, assets: list[str] | None = None) -> None:
        entry = {"dependency": dependency, "code": code, "message": message}
        if assets is not None:
            entry["assets"] = assets
        self.body["problems"].append(entry)
        self.body["reasons"].append(message)
        if self.body["status"] == "healthy":
            self.body["status"] = "degraded"


class HealthService:
    """What /health/detailed reports: the store, the catalog's counts, price freshness, the
    watched assets and the price source, each problem with a stable code.

    `detailed()` answers the body; its status is `unhealthy` when the store does not answer.
    """

    def __init__(self, catalog, probe, watched: WatchedAssets):
        self.catalog, self.probe, self.watched = catalog, probe, watched

    def detailed(self) -> dict:
        """The report, answered whatever fails; `status` unhealthy when the store does not answer."""
        service = self.catalog
        now = service.clock()
        report = Report()
        body = report.body
        started = time.perf_counter()
        try:
            facts = service.health()
        except StoreError:
            report.problem("store", "store_unreachable", "store unreachable")
            body.update(status="unhealthy", store={"reachable": False, "latency_ms": None, "table_status": None})
            body["price_source"] = self._source(report)
            return body
        latency_ms = round((time.perf_counter() - started) * 1000 / 4, 2)
        total, active = service.counts(now)
        refresh, lease = facts.refresh, facts.lease
        body["store"] = {"reachable": True, "latency_ms": latency_ms, "table_status": facts.table_status}
        body["assets"] = {"total": total, "tradable": active}
        last = refresh.last_success_at
        age = (now - last).total_seconds() if last else None
        body["prices"] = {
            "last_success_at": last,
            "age_seconds": age,
            "max_age_seconds": service.max_age,
            "last_error": refresh.last_error,
            "breaker_state": refresh.breaker_state,
        }
        expires = datetime.fromtimestamp(lease.expires_ms / 1000, tz=timezone.utc) if lease else None
        body["refresh_lease"] = {
            "owner": lease.owner if lease else None,
            "fence": lease.fence if lease else None,
            "expires_at": expires,
            "held": bool(expires and expires > now),
        }
        if last is None:
            report.problem("prices", "no_refresh_yet", "no successful price refresh yet")
        elif age > service.max_age:
            report.problem("prices", "refresh_too_old", "prices are stale: last successful refresh too old")
        if refresh.last_error:
            report.problem("prices", "refresh_failed", f"last price refresh failed: {refresh.last_error}")
        body["prices"]["watched"] = self._watched(report, now)
        body["price_source"] = self._source(report)
        body["price_check"] = self._crosscheck(report, facts.crosscheck, now)
        return body

    def _crosscheck(self, report: Report, state, now) -> dict:
        """The second source: whether the last cross-check reached it, and what the checks found."""
        if state is None:
            return {"enabled": False}
        last = state.last_success_at
        if state.last_error:
            report.problem("price_check", "secondary_source_failing",
                           f"second price source {state.source} is failing: {state.last_error}")
        return {
            "enabled": True,
            "source": state.source,
            "reachable": state.last_attempt_at is not None and not state.last_error,
            "last_success_at": last,
            "age_seconds": (now - last).total_seconds() if last else None,
            "last_attempt_at": state.last_attempt_at,
            "last_error": state.last_error,
            "breaker_state": state.breaker_state,
            "counts": state.counts,
            "diverged": list(state.diverged),
            "pairs": state.pairs,
            "pairs_refreshed_at": state.mapping_refreshed_at,
        }

    def _watched(self, report: Report, now) -> dict | None:
        """Check the watched assets in the catalog snapshot (no Scan: the snapshot search already keeps)."""
        which, service = self.watched, self.catalog
        try:
            snapshot = service.catalog_snapshot()
        except StoreError:
            return None  # the store answered the facts a moment ago; the next call will tell
        checked, problems = price_problems(snapshot.value, which, now, service.max_age)
        diverged = diverged_assets(snapshot.value, which, now, service.max_age)
        if diverged:
            listed = ", ".join(f"{a.asset_id} ({plain_number(c.divergence_bps)} bps > {c.band_bps})"
                               for a, c in diverged)
            report.problem(
                "prices", "watched_assets_diverged", f"watched assets whose two price sources disagree: {listed}",
                [a.asset_id for a, _ in diverged],
            )
        if problems:
            listed = ", ".join(f"{p.asset_id} ({p.problem})" for p in problems)
            report.problem(
                "prices", "watched_assets_untradable", f"watched assets without a tradable price: {listed}",
                [p.asset_id for p in problems],
            )
        return {
            "which": which.describe(),
            "checked": checked,
            "problems": [dataclasses.asdict(p) for p in problems],
        }

    def _source(self, report: Report) -> dict:
        result = self.probe.check()
        if not result.reachable:
            report.problem("price_source", "ping_failed", f"price source does not answer its ping: {result.last_error}")
        return {
            "reachable": result.reachable,
            "latency_ms": result.latency_ms,
            "checked_at": result.checked_at,
            "last_error": result.last_error,
            "last_error_at": result.last_error_at,
        }
