"""Marshmallow schemas for asset requests and responses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import marshmallow as ma
from marshmallow import fields, validate
from webargs.fields import DelimitedList

from ...categories import UNCATEGORIZED, members_of
from ...domain import ASSET_ID_RE, CATEGORY_RE, MAX_ATOMIC_CHANGES, Asset, AssetStatus

SORT_FIELDS = ("rank", "price", "market_cap", "volume_24h", "price_change_percentage_24h", "name")
_CURSOR = fields.String(
    validate=validate.Length(max=1024),
    metadata={"description": "Opaque: the previous response's next_cursor"},
)


# `category` reads UNCATEGORIZED for an asset nobody categorised: clients of the
# earlier service take category as a string, never null.


@dataclass(frozen=True)
class AssetView:
    """An asset plus what is derived from it at read time (freshness, tradability)."""

    asset: Asset
    price_stale: bool
    is_active: bool

    @classmethod
    def of(cls, asset: Asset, now: datetime, max_age_seconds: int) -> "AssetView":
        return cls(
            asset=asset,
            price_stale=asset.price_stale(now, max_age_seconds),
            is_active=asset.is_tradable(now, max_age_seconds),
        )

    # The earlier service's names for fields we already have (issue 14).
    @property
    def price_usd(self):
        return self.asset.current_price

    @property
    def total_volume_24h(self):
        return self.asset.volume_24h

    @property
    def last_updated(self):
        return self.asset.last_price_update

    @property
    def category(self) -> str:
        return self.asset.category or UNCATEGORIZED

    @property
    def categories(self) -> list[str]:
        return list(members_of(self.asset))

    @property
    def availability_status(self) -> str:
        return "available" if self.is_active else "unavailable"

    def __getattr__(self, name):
        # Schema fields read the asset's own attributes straight through the view.
        return getattr(self.asset, name)


def _money(description: str):
    return fields.Decimal(allow_none=True, metadata={"description": description})


class AssetSchema(ma.Schema):
    """An asset as a list item: every field the earlier service's list items had, and ours."""

    asset_id = fields.String(metadata={"description": "Upper-case ticker; the id other services use", "example": "BTC"})
    symbol = fields.String()
    name = fields.String()
    description = fields.String(allow_none=True, metadata={"description": "null: no source provides it yet"})
    coingecko_id = fields.String(allow_none=True)
    category = fields.String(metadata={
        "description": f"The primary category's slug; `{UNCATEGORIZED}` when none", "example": "stablecoin",
    })
    categories = fields.List(fields.String(), metadata={
        "description": f"Every category slug of the asset, the primary first; `[\"{UNCATEGORIZED}\"]` when none",
        "example": ["stablecoin", "defi"],
    })
    image = fields.String(allow_none=True, metadata={"description": "Logo URL (from CoinGecko for linked assets)"})
    status = fields.Enum(AssetStatus, metadata={"description": "The operator's decision"})
    current_price = _money("USD price, exact")
    price_usd = _money("Same as current_price")
    market_cap = _money("USD")
    market_cap_rank = fields.Integer(allow_none=True)
    fully_diluted_valuation = _money("USD")
    volume_24h = _money("USD traded in the last 24 h")
    total_volume_24h = _money("Same as volume_24h")
    high_24h = _money("USD")
    low_24h = _money("USD")
    price_change_24h = _money("USD")
    price_change_percentage_1h = _money("percent")
    price_change_percentage_24h = _money("percent")
    price_change_percentage_7d = _money("percent")
    price_change_percentage_30d = _money("percent")
    circulating_supply = _money("units")
    total_supply = _money("units")
    max_supply = _money("units")
    ath = _money("USD all-time high")
    ath_change_percentage = _money("percent from the all-time high to the current price")
    ath_date = fields.DateTime(allow_none=True)
    atl = _money("USD all-time low")
    atl_change_percentage = _money("percent from the all-time low to the current price")
    atl_date = fields.DateTime(allow_none=True)
    last_price_update = fields.DateTime(
        allow_none=True, metadata={"description": "When the source last updated the price"}
    )
    last_updated = fields.DateTime(allow_none=True, metadata={"description": "Same as last_price_update"})
    price_stale = fields.Boolean(
        metadata={"description": "Priced, but the price is older than its bound (price_max_age_seconds, else PRICE_MAX_AGE_SECONDS)"}
    )
    is_active = fields.Boolean(
        metadata={"description": "Tradable now: ACTIVE, priced and the price is fresh"}
    )
    price_max_age_seconds = fields.Integer(allow_none=True, metadata={
        "description": "Operator-priced assets: this asset's staleness bound; null: PRICE_MAX_AGE_SECONDS",
    })
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class AssetDetailSchema(AssetSchema):
    """An asset as a detail body: the list item plus availability_status."""

    availability_status = fields.String(
        metadata={"description": "`available` exactly when is_active", "enum": ["available", "unavailable"]},
    )


class AssetEnvelopeSchema(ma.Schema):
    data = fields.Nested(AssetDetailSchema)


