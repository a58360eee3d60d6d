"""CoinGecko market rows -> assets: row validation, the identity rules, and catalog sync.

Identity rules (README "Identity"): an asset is matched to CoinGecko by
`coingecko_id`, never by ticker. A new coin's asset_id is its upper-cased ticker
when that matches ^[A-Z0-9]{1,10}$ and no other coin owns it; rows are taken in
rank order, so a lower-ranked coin never takes (or overwrites) a higher-ranked
coin's id. An id once given is never re-pointed at another coin, because other
services hold it. Coins that cannot get an id are reported, not dropped quietly.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from importlib import resources

from .domain import ASSET_ID_RE, CATEGORY_RE, MARKET_FIELDS, Asset
from .store import AssetStore

log = logging.getLogger(__name__)

# CoinGecko field -> our field, for the figures the refresh owns.
_NUMERIC_FIELDS = {
    "current_price": "current_price",
    "market_cap": "market_cap",
    "fully_diluted_valuation": "fully_diluted_valuation",
    "total_volume": "volume_24h",
    "high_24h": "high_24h",
    "low_24h": "low_24h",
    "price_change_24h": "price_change_24h",
    "price_change_percentage_1h_in_currency": "price_change_percentage_1h",
    "price_change_percentage_24h": "price_change_percentage_24h",
    "price_change_percentage_7d_in_currency": "price_change_percentage_7d",
    "price_change_percentage_30d_in_currency": "price_change_percentage_30d",
    "circulating_supply": "circulating_supply",
    "total_supply": "total_supply",
    "max_supply": "max_supply",
    "ath": "ath",
    "atl": "atl",
}
# Figures that cannot be negative; a negative one means the row is corrupt.
_NON_NEGATIVE = {
    "current_price", "market_cap", "fully_diluted_valuation", "volume_24h", "high_24h",
    "low_24h", "circulating_supply", "total_supply", "max_supply", "ath", "atl",
}
_DATE_FIELDS = {"ath_date": "ath_date", "atl_date": "atl_date"}
_MAX_TEXT = 200


class RowRejected(ValueError):
    """A market row that must not reach the table; `reason` is a short stable code."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class CoinRow:
    """One validated market row."""

    coingecko_id: str
    symbol: str
    name: str
    image: str | None
    category: str | None
    market: dict  # our MARKET_FIELDS names -> values

    @property
    def rank(self) -> int | None:
        return self.market["market_cap_rank"]

    @property
    def priced(self) -> bool:
        return self.market["current_price"] is not None


def _number(value, name: str) -> Decimal | None:
    if value is None:
        return None
    # bool is an int subclass; float only appears if someone parsed without parse_float.
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise RowRejected(f"bad_{name}")
    value = Decimal(value)
    if not value.is_finite():
        raise RowRejected(f"bad_{name}")
    if name in _NON_NEGATIVE and value < 0:
        raise RowRejected(f"bad_{name}")
    return value


def _date(value, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise RowRejected(f"bad_{name}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise RowRejected(f"bad_{name}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _text(value, name: str, *, required: bool) -> str | None:
    if value is None or value == "":
        if required:
            raise RowRejected(f"missing_{name}")
        return None
    if not isinstance(value, str) or len(value) > _MAX_TEXT:
        raise RowRejected(f"bad_{name}")
    return value


def parse_row(row, fetched_at: datetime, *, require_price: bool) -> CoinRow:
    """Validate one /coins/markets row (numbers already Decimal).

    :raises RowRejected: the row is unusable; its reason says why.
    """
    if not isinstance(row, dict):
        raise RowRejected("not_an_object")
    coingecko_id = _text(row.get("id"), "id", required=True)
    symbol = _text(row.get("symbol"), "symbol", required=True)
    name = _text(row.get("name"), "name", required=True)
    if require_price and "current_price" not in row:
        raise RowRejected("missing_price")
    market = dict.fromkeys(MARKET_FIELDS)
    for source, target in _NUMERIC_FIELDS.items():
        market[target] = _number(row.get(source), target)
    if require_price and market["current_price"] is None:
        raise RowRejected("missing_price")
    rank = row.get("market_cap_rank")
    if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int) or rank < 1):
        raise RowRejected("bad_market_cap_rank")
    market["market_cap_rank"] = rank
    for source, target in _DATE_FIELDS.items():
        market[target] = _date(row.get(source), target)
    if market["current_price"] is not None:
        # The source's own time for the figure is its honest age; a clock ahead of
        # ours is clamped so a price is never fresher than the moment we fetched it.
        updated = _date(row.get("last_updated"), "last_updated") or fetched_at
        market["last_price_update"] = min(updated, fetched_at)
    category = row.get("category")
    if category is not None and not (isinstance(category, str) and CATEGORY_RE.match(category)):
        category = None
    return CoinRow(
        coingecko_id=coingecko_id,
        symbol=symbol,
        name=name,
        image=_text(row.get("image"), "image", required=False),
        category=category,
        market=market,
    )


