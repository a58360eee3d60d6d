"""Domain records: Asset, its status, and the catalog-wide counts."""

from __future__ import annotations

import dataclasses
import enum
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from .pricecheck import (
    OPERATOR_SOURCE,
    PRIMARY_SOURCE,
    CheckStatus,
    PriceCheck,
    SourcePrice,
    default_band,
)

ASSET_ID_RE = re.compile(r"^[A-Z0-9]{1,10}$")
CATEGORY_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


class AssetStatus(str, enum.Enum):
    """The operator's decision; only an operator changes it."""

    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
    SUSPENDED = "SUSPENDED"


# Fields the price refresh owns and may overwrite. Everything else on an asset
# (status, category, names, ...) belongs to operators or the seed, and the
# refresh never writes it.
MARKET_FIELDS = (
    "current_price",
    "market_cap",
    "market_cap_rank",
    "fully_diluted_valuation",
    "volume_24h",
    "high_24h",
    "low_24h",
    "price_change_24h",
    "price_change_percentage_1h",
    "price_change_percentage_24h",
    "price_change_percentage_7d",
    "price_change_percentage_30d",
    "circulating_supply",
    "total_supply",
    "max_supply",
    "ath",
    "ath_change_percentage",
    "ath_date",
    "atl",
    "atl_change_percentage",
    "atl_date",
    "last_price_update",
)
# Catalog facts the source owns on an asset linked to it (coingecko_id): the
# refresh writes them too, but never clears one the row leaves out. Operators
# own these on assets they imported (not linked).
SOURCE_FACTS = ("image",)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# What an asset the source does not classify carries: never a guess.
UNCATEGORIZED = "uncategorized"


@dataclass(slots=True)
class Asset:
    asset_id: str
    symbol: str
    name: str
    coingecko_id: str | None = None
    category: str | None = None
    categories: tuple[str, ...] = ()  # every slug, the primary first
    image: str | None = None
    description: str | None = None  # no source provides it yet: served as null
    status: AssetStatus = AssetStatus.ACTIVE
    current_price: Decimal | None = None
    market_cap: Decimal | None = None
    market_cap_rank: int | None = None
    fully_diluted_valuation: Decimal | None = None
    volume_24h: Decimal | None = None
    high_24h: Decimal | None = None
    low_24h: Decimal | None = None
    price_change_24h: Decimal | None = None
    price_change_percentage_1h: Decimal | None = None
    price_change_percentage_24h: Decimal | None = None
    price_change_percentage_7d: Decimal | None = None
    price_change_percentage_30d: Decimal | None = None
    circulating_supply: Decimal | None = None
    total_supply: Decimal | None = None
    max_supply: Decimal | None = None
    ath: Decimal | None = None
    ath_change_percentage: Decimal | None = None
    ath_date: datetime | None = None
    atl: Decimal | None = None
    atl_change_percentage: Decimal | None = None
    atl_date: datetime | None = None
    last_price_update: datetime | None = None
    # Operator-priced assets (imported, no coingecko_id) carry their own staleness
    # bound; None: the service's PRICE_MAX_AGE_SECONDS (docs/api.md "Operator-created assets").
    price_max_age_seconds: int | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    updated_by: str | None = None  # the token name behind the last operator change
    version: int = 1
    # Changes of this asset in the live stream's feed (store/mapping.py "live stream feed").
    stream_seq: int = 0
    # Hourly closes from our own history, oldest first, up to 7 days; the hour they reach
    # (jobs/sparklines.py). Not part of the version: no operator changes them.
    sparkline_7d: tuple[Decimal, ...] = ()
    sparkline_until: datetime | None = None
    # Cross-checked prices (domain/pricecheck.py). `price_source` is set only while the price
    # came from the second source (a CoinGecko outage); None: the primary's (or the operator's).
    price_source: str | None = None
    price_check: PriceCheck | None = None  # the last check of the price; None: never checked
    price_band_bps: int | None = None  # an operator's band for the check; None: default_band
    # When the primary last gave the market figures (cap, supply, ATH): their own age while
    # the price comes from the second source.
    market_as_of: datetime | None = None

    def max_age(self, default_seconds: int) -> int:
        """This asset's staleness bound: its own, else the service's `default_seconds`."""
        return default_seconds if self.price_max_age_seconds is None else self.price_max_age_seconds

    def price_fresh_until(self, default_seconds: int) -> datetime | None:
        """The last moment the price is fresh (None: no price time)."""
        if self.last_price_update is None:
            return None
        return self.last_price_update + timedelta(seconds=self.max_age(default_seconds))

    def price_stale(self, now: datetime, max_age_seconds: int) -> bool:
        """True when the asset has a price but it is older than its bound (its own, else `max_age_seconds`)."""
        if self.current_price is None:
            return False
        if self.last_price_update is None:
            return True
        return now > self.price_fresh_until(max_age_seconds)

    def is_tradable(self, now: datetime, max_age_seconds: int) -> bool:
        """ACTIVE, priced, and the price is fresh: the one meaning of "active"."""
        return (
            self.status is AssetStatus.ACTIVE
            and self.current_price is not None
            and not self.price_stale(now, max_age_seconds)
        )

    @property
    def band_bps(self) -> int:
        """The band this asset's price check is judged against: the operator's, else its default."""
        if self.price_band_bps is not None:
            return self.price_band_bps
        return default_band(self.categories or ((self.category,) if self.category else ()), self.market_cap_rank)

    @property
    def source_of_price(self) -> str:
        """Where the current price came from: the second source's name, coingecko, or operator."""
        return self.price_source or (PRIMARY_SOURCE if self.coingecko_id else OPERATOR_SOURCE)

    def check(self) -> PriceCheck:
        """The price's check as served: the stored one, else single_source (nothing compared it)."""
        if self.price_check is not None:
            return self.price_check
        sources = ()
        if self.current_price is not None and self.last_price_update is not None:
            sources = (SourcePrice(self.source_of_price, self.current_price, self.last_price_update),)
        return PriceCheck(CheckStatus.SINGLE_SOURCE, sources, None, self.band_bps, None)

    def replace(self, **changes) -> "Asset":
        return dataclasses.replace(self, **changes)