class AssetPageSchema(ma.Schema):
    data = fields.List(fields.Nested(AssetSchema))
    total_count = fields.Integer(metadata={"description": "Assets matching status/category"})
    active_count = fields.Integer(metadata={"description": "Of those, tradable now"})
    next_cursor = fields.String(allow_none=True, metadata={"description": "null on the last page"})


class _Query(ma.Schema):
    class Meta:
        # A misspelt parameter (`limt`, `query`) would otherwise be ignored
        # silently and answer a different question: 422 naming it instead.
        unknown = ma.RAISE

    error_messages = {"unknown": "Not a query parameter of this endpoint."}


class _QueryArgs(_Query):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=250))
    cursor = _CURSOR
    status = fields.Enum(AssetStatus)
    category = fields.String(validate=validate.Regexp(CATEGORY_RE, error="Not a category slug."))


MAX_COINGECKO_IDS = 100
# CoinGecko's ids are lower-case slugs ("usd-coin", "binance-peg-weth").
COINGECKO_ID_RE = r"^[a-z0-9][a-z0-9._-]{0,99}$"


class ListArgsSchema(_QueryArgs):
    active_only = fields.Boolean(
        load_default=True, metadata={"description": "Only assets tradable now"}
    )
    coingecko_ids = DelimitedList(
        fields.String(validate=validate.Regexp(COINGECKO_ID_RE, error="Not a CoinGecko id.")),
        validate=validate.Length(min=1, max=MAX_COINGECKO_IDS),
        metadata={
            "description": (
                "Comma-separated CoinGecko ids (`bitcoin,ethereum`, at most 100): the assets linked to them, "
                "in the order asked, ids that match none left out. `status`, `category` and `active_only` "
                "still filter them and the counts cover what was found; `limit` does not apply and there "
                "is no next page. Looked up in the catalog snapshot that search uses."
            )
        },
    )

    @ma.validates_schema
    def _lookup_has_one_page(self, data, **kwargs):
        if "coingecko_ids" in data and "cursor" in data:
            raise ma.ValidationError("A coingecko_ids lookup has one page; no cursor.", "cursor")


class SearchArgsSchema(_QueryArgs):
    q = fields.String(
        validate=validate.Length(min=1, max=100),
        metadata={"description": "Ticker prefix or name substring, case-insensitive"},
    )
    min_price = fields.Decimal(validate=validate.Range(min=0), allow_nan=False)
    max_price = fields.Decimal(validate=validate.Range(min=0), allow_nan=False)
    sort = fields.String(load_default="rank", validate=validate.OneOf(SORT_FIELDS))
    order = fields.String(load_default="asc", validate=validate.OneOf(("asc", "desc")))

    @ma.validates_schema
    def _price_range(self, data, **kwargs):
        low, high = data.get("min_price"), data.get("max_price")
        if low is not None and high is not None and low > high:
            raise ma.ValidationError("min_price is greater than max_price.", "min_price")


def normalise_asset_id(raw: str) -> str | None:
    """Trim and upper-case a path asset id; None when it is not a valid id."""
    candidate = raw.strip().upper()
    return candidate if ASSET_ID_RE.match(candidate) else None


class Timestamp(fields.Field):
    """An instant given as ISO-8601 (naive means UTC) or as epoch seconds."""

    default_error_messages = {"invalid": "Not an ISO-8601 time or epoch seconds."}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or len(value) > 40:
            raise self.make_error("invalid")
        try:
            if value.replace(".", "", 1).isdigit():
                return datetime.fromtimestamp(float(value), tz=timezone.utc)
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except (ValueError, OverflowError, OSError):
            raise self.make_error("invalid") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


INTERVALS = {"5m": 300, "1h": 3600, "1d": 86400}
HISTORY_FORMATS = ("close", "ohlc")


class HistoryArgsSchema(_Query):
    from_ = Timestamp(data_key="from", metadata={"description": "Start (default: `to` minus one day)"})
    to = Timestamp(metadata={"description": "End (default: now)"})
    interval = fields.String(load_default="1h", validate=validate.OneOf(tuple(INTERVALS)))
    format = fields.String(
        load_default="close",
        validate=validate.OneOf(HISTORY_FORMATS),
        metadata={"description": "`close`: the last point of each interval; `ohlc`: open/high/low/close and the "
                                 "point count of each interval (1d: from the stored daily candles, kept a year)",
                  "example": "ohlc"},
    )