def load_rows(raw_json: bytes | str) -> list:
    """Parse a JSON body with every non-integer number as an exact Decimal."""
    return json.loads(raw_json, parse_float=Decimal, parse_constant=_reject_constant)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number")


def bundled_rows() -> list:
    """The seed catalog shipped inside the package."""
    return load_rows(resources.files("inventory.data").joinpath("seed_catalog.json").read_bytes())


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    @property
    def skipped_count(self) -> int:
        return sum(len(v) for v in self.skipped.values())

    def as_dict(self) -> dict:
        return {
            "created": len(self.created),
            "updated": len(self.updated),
            "unchanged": self.unchanged,
            "skipped": self.skipped_count,
            "skipped_by_reason": {k: sorted(v) for k, v in sorted(self.skipped.items())},
        }


class IdentityIndex:
    """Which asset each CoinGecko id maps to, and which tickers are taken."""

    def __init__(self, assets: Iterable[Asset]):
        self.by_coingecko: dict[str, Asset] = {}
        self.owner_of: dict[str, str | None] = {}
        for asset in assets:
            self.owner_of[asset.asset_id] = asset.coingecko_id
            if asset.coingecko_id:
                self.by_coingecko[asset.coingecko_id] = asset

    def claim(self, row: CoinRow) -> str:
        """Give a new coin its asset_id, or raise RowRejected with the reason."""
        candidate = row.symbol.strip().upper()
        if not ASSET_ID_RE.match(candidate):
            raise RowRejected("ticker_not_usable_as_id")
        if candidate in self.owner_of:
            raise RowRejected("ticker_owned_by_another_coin")
        self.owner_of[candidate] = row.coingecko_id
        return candidate


def rank_order(row: CoinRow):
    return (row.rank is None, row.rank or 0, row.coingecko_id)


def _label(row) -> str:
    if isinstance(row, CoinRow):
        return f"{row.coingecko_id} ({row.symbol}, rank {row.rank})"
    return str(row.get("id")) if isinstance(row, dict) else "?"


def sync_catalog(
    raw_rows: list,
    store: AssetStore,
    now: datetime,
    *,
    require_price: bool = False,
    progress: Callable[[int], None] | None = None,
) -> SyncReport:
    """Create new coins and update catalog facts of known ones; idempotent.

    Never touches `status` or `category` of an existing asset (operator fields),
    and never replaces a stored price with an older one.
    """
    report = SyncReport()
    rows = []
    for raw in raw_rows:
        try:
            rows.append(parse_row(raw, now, require_price=require_price))
        except RowRejected as exc:
            report.skipped[exc.reason].append(_label(raw))
    index = IdentityIndex(store.iter_all())
    new_assets = []
    for row in sorted(rows, key=rank_order):
        existing = index.by_coingecko.get(row.coingecko_id)
        try:
            if existing is None:
                new_assets.append(new_asset(row, index, now))
            else:
                _refresh_facts(row, existing, store, now, report)
        except RowRejected as exc:
            report.skipped[exc.reason].append(_label(row))
        if progress:
            progress(1)
    created, existed = store.create_many(new_assets)
    report.created.extend(created)
    # Created meanwhile by another seed or a refresh: theirs stands.
    report.unchanged += len(existed)
    if report.skipped_count:
        log.warning(
            "catalog sync skipped %d coins: %s",
            report.skipped_count,
            {k: sorted(v) for k, v in report.skipped.items()},
        )
    return report


def new_asset(row: CoinRow, index: IdentityIndex, now: datetime) -> Asset:
    """A coin not in the catalog yet, named by the identity rules (new assets start ACTIVE)."""
    return Asset(
        asset_id=index.claim(row),
        symbol=row.symbol,
        name=row.name,
        coingecko_id=row.coingecko_id,
        category=row.category,
        image=row.image,
        created_at=now,
        updated_at=now,
        **row.market,
    )


def _refresh_facts(row: CoinRow, existing: Asset, store: AssetStore, now, report: SyncReport):
    changes = {
        name: value
        for name, value in (("symbol", row.symbol), ("name", row.name), ("image", row.image))
        if value is not None and getattr(existing, name) != value
    }
    newer_price = row.priced and (
        existing.last_price_update is None
        or row.market["last_price_update"] > existing.last_price_update
    )
    if newer_price:
        changes.update(
            {k: v for k, v in row.market.items() if getattr(existing, k) != v}
        )
    if not changes:
        report.unchanged += 1
        return
    store.update_fields(existing.asset_id, changes, now)
    report.updated.append(existing.asset_id)
