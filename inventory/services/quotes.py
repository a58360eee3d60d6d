"""Price quotes (signed, from one strongly consistent read) and portfolio valuations (from the catalog snapshot)."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal, localcontext

from itsdangerous import BadData, URLSafeSerializer

from ..config import Config
from ..domain import Asset, AssetStatus
from ..domain.errors import (
    QuoteNotFound,
    QuoteRefused,
    QuotesUnavailable,
    UnknownAssets,
)
from ..domain.pricecheck import CheckStatus

log = logging.getLogger(__name__)

# Part of the contract with the order service (docs/api.md "Quotes and valuations"):
# changing any of these voids every quote it can verify.
QUOTE_SALT = "inventory.quote.v1"
QUOTE_DIGEST = hashlib.sha256
# Used when QUOTE_SIGNING_KEY is unset and the store is a local one (dev, make run).
DEV_QUOTE_KEY = "dev-only-quote-signing-key"

MAX_QUOTE_ITEMS = 100
MAX_HOLDINGS = 1000
MAX_QUANTITY_CHARS = 40
_PLAIN_DECIMAL = re.compile(r"^[0-9]+(\.[0-9]+)?$")
# Enough digits that a price (DynamoDB: 38 significant digits) times a quantity
# (40 characters), summed over 1,000 holdings, is never rounded.
_EXACT = Context(prec=100)


def parse_quantity(raw) -> Decimal:
    """A holding's or a quote item's quantity, exactly: a plain decimal string or a JSON number.

    :raises ValueError: (its message is the client's) negative, not a number, or
        longer than MAX_QUANTITY_CHARS in plain notation (`1e999999` included).
    """
    if isinstance(raw, str):
        text = raw.strip()
        if len(text) > MAX_QUANTITY_CHARS:
            raise ValueError(f"Longer than {MAX_QUANTITY_CHARS} characters.")
        if text.startswith("-"):
            raise ValueError("Must not be negative.")
        if not _PLAIN_DECIMAL.match(text):
            raise ValueError("Not a decimal number (digits with an optional fraction, e.g. \"0.25\").")
        return Decimal(text)
    # bool is an int to Python but not a quantity to anyone.
    if isinstance(raw, bool) or not isinstance(raw, (int, Decimal)):
        raise ValueError("Must be a decimal string or a number.")
    value = Decimal(raw)
    if not value.is_finite():
        raise ValueError("Must be a finite number.")
    if value < 0 or value.is_signed():  # -0 too: a sign says the caller meant something else
        raise ValueError("Must not be negative.")
    # Checked on the exponent before formatting: 1e999999 is a million digits in plain notation.
    exponent = value.as_tuple().exponent
    if value.adjusted() >= MAX_QUANTITY_CHARS or exponent < -MAX_QUANTITY_CHARS or len(
        format(value, "f")
    ) > MAX_QUANTITY_CHARS:
        raise ValueError(f"Longer than {MAX_QUANTITY_CHARS} characters in plain notation.")
    return value


def _exact_product(a: Decimal, b: Decimal) -> Decimal:
    with localcontext(_EXACT):
        return a * b


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds")


def refusal(asset: Asset, now: datetime, max_age_seconds: int) -> str | None:
    """Why `asset` cannot be quoted now (a stable reason code), or None when it can."""
    if asset.status is AssetStatus.SUSPENDED:
        return "suspended"
    if asset.status is AssetStatus.INACTIVE:
        return "inactive"
    if asset.current_price is None:
        return "no_price"
    if asset.price_stale(now, max_age_seconds):
        return "stale_price"
    if asset.check().status is CheckStatus.DIVERGED:
        return "price_diverged"  # the second source disagrees beyond the band: no price is certain
    return None


# -- quotes -----------------------------------------------------------------


@dataclass(frozen=True)
class QuoteLine:
    asset_id: str
    price: Decimal
    quantity: Decimal | None = None
    # The price's check status when quoted (single_source: no second price agreed with it), and its source.
    price_check: str | None = None
    price_source: str | None = None

    @property
    def amount(self) -> Decimal | None:
        return None if self.quantity is None else _exact_product(self.price, self.quantity)


@dataclass(frozen=True)
class Quote:
    quote_id: str
    as_of: datetime
    expires_at: datetime
    items: list[QuoteLine]

    @property
    def total(self) -> Decimal | None:
        """The sum of the amounts when every item has a quantity, else None."""
        amounts = [line.amount for line in self.items]
        if not amounts or None in amounts:
            return None
        with localcontext(_EXACT):
            return sum(amounts, Decimal(0))

    @property
    def ttl_seconds(self) -> int:
        return int((self.expires_at - self.as_of).total_seconds())


@dataclass(frozen=True)
class QuoteCheck:
    """A verified quote id: the quote it carries, and whether it still holds."""

    quote: Quote
    valid: bool
    reason: str | None  # "expired" when not valid


def signing_keys(config: Config) -> list[str]:
    """QUOTE_SIGNING_KEY as a list (first signs); the dev key on a local store; [] when quotes must stay off."""
    keys = [k.strip() for k in (config.QUOTE_SIGNING_KEY or "").split(",") if k.strip()]
    if keys:
        return keys
    if config.DYNAMODB_ENDPOINT_URL:
        # A local or explicit endpoint: DynamoDB Local under `make run`, a test server.
        log.warning("QUOTE_SIGNING_KEY is not set: quotes are signed with the public dev key")
        return [DEV_QUOTE_KEY]
    return []


class QuoteSigner:
    """Signs a quote's payload into its id, and reads it back (HMAC-SHA256 through itsdangerous)."""

    def __init__(self, keys: list[str]):
        # itsdangerous signs with the LAST key and accepts any: ours are listed newest first.
        self._serializer = URLSafeSerializer(
            list(reversed(keys)), salt=QUOTE_SALT, signer_kwargs={"digest_method": QUOTE_DIGEST}
        )

    def sign(self, payload: dict) -> str:
        return self._serializer.dumps(payload)

    def load(self, quote_id: str) -> dict:
        """:raises QuoteNotFound: not signed by any of our keys, or not a quote payload."""
        try:
            payload = self._serializer.loads(quote_id)
        except BadData:
            raise QuoteNotFound() from None
        if not isinstance(payload, dict) or payload.get("v") != 1:
            raise QuoteNotFound()
        return payload


class QuoteDesk:
    """Issues and verifies quotes, and values holdings, over the CatalogService of this worker."""

    def __init__(self, service, config: Config, metrics=None, clock: Callable[[], datetime] | None = None):
        self._service = service
        self._ttl = timedelta(seconds=config.QUOTE_TTL_SECONDS)
        keys = signing_keys(config)
        self._signer = QuoteSigner(keys) if keys else None
        self._metrics = metrics
        self._clock = clock or service.clock
        self._index: tuple[object, dict[str, Asset]] | None = None

    def _signer_or_refuse(self) -> QuoteSigner:
        if self._signer is None:
            raise QuotesUnavailable("Quotes are off: set QUOTE_SIGNING_KEY (docs/api.md: Quotes and valuations).")
        return self._signer

    def quote(self, items: list[tuple[str, Decimal | None]]) -> Quote:
        """Price `items` (asset_id, quantity or None) from one strongly consistent read.

        :raises UnknownAssets: (422) some ids are not in the catalog.
        :raises QuoteRefused: (409) some assets are not tradable or their price is stale.
        """
        signer = self._signer_or_refuse()
        ids = [asset_id for asset_id, _ in items]
        # One BatchGetItem (at most 100 keys), strongly consistent: the stored
        # price and status as of this moment, not the worker's snapshot.
        found, missing = self._service.batch_get(ids, consistent=True)
        now = self._clock()
        # Milliseconds, as the signed payload carries them: POST and GET then show the same instants.
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if missing:
            self._count_refused({"unknown_asset"})
            raise UnknownAssets(errors={"assets": {asset_id: "unknown_asset" for asset_id in missing}})
        max_age = self._service.max_age
        refused = {a.asset_id: reason for a in found if (reason := refusal(a, now, max_age))}
        if refused:
            self._count_refused(set(refused.values()))
            errors = {"assets": refused}
            diverged = {a.asset_id: a.check() for a in found if refused.get(a.asset_id) == "price_diverged"}
            if diverged:
                errors["price_checks"] = {
                    asset_id: {"divergence_bps": check.divergence_bps, "band_bps": check.band_bps,
                               "sources": [s.source for s in check.sources]}
                    for asset_id, check in diverged.items()
                }
            raise QuoteRefused(
                "No quote: " + ", ".join(f"{a} ({r})" for a, r in refused.items()) + ".",
                errors=errors,
            )
        by_id = {a.asset_id: a for a in found}
        lines = [
            QuoteLine(asset_id, by_id[asset_id].current_price, quantity, by_id[asset_id].check().status.value,
                      by_id[asset_id].source_of_price)
            for asset_id, quantity in items
        ]
        expires = now + self._ttl
        payload = {
            "v": 1,
            "as_of": _iso(now),
            "exp": _iso(expires),
            # Strings: exact, and what the order service compares with Decimal(...).
            "items": [[line.asset_id, _text(line.price), _text(line.quantity)] for line in lines],
            # Each line's check status and source, beside the items: verifiers that unpack three
            # fields an item (docs/api.md "Verifying a quote in the order service") keep working.
            "checks": [[line.price_check, line.price_source] for line in lines],
        }
        if self._metrics is not None:
            self._metrics.quote_issued()
        return Quote(signer.sign(payload), now, expires, lines)

    def check(self, quote_id: str) -> QuoteCheck:
        """Verify a quote id this service signed; expired quotes come back with valid=False.

        :raises QuoteNotFound: tampered, truncated or foreign.
        """
        payload = self._signer_or_refuse().load(quote_id)
        try:
            as_of = datetime.fromisoformat(payload["as_of"])
            expires = datetime.fromisoformat(payload["exp"])
            # Quotes signed before checks have no "checks".
            checks = payload.get("checks") or [[None, None]] * len(payload["items"])
            lines = [
                QuoteLine(asset_id, Decimal(price), None if quantity is None else Decimal(quantity), check, source)
                for (asset_id, price, quantity), (check, source) in zip(payload["items"], checks, strict=True)
            ]
        except (KeyError, TypeError, ValueError, ArithmeticError):
            # Signed by us yet not a quote: only if a key was reused elsewhere.
            raise QuoteNotFound() from None
        valid = self._clock() <= expires
        return QuoteCheck(Quote(quote_id, as_of, expires, lines), valid, None if valid else "expired")

    def _count_refused(self, reasons: set[str]) -> None:
        if self._metrics is not None:
            for reason in reasons:
                self._metrics.quote_refused(reason)

    # -- valuations ---------------------------------------------------------

    def _by_id(self):
        """(Cached[SearchIndex], asset_id -> Asset) of the current snapshot, the map built once per snapshot."""
        cached = self._service.catalog_snapshot()
        index = cached.value
        if self._index is None or self._index[0] is not index:
            self._index = (index, {a.asset_id: a for a in index.assets})
        return cached, self._index[1]

    def value(self, holdings: list[tuple[str, Decimal]]) -> Valuation:
        """Value `holdings` (asset_id, quantity) from one catalog snapshot; unknown ids are listed, not fatal."""
        cached, assets = self._by_id()
        now = self._clock()
        max_age = self._service.max_age
        lines, unknown = [], []
        for asset_id, quantity in holdings:
            asset = assets.get(asset_id)
            if asset is None:
                unknown.append(asset_id)
            else:
                lines.append(Holding.of(asset, quantity, now, max_age))
        if self._metrics is not None:
            self._metrics.valuation(len(holdings))
        return Valuation(now, lines, unknown, cached.stale)


def _text(value: Decimal | None) -> str | None:
    # Plain notation: Decimal("2.584652E-7") reads the same, but people read these too.
    return None if value is None else format(value, "f")


@dataclass(frozen=True)
class Holding:
    """One valued holding: the asset's price and status at the valuation, the value and its 24h change."""

    asset_id: str
    name: str
    quantity: Decimal
    status: AssetStatus
    price: Decimal | None
    value: Decimal | None
    value_change_24h: Decimal | None
    price_change_percentage_24h: Decimal | None
    price_updated_at: datetime | None
    price_stale: bool
    is_active: bool
    price_check: str  # the price's check status (domain/pricecheck.py CheckStatus)
    price_source: str

    @classmethod
    def of(cls, asset: Asset, quantity: Decimal, now: datetime, max_age_seconds: int) -> Holding:
        price, change = asset.current_price, asset.price_change_24h
        return cls(
            asset_id=asset.asset_id,
            name=asset.name,
            quantity=quantity,
            status=asset.status,
            price=price,
            value=None if price is None else _exact_product(price, quantity),
            value_change_24h=None if price is None or change is None else _exact_product(change, quantity),
            price_change_percentage_24h=asset.price_change_percentage_24h,
            price_updated_at=asset.last_price_update,
            price_stale=asset.price_stale(now, max_age_seconds),
            is_active=asset.is_tradable(now, max_age_seconds),
            price_check=asset.check().status.value,
            price_source=asset.source_of_price,
        )


@dataclass(frozen=True)
class Valuation:
    as_of: datetime
    holdings: list[Holding]
    unknown: list[str]
    stale: bool  # the snapshot stood in while the store was failing

    @property
    def total(self) -> Decimal:
        """The sum of the holdings that have a price (stale ones included: each says so)."""
        with localcontext(_EXACT):
            return sum((h.value for h in self.holdings if h.value is not None), Decimal(0))

    @property
    def total_change_24h(self) -> Decimal:
        with localcontext(_EXACT):
            return sum((h.value_change_24h for h in self.holdings if h.value_change_24h is not None), Decimal(0))

    @property
    def unpriced(self) -> list[str]:
        return [h.asset_id for h in self.holdings if h.price is None]

    @property
    def stale_count(self) -> int:
        return sum(1 for h in self.holdings if h.price_stale)
