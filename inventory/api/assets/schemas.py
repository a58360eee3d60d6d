"""Marshmallow schemas for asset requests and responses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import marshmallow as ma
from marshmallow import fields, validate
from webargs.fields import DelimitedList

from ...domain import ASSET_ID_RE, CATEGORY_RE, MAX_ATOMIC_CHANGES, Asset, AssetStatus
from ...domain.pricecheck import MAX_BAND_BPS, MIN_BAND_BPS, CheckStatus
from ...domain.search import DEFAULT_SORT, RANGE_ATTRIBUTE, SORT_KEYS, SearchQuery
from ...domain.taxonomy import UNCATEGORIZED, members_of

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

    @property
    def price_source(self) -> str:
        return self.asset.source_of_price

    @property
    def price_check(self):
        return self.asset.check()

    @property
    def sparkline_7d(self) -> dict:
        # CoinGecko's shape (sparkline_in_7d), which the original frontend reads.
        return {"price": list(self.asset.sparkline_7d)}

    def __getattr__(self, name):
        # Schema fields read the asset's own attributes straight through the view.
        return getattr(self.asset, name)


def _money(description: str):
    return fields.Decimal(allow_none=True, metadata={"description": description})


class SparklineSchema(ma.Schema):
    price = fields.List(fields.Decimal(), metadata={"example": ["97012.5", "97110.25"]})


class SourcePriceSchema(ma.Schema):
    source = fields.String(metadata={"description": "coingecko, the exchange (binance), or operator",
                                     "example": "binance"})
    price = fields.Decimal(metadata={"description": "USD, exact", "example": "2911.8812"})
    as_of = fields.DateTime()
    pair = fields.String(metadata={"description": "The exchange's pair, e.g. ETHUSDT (exchange prices only)"})
    quote = fields.String(metadata={"description": "The pair's quote when not USD (USDT, USDC)"})
    quote_price = fields.Decimal(metadata={
        "description": "The quote coin's own USD price (CoinGecko's) the pair's price was converted with"})

    @ma.post_dump
    def _only_known(self, data, **kwargs):
        # pair and quote exist for exchange prices only: absent, not null, elsewhere.
        return {k: v for k, v in data.items() if v is not None}


class PriceCheckSchema(ma.Schema):
    status = fields.Enum(CheckStatus, by_value=True, metadata={
        "description": "ok: the second source agrees within band_bps; diverged: it does not (quotes refuse the "
                       "asset); single_source: no second price for this asset (never guessed); "
                       "secondary_stale: the second source has not answered within CROSSCHECK_MAX_AGE_SECONDS",
    })
    sources = fields.List(fields.Nested(SourcePriceSchema), metadata={
        "description": "The prices compared, the served one first"})
    divergence_bps = fields.Decimal(allow_none=True, metadata={
        "description": "|first - second| / first x 10,000, to 4 decimals (half-even); null when not compared",
        "example": "3.1416"})
    band_bps = fields.Integer(allow_none=True, metadata={
        "description": "The band: stablecoins 50, top 20 by market cap 100, the rest 300, or the operator's"})
    checked_at = fields.DateTime(allow_none=True, metadata={"description": "null: never checked"})


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
    price_source = fields.String(metadata={
        "description": "Where current_price came from: coingecko; the exchange's name while it stands in for "
                       "CoinGecko during an outage; operator for imported assets", "example": "coingecko"})
    price_check = fields.Nested(PriceCheckSchema, metadata={
        "description": "How sure we are of the price: the second source's price, their divergence and the band"})
    price_band_bps = fields.Integer(allow_none=True, metadata={
        "description": "The operator's band for this asset's check; null: the default band"})
    market_as_of = fields.DateTime(allow_none=True, metadata={
        "description": "When CoinGecko last gave the market figures (cap, supply, ATH, 24h change): older than "
                       "last_price_update while another source stands in"})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    sparkline_7d = fields.Nested(SparklineSchema, metadata={
        "description": "Hourly closes over the last 7 days from our own history, oldest first (empty until the "
                       "hourly job has run); on list and search pages only with `sparkline=true`"})


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


class _Paged(ma.Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=250))
    cursor = _CURSOR
    sparkline = fields.Boolean(load_default=False, metadata={
        "description": "Include each asset's `sparkline_7d` (up to 168 hourly closes: larger pages)"})


_SLUG = fields.String(validate=validate.Regexp(CATEGORY_RE, error="Not a category slug."))
MAX_CATEGORIES = 20
_RANGE_EXAMPLES = {"rank": 100, "price": "0.5", "market_cap": "1000000000", "volume_24h": "1000000"}


class SortField(fields.Field):
    """`-market_cap,name`: sort keys, most significant first, `-` for descending."""

    default_error_messages = {
        "invalid": "Comma-separated sort keys, `-` for descending: " + ", ".join(SORT_KEYS) + ".",
        "unknown": "Unknown sort key {sort_key!r}; one of: " + ", ".join(SORT_KEYS) + ".",
        "repeated": "Sort key {sort_key!r} is given twice.",
    }

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not value or len(value) > 200:
            raise self.make_error("invalid")
        keys = []
        for part in value.split(","):
            descending = part.startswith("-")
            name = part[1:] if descending else part
            if name not in SORT_KEYS:
                raise self.make_error("unknown", sort_key=name)
            if name in (k for k, _ in keys):
                raise self.make_error("repeated", sort_key=name)
            # None: the direction of `order` (the earlier single-key form).
            keys.append((name, True if descending else None))
        return tuple(keys)


def _range_fields() -> dict:
    """min_<name> / max_<name> for every range filter (inclusive; assets without the value never match)."""
    made = {}
    for name in RANGE_ATTRIBUTE:
        percent = name.startswith("price_change")
        for bound in ("min", "max"):
            described = f"{'Lowest' if bound == 'min' else 'Highest'} {name.replace('_', ' ')}" + (
                " (percent, may be negative)" if percent else "" if name == "rank" else " (USD, exact)"
            )
            metadata = {"description": described + ", inclusive"}
            example = _RANGE_EXAMPLES.get(name, "-5" if bound == "min" else "5")
            metadata["example"] = example
            if name == "rank":
                made[f"{bound}_{name}"] = fields.Integer(validate=validate.Range(min=1), metadata=metadata)
            else:
                made[f"{bound}_{name}"] = fields.Decimal(
                    allow_nan=False, validate=None if percent else validate.Range(min=0), metadata=metadata
                )
    return made


class FilterArgs(_Query):
    """Every catalog filter, shared by list, search and export; all compose (AND)."""

    status = fields.Enum(AssetStatus, metadata={"description": "The operator's status"})
    q = fields.String(
        validate=validate.Length(min=1, max=100),
        metadata={"description": "Ticker prefix or name substring, case-insensitive", "example": "usd"},
    )
    category = DelimitedList(
        _SLUG, validate=validate.Length(min=1, max=MAX_CATEGORIES),
        metadata={"description": "Category slugs, comma-separated: assets in ANY of them (primary category or any "
                                 "of `categories`)", "example": "defi,layer-2"},
    )
    sort = SortField(metadata={
        "description": "Sort keys, most significant first, comma-separated; `-` sorts that key descending, a key "
                       "without it follows `order`. Missing values come last; asset_id breaks the last tie. Keys: "
                       + ", ".join(SORT_KEYS) + ". Default `rank`.",
        "example": "-market_cap,name", "type": "string",
    })
    order = fields.String(
        load_default="asc", validate=validate.OneOf(("asc", "desc")),
        metadata={"description": "Direction of sort keys without `-` (the earlier single-key form)"},
    )
    locals().update(_range_fields())

    @ma.validates_schema
    def _ranges(self, data, **kwargs):
        for name in RANGE_ATTRIBUTE:
            low, high = data.get(f"min_{name}"), data.get(f"max_{name}")
            if low is not None and high is not None and low > high:
                raise ma.ValidationError(f"min_{name} is greater than max_{name}.", f"min_{name}")


def search_query(args: dict, *, tradable: bool = False) -> SearchQuery:
    """The SearchQuery that validated filter arguments ask for."""
    descending = args.get("order") == "desc"
    sort = tuple((name, descending if d is None else d) for name, d in args.get("sort") or ())
    ranges = tuple(
        (name, args.get(f"min_{name}"), args.get(f"max_{name}"))
        for name in RANGE_ATTRIBUTE
        if args.get(f"min_{name}") is not None or args.get(f"max_{name}") is not None
    )
    return SearchQuery(
        q=args.get("q"),
        categories=tuple(dict.fromkeys(args.get("category") or ())),
        status=args.get("status"),
        tradable=tradable,
        ranges=ranges,
        sort=sort or ((DEFAULT_SORT[0][0], descending),),
    )


MAX_COINGECKO_IDS = 100
# CoinGecko's ids are lower-case slugs ("usd-coin", "binance-peg-weth").
COINGECKO_ID_RE = r"^[a-z0-9][a-z0-9._-]{0,99}$"


def _tradable_filter(default: bool) -> type[ma.Schema]:
    """`tradable`, the one name of the "only assets tradable now" filter, and `active_only`, the
    name the original API gave it on the list, accepted everywhere as an alias."""

    class TradableFilter(ma.Schema):
        tradable = fields.Boolean(metadata={
            "description": f"Only assets tradable now: ACTIVE, priced, price fresh (default {str(default).lower()})"})
        active_only = fields.Boolean(metadata={"description": "The same filter as `tradable` (its earlier name)"})

        @ma.validates_schema
        def _one_filter(self, data, **kwargs):
            given = {data[name] for name in ("tradable", "active_only") if data.get(name) is not None}
            if len(given) > 1:
                raise ma.ValidationError("tradable and active_only are one filter: give one.", "active_only")

        @ma.post_load
        def _resolve(self, data, **kwargs):
            alias = data.pop("active_only", None)
            data["tradable"] = next((v for v in (data.get("tradable"), alias) if v is not None), default)
            return data

    return TradableFilter


class ListArgsSchema(FilterArgs, _Paged, _tradable_filter(True)):
    coingecko_ids = DelimitedList(
        fields.String(validate=validate.Regexp(COINGECKO_ID_RE, error="Not a CoinGecko id.")),
        validate=validate.Length(min=1, max=MAX_COINGECKO_IDS),
        metadata={
            "description": (
                "Comma-separated CoinGecko ids (`bitcoin,ethereum`, at most 100): the assets linked to them, "
                "in the order asked, ids that match none left out. `status`, `category` and `tradable` "
                "still filter them and the counts cover what was found; `limit` does not apply and there "
                "is no next page. Looked up in the catalog snapshot that search uses."
            )
        },
    )

    @ma.validates_schema
    def _lookup_has_one_page(self, data, **kwargs):
        if "coingecko_ids" in data and "cursor" in data:
            raise ma.ValidationError("A coingecko_ids lookup has one page; no cursor.", "cursor")
        if "coingecko_ids" in data:
            extra = sorted(set(data) & ({"q", "sort"} | {f"{b}_{n}" for n in RANGE_ATTRIBUTE for b in ("min", "max")}))
            if extra:
                raise ma.ValidationError("A coingecko_ids lookup takes only status, category and tradable.", extra[0])
            if len(data.get("category") or ()) > 1:
                raise ma.ValidationError("A coingecko_ids lookup takes one category.", "category")


class SearchArgsSchema(FilterArgs, _Paged, _tradable_filter(False)):
    pass


EXPORT_FORMATS = ("csv",)


class ExportArgsSchema(FilterArgs, _tradable_filter(False)):
    format = fields.String(validate=validate.OneOf(EXPORT_FORMATS), metadata={
        "description": "`csv` (the same as `Accept: text/csv`)", "example": "csv",
    })


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


class PriceBandSchema(_Body):
    band_bps = fields.Integer(required=True, allow_none=True, strict=True,
                              validate=validate.Range(min=MIN_BAND_BPS, max=MAX_BAND_BPS), metadata={
        "description": "The band (basis points) this asset's two price sources may differ by before its check "
                       "is `diverged`; null: back to the default (stablecoins 50, top 20 100, the rest 300)",
        "example": 150})
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


IMPORT_EXAMPLE = {
    "items": [
        {
            "asset_id": "ACME",
            "symbol": "acme",
            "name": "Acme Settlement Token",
            "category": "stablecoins",
            "image": "https://example.com/acme.png",
            "current_price": 1.0002,
        }
    ],
    "overwrite_linked": False,
}


class ImportBodySchema(ma.Schema):
    """The import body as documented: typed items (the view validates them one by one, so one bad item fails alone)."""

    items = ma.fields.List(ma.fields.Nested(ImportItemSchema), required=True,
                           metadata={"description": "1-100 assets to create or update"})
    overwrite_linked = ma.fields.Boolean(load_default=False, metadata={
        "description": "Also update assets linked to a CoinGecko coin"
    })
