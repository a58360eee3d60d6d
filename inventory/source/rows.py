"""CoinGecko rows -> validated rows and new assets: the one conversion and the identity rules.

Identity rules (docs/design.md "Identity"): an asset is matched to CoinGecko by
`coingecko_id`, never by ticker. A new coin's asset_id is its upper-cased ticker
when that matches ^[A-Z0-9]{1,10}$ and no other coin owns it; rows are taken in
rank order, so a lower-ranked coin never takes (or overwrites) a higher-ranked
coin's id. An id once given is never re-pointed at another coin, because other
services hold it. Coins that cannot get an id are reported, not dropped quietly.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal

from ..domain import ASSET_ID_RE, CATEGORY_RE, MARKET_FIELDS, SOURCE_FACTS, Asset

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
    "ath_change_percentage": "ath_change_percentage",
    "atl": "atl",
    "atl_change_percentage": "atl_change_percentage",
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
    categories: tuple[str, ...] = ()  # the seed's hand labels, primary first (market rows have none)

    @property
    def rank(self) -> int | None:
        return self.market["market_cap_rank"]

    @property
    def priced(self) -> bool:
        return self.market["current_price"] is not None

    def linked_facts(self) -> dict:
        """What a refresh writes on the asset linked to this coin: the market figures and the
        source's catalog facts (SOURCE_FACTS), those only when the row has them."""
        facts = {name: getattr(self, name) for name in SOURCE_FACTS if getattr(self, name) is not None}
        return {**self.market, **facts}


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
    labels = row.get("categories")
    if not (isinstance(labels, list) and all(isinstance(c, str) and CATEGORY_RE.match(c) for c in labels)):
        labels = [category] if category else []
    return CoinRow(
        coingecko_id=coingecko_id,
        symbol=symbol,
        name=name,
        image=_text(row.get("image"), "image", required=False),
        category=category,
        market=market,
        categories=tuple(labels),
    )


def load_json(raw_json: bytes | str):
    """Parse a JSON body with every non-integer number as an exact Decimal."""
    return json.loads(raw_json, parse_float=Decimal, parse_constant=_reject_constant)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number")


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


def row_label(row) -> str:
    """How a report names a row: its coin id, ticker and rank when it parsed."""
    if isinstance(row, CoinRow):
        return f"{row.coingecko_id} ({row.symbol}, rank {row.rank})"
    return str(row.get("id")) if isinstance(row, dict) else "?"


@dataclass
class MatchedRows:
    """Source rows sorted out against the catalog: known coins, new assets, and what was skipped."""

    known: list[tuple[CoinRow, Asset]] = field(default_factory=list)
    new: list[Asset] = field(default_factory=list)
    skipped: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # reason -> row labels


def match_rows(raw_rows: Iterable, existing: Iterable[Asset], now: datetime, *, require_price: bool) -> MatchedRows:
    """Validate rows, pair each with its asset by coingecko_id, and name new coins by the identity rules."""
    matched = MatchedRows()
    rows = []
    for raw in raw_rows:
        try:
            rows.append(parse_row(raw, now, require_price=require_price))
        except RowRejected as exc:
            matched.skipped[exc.reason].append(row_label(raw))
    index = IdentityIndex(existing)
    seen: set[str] = set()
    # Rank order, so a new coin's ticker goes to the higher-ranked of two claimants.
    for row in sorted(rows, key=rank_order):
        if row.coingecko_id in seen:
            matched.skipped["duplicate_row"].append(row_label(row))
            continue
        seen.add(row.coingecko_id)
        current = index.by_coingecko.get(row.coingecko_id)
        if current is not None:
            matched.known.append((row, current))
            continue
        try:
            matched.new.append(new_asset(row, index, now))
        except RowRejected as exc:
            matched.skipped[exc.reason].append(row_label(row))
    return matched


def new_asset(row: CoinRow, index: IdentityIndex, now: datetime) -> Asset:
    """A coin not in the catalog yet, named by the identity rules (new assets start ACTIVE)."""
    return Asset(
        asset_id=index.claim(row),
        symbol=row.symbol,
        name=row.name,
        coingecko_id=row.coingecko_id,
        category=row.category,
        categories=row.categories,
        image=row.image,
        created_at=now,
        updated_at=now,
        market_as_of=row.market["last_price_update"],
        **row.market,
    )