class PricePointSchema(ma.Schema):
    """A point (`format=close`: at, price) or a candle (`format=ohlc`: start, open, high, low, close, count)."""

    at = fields.DateTime(metadata={"description": "close: when the price was recorded"})
    price = fields.Decimal(metadata={"description": "close: the price (USD)", "example": "43250.12"})
    start = fields.DateTime(metadata={"description": "ohlc: the start of the interval (UTC)"})
    open = fields.Decimal(metadata={"description": "ohlc: the first price in the interval", "example": "43000.5"})
    high = fields.Decimal(metadata={"description": "ohlc: the highest price", "example": "43600"})
    low = fields.Decimal(metadata={"description": "ohlc: the lowest price", "example": "42880.01"})
    close = fields.Decimal(metadata={"description": "ohlc: the last price", "example": "43250.12"})
    count = fields.Integer(metadata={"description": "ohlc: stored points in the interval", "example": 1440})
    market_cap = fields.Decimal(allow_none=True, metadata={"description": "at the point (ohlc: at the close)"})
    volume_24h = fields.Decimal(allow_none=True, metadata={"description": "at the point (ohlc: at the close)"})


class HistorySchema(ma.Schema):
    asset_id = fields.String()
    interval = fields.String()
    format = fields.String(metadata={"description": "`close` or `ohlc`", "example": "close"})
    data = fields.List(fields.Nested(PricePointSchema), metadata={"description": "Oldest first"})


# -- writes -------------------------------------------------------------------

MAX_BATCH = 100
MAX_ATOMIC = MAX_ATOMIC_CHANGES


class _Body(ma.Schema):
    class Meta:
        unknown = ma.RAISE


def _no_control_chars(value: str) -> None:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ma.ValidationError("Control characters are not allowed.")


class StatusChangeSchema(_Body):
    status = fields.Enum(AssetStatus, required=True)
    reason = fields.String(load_default="", validate=[validate.Length(max=500), _no_control_chars])


class BatchGetSchema(_Body):
    ids = fields.List(
        fields.String(validate=validate.Length(max=64)), required=True, validate=validate.Length(min=1, max=MAX_BATCH)
    )


class BatchGetResultSchema(ma.Schema):
    data = fields.List(fields.Nested(AssetSchema), metadata={"description": "Found assets, in request order"})
    not_found = fields.List(fields.String())
    invalid = fields.List(fields.String(), metadata={"description": "Entries that are not asset ids"})


class BulkStatusItemSchema(_Body):
    asset_id = fields.String(required=True, validate=validate.Length(max=64))
    status = fields.Enum(AssetStatus, required=True)
    expected_etag = fields.String(validate=validate.Length(max=100))


class BulkStatusSchema(_Body):
    items = fields.List(fields.Nested(BulkStatusItemSchema), required=True, validate=validate.Length(min=1, max=MAX_BATCH))
    atomic = fields.Boolean(load_default=False)
    reason = fields.String(load_default="", validate=[validate.Length(max=500), _no_control_chars])

    @ma.validates_schema
    def _atomic_size(self, data, **kwargs):
        if data.get("atomic") and len(data.get("items", [])) > MAX_ATOMIC:
            raise ma.ValidationError(f"An atomic change holds at most {MAX_ATOMIC} items.", "items")


class BulkStatusResultSchema(ma.Schema):
    results = fields.List(fields.Dict(), metadata={
        "description": "Per item: asset_id, status, result (applied, unchanged, conflict, not_found, invalid, not_applied)"
    })


class ImportItemSchema(_Body):
    asset_id = fields.String(required=True, validate=validate.Regexp(ASSET_ID_RE, error="1-10 upper-case letters or digits."))
    symbol = fields.String(required=True, validate=[validate.Length(min=1, max=20), _no_control_chars])
    name = fields.String(required=True, validate=[validate.Length(min=1, max=200), _no_control_chars])
    category = fields.String(validate=validate.Regexp(CATEGORY_RE, error="Not a category slug."))
    image = fields.Url(schemes={"https"}, validate=validate.Length(max=500))
    current_price = fields.Decimal(validate=validate.Range(min=0, max=10**15), allow_nan=False, places=None)
    price_max_age_seconds = fields.Integer(validate=validate.Range(min=1, max=366 * 86400), metadata={
        "description": "Operator-priced assets (no CoinGecko id): how long the price stays fresh; "
        "default OPERATOR_PRICE_MAX_AGE_SECONDS. Ignored for linked assets (the refresher prices them)",
    })


class ImportSchema(_Body):
    items = fields.List(fields.Dict(), required=True, validate=validate.Length(min=1, max=MAX_BATCH))
    overwrite_linked = fields.Boolean(load_default=False, metadata={
        "description": "Also update assets linked to a CoinGecko coin"
    })


class ImportResultSchema(ma.Schema):
    results = fields.List(fields.Dict(), metadata={
        "description": "Per item: index, asset_id, result (created, updated, renewed, unchanged, refused_linked, invalid, conflict), errors"
    })


class AuditEntrySchema(ma.Schema):
    at = fields.DateTime()
    actor = fields.String()
    from_status = fields.Enum(AssetStatus)
    to_status = fields.Enum(AssetStatus)
    reason = fields.String()
    request_id = fields.String()
    version = fields.Integer()


class AuditPageSchema(ma.Schema):
    data = fields.List(fields.Nested(AuditEntrySchema), metadata={"description": "Newest first"})
    next_cursor = fields.String(allow_none=True)


class AuditArgsSchema(_Query):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=250))
    cursor = _CURSOR