@dataclass
class RefreshState:
    """What the last price refreshes did, for health checks and metrics."""

    last_success_at: datetime | None = None
    last_attempt_at: datetime | None = None
    last_error: str | None = None
    breaker_state: str | None = None


@dataclass(frozen=True)
class PricePoint:
    """One recorded price of an asset (kept PRICE_HISTORY_DAYS through DynamoDB TTL)."""

    at: datetime
    price: Decimal
    market_cap: Decimal | None = None
    volume_24h: Decimal | None = None


@dataclass(frozen=True)
class Fence:
    """Proof of holding a lease at one fencing token; writes carrying it fail once the lease moves on."""

    lease: str
    owner: str
    token: int


@dataclass(frozen=True)
class Lease:
    """One instance's hold on a named lease (the price refresher's), until `expires_ms`."""

    name: str
    owner: str
    fence: int  # bumped by every takeover
    expires_ms: int

    def fence_check(self) -> Fence:
        """The fence to carry on writes that only this holder may make."""
        return Fence(self.name, self.owner, self.fence)


# Which status an operator may move an asset to from each status. INACTIVE
# (delisted) can only come back to ACTIVE; a suspension is lifted or made final.
ALLOWED_TRANSITIONS = {
    AssetStatus.ACTIVE: {AssetStatus.SUSPENDED, AssetStatus.INACTIVE},
    AssetStatus.SUSPENDED: {AssetStatus.ACTIVE, AssetStatus.INACTIVE},
    AssetStatus.INACTIVE: {AssetStatus.ACTIVE},
}


# How many status changes one all-or-none change may hold: DynamoDB runs at most
# 100 actions in a transaction, and each change is two (the asset, its audit
# record) besides the one feed entry of the whole change.
MAX_ATOMIC_CHANGES = 49


@dataclass(frozen=True)
class StatusChange:
    """One operator decision, as recorded in the audit log."""

    asset_id: str
    from_status: AssetStatus
    to_status: AssetStatus
    actor: str
    reason: str
    request_id: str
    at: datetime
    version: int  # the asset's version after the change
