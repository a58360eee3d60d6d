"""Key layout and item <-> domain mapping: the only module that knows item shapes.

Single-table layout (see docs/design.md "Key layout"):

    item            PK                    SK                 indexed by
    asset           ASSET#<asset_id>      ASSET              by_rank, by_status, by_category
    refresh state   REFRESH               STATE              -
    price point     HISTORY#<asset_id>    <ISO time>         - (expires_at: DynamoDB TTL)
    status change   AUDIT#<asset_id>      <ISO time>#<version:010d>  -
    lease           LEASE                 <lease name>       - (owner, fence, expires_ms)
    migration run   MIGRATION             <migration name>   -
    feed head       CATALOG               FEED_SEQ           -
    feed entry      FEED                  <seq:015d>         - (expires_at: DynamoDB TTL)

A `CATALOG/STATS` item (catalog counts) written by earlier versions is no
longer read or written: every worker counts its read model.

Every asset carries `kind = "ASSET"` and `rank_key = <rank:010d>#<asset_id>`
(unranked: 9999999999#<asset_id>). The three GSIs share `rank_key` as their sort
key, so each one returns assets in market-cap-rank order with ties broken by
asset_id, straight from the index: by_rank (kind), by_status (status),
by_category (category; sparse, assets without a category are not in it).
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from ..domain import (
    Asset,
    AssetStatus,
    Fence,
    Lease,
    PricePoint,
    RefreshState,
    StatusChange,
)
from ..domain.history import Candle, DayTotals, Profile, Similar, day_start
from ..domain.pricecheck import (
    CheckStatus,
    CrossCheckState,
    Pair,
    PriceCheck,
    SourcePrice,
)

ASSET_KIND = "ASSET"
ASSET_PREFIX = "ASSET#"
ASSET_SK = "ASSET"
HISTORY_PREFIX = "HISTORY#"
AUDIT_PREFIX = "AUDIT#"
REFRESH_STATE_KEY = {"PK": {"S": "REFRESH"}, "SK": {"S": "STATE"}}
MIGRATION_PK = "MIGRATION"
LEASE_PK = "LEASE"
UNRANKED = 9_999_999_999

# Index name -> the attribute that is its partition key.
INDEXES = {"by_rank": "kind", "by_status": "status", "by_category": "category"}

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

_DATETIME_FIELDS = {
    "ath_date", "atl_date", "last_price_update", "created_at", "updated_at", "sparkline_until", "market_as_of",
}
_INT_FIELDS = {"market_cap_rank", "version", "price_max_age_seconds", "stream_seq", "price_band_bps"}


def asset_key(asset_id: str) -> dict:
    return {"PK": {"S": ASSET_PREFIX + asset_id}, "SK": {"S": ASSET_SK}}


def rank_key(rank: int | None, asset_id: str) -> str:
    return f"{UNRANKED if rank is None else rank:010d}#{asset_id}"


def index_start_key(index: str, partition_value: str, asset_id: str, rank: str) -> dict:
    """ExclusiveStartKey that resumes an index query right after the given asset."""
    return {
        **asset_key(asset_id),
        INDEXES[index]: {"S": partition_value},
        "rank_key": {"S": rank},
    }


def to_iso(value: datetime) -> str:
    # One fixed-width UTC format, so stored timestamps also compare correctly as strings.
    return value.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def from_iso(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def serialize(value) -> dict:
    """One attribute value in DynamoDB's wire form (datetimes as ISO strings)."""
    if isinstance(value, datetime):
        value = to_iso(value)
    elif isinstance(value, AssetStatus):
        value = value.value
    elif isinstance(value, PriceCheck):
        value = _check_to_map(value)
    return _serializer.serialize(value)


# A price check is one Map attribute on the asset (docs/design.md "Cross-checked prices"):
# written with the price it checked, so the two never disagree, and read with the asset.
def _source_to_map(source: SourcePrice) -> dict:
    out = {"source": source.source, "price": source.price, "as_of": to_iso(source.as_of)}
    for name in ("pair", "quote", "quote_price"):
        if getattr(source, name) is not None:
            out[name] = getattr(source, name)
    return out


def _check_to_map(check: PriceCheck) -> dict:
    out = {
        "status": check.status.value,
        "sources": [_source_to_map(s) for s in check.sources],
        "diverged_checks": check.diverged_checks,
    }
    if check.divergence_bps is not None:
        out["divergence_bps"] = check.divergence_bps
    if check.band_bps is not None:
        out["band_bps"] = check.band_bps
    if check.checked_at is not None:
        out["checked_at"] = to_iso(check.checked_at)
    return out


def _map_to_check(raw: dict) -> PriceCheck:
    return PriceCheck(
        status=CheckStatus(raw["status"]),
        sources=tuple(
            SourcePrice(s["source"], s["price"], from_iso(s["as_of"]), s.get("pair"), s.get("quote"),
                        s.get("quote_price"))
            for s in raw["sources"]
        ),
        divergence_bps=raw.get("divergence_bps"),
        band_bps=None if raw.get("band_bps") is None else int(raw["band_bps"]),
        checked_at=from_iso(raw["checked_at"]) if raw.get("checked_at") else None,
        diverged_checks=int(raw.get("diverged_checks", 0)),
    )


def deserialize(item: dict) -> dict:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


def asset_update(
    asset_id: str, changes: dict, *, names: dict | None = None, values: dict | None = None, sets: tuple = ()
) -> dict:
    """UpdateItem parameters that SET the changed fields (REMOVE for None) and nothing else.

    `names`, `values` and `sets` add the caller's own placeholders and assignments.
    The GSIs sort on rank_key, so it moves with market_cap_rank.
    """
    names, values, sets, removes = dict(names or {}), dict(values or {}), list(sets), []
    for i, (name, value) in enumerate(changes.items()):
        names[f"#f{i}"] = name
        if value is None:
            removes.append(f"#f{i}")
        else:
            values[f":v{i}"] = serialize(value)
            sets.append(f"#f{i} = :v{i}")
    if "price_max_age_seconds" in changes and "last_price_update" in changes:
        _set_fresh_until(changes, names, values, sets, removes)
    if "market_cap_rank" in changes:
        names["#rk"] = "rank_key"
        values[":rk"] = {"S": rank_key(changes["market_cap_rank"], asset_id)}
        sets.append("#rk = :rk")
    expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
    return {"UpdateExpression": expression, "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}


# An operator's change applies only to the version they saw: two operators acting
# on the same ETag cannot both win.
_VERSION_MATCHES = "attribute_exists(PK) AND #version = :expected"


def versioned_asset_update(asset_id: str, changes: dict, expected_version: int, actor: str, now: datetime) -> dict:
    """UpdateItem parameters for an operator's change: the fields, the next version, who and when.

    Conditional on the version the operator read (optimistic locking).
    """
    params = asset_update(
        asset_id,
        changes,
        names={"#version": "version", "#updated_at": "updated_at", "#by": "updated_by"},
        values={
            ":expected": {"N": str(expected_version)},
            ":next": {"N": str(expected_version + 1)},
            ":now": serialize(now),
            ":by": {"S": actor},
        },
        sets=("#version = :next", "#updated_at = :now", "#by = :by"),
    )
    return {**params, "ConditionExpression": _VERSION_MATCHES}


def asset_to_item(asset: Asset) -> dict:
    """The full item for an asset; None fields are left out rather than stored as NULL."""
    item = {
        **asset_key(asset.asset_id),
        "kind": {"S": ASSET_KIND},
        "rank_key": {"S": rank_key(asset.market_cap_rank, asset.asset_id)},
    }
    for name in Asset.__dataclass_fields__:
        value = getattr(asset, name)
        if value is not None and value != ():
            item[name] = serialize(value)
    if asset.price_max_age_seconds is not None and asset.last_price_update is not None:
        item[PRICE_FRESH_UNTIL] = serialize(asset.price_fresh_until(0))
    return item


def _asset_value(name: str, value):
    """One deserialized attribute as the Asset field holds it."""
    if name in _DATETIME_FIELDS:
        return from_iso(value)
    if name in _INT_FIELDS:
        return int(value)
    if name == "status":
        return AssetStatus(value)
    if name in ("categories", "sparkline_7d"):
        return tuple(value)
    if name == "price_check":
        return _map_to_check(value)
    return value


def item_to_asset(item: dict) -> Asset:
    raw = deserialize(item)
    values = {name: _asset_value(name, raw[name]) for name in Asset.__dataclass_fields__ if name in raw}
    if "categories" not in values and values.get("category"):
        # Written before categories existed: its one label is its only category.
        values["categories"] = (values["category"],)
    return Asset(**values)


def refresh_state_to_item(state: RefreshState) -> dict:
    item = dict(REFRESH_STATE_KEY)
    for name, value in vars(state).items():
        if value is not None:
            item[name] = serialize(value)
    return item


def item_to_refresh_state(item: dict) -> RefreshState:
    raw = deserialize(item)
    return RefreshState(
        last_success_at=from_iso(raw["last_success_at"]) if "last_success_at" in raw else None,
        last_attempt_at=from_iso(raw["last_attempt_at"]) if "last_attempt_at" in raw else None,
        last_error=raw.get("last_error"),
        breaker_state=raw.get("breaker_state"),
    )


def history_item(asset_id: str, at: datetime, point: dict, expires: datetime) -> dict:
    item = {
        "PK": {"S": HISTORY_PREFIX + asset_id},
        "SK": {"S": to_iso(at)},
        # DynamoDB TTL wants epoch seconds as a Number.
        "expires_at": {"N": str(int(expires.timestamp()))},
    }
    item.update({name: serialize(value) for name, value in point.items()})
    return item


def item_to_point(item: dict) -> PricePoint:
    raw = deserialize(item)
    return PricePoint(
        at=from_iso(raw["SK"]),
        price=raw["price"],
        market_cap=raw.get("market_cap"),
        volume_24h=raw.get("volume_24h"),
    )


def audit_partition(asset_id: str) -> dict:
    return {"S": AUDIT_PREFIX + asset_id}


def audit_start_key(asset_id: str, sort_key: str) -> dict:
    """ExclusiveStartKey that resumes an audit query right after the given change."""
    return {"PK": audit_partition(asset_id), "SK": {"S": sort_key}}


def audit_item(change: StatusChange) -> dict:
    return {
        "PK": audit_partition(change.asset_id),
        "SK": {"S": f"{to_iso(change.at)}#{change.version:010d}"},
        "from_status": {"S": change.from_status.value},
        "to_status": {"S": change.to_status.value},
        "actor": {"S": change.actor},
        "reason": {"S": change.reason or "-"},
        "request_id": {"S": change.request_id},
        "version": {"N": str(change.version)},
    }


def item_to_audit(item: dict) -> StatusChange:
    raw = deserialize(item)
    return StatusChange(
        asset_id=raw["PK"][len(AUDIT_PREFIX):],
        from_status=AssetStatus(raw["from_status"]),
        to_status=AssetStatus(raw["to_status"]),
        actor=raw["actor"],
        reason="" if raw["reason"] == "-" else raw["reason"],
        request_id=raw["request_id"],
        at=from_iso(raw["SK"].rsplit("#", 1)[0]),
        version=int(raw["version"]),
    )


def migration_record(name: str, applied_at: datetime) -> dict:
    return {"PK": {"S": MIGRATION_PK}, "SK": {"S": name}, "applied_at": {"S": to_iso(applied_at)}}


def lease_key(name: str) -> dict:
    return {"PK": {"S": LEASE_PK}, "SK": {"S": name}}


# Lease attributes, by the placeholders lease conditions and updates use.
LEASE_NAMES = {"#owner": "owner", "#expires": "expires_ms", "#fence": "fence"}
# A renewal, a release or a fenced write only by the holder of this very fence.
LEASE_HELD = "#owner = :me AND #fence = :fence"


def item_to_lease(item: dict) -> Lease:
    raw = deserialize(item)
    return Lease(name=raw["SK"], owner=raw["owner"], fence=int(raw["fence"]), expires_ms=int(raw["expires_ms"]))


def fence_check(table_name: str, fence: Fence | None) -> dict | None:
    """A transaction action that fails unless the fence's holder still holds the lease (None: no fence)."""
    if fence is None:
        return None
    return {
        "ConditionCheck": {
            "TableName": table_name,
            "Key": lease_key(fence.lease),
            "ConditionExpression": LEASE_HELD,
            "ExpressionAttributeNames": {"#owner": "owner", "#fence": "fence"},
            "ExpressionAttributeValues": {":me": {"S": fence.owner}, ":fence": {"N": str(fence.token)}},
        }
    }


# -- history: daily candles, day reports, recommendation profiles ----------------
#
#   item               PK                   SK            expires_at
#   daily candle       CANDLE#<asset_id>    <YYYY-MM-DD>  day + 366 d   (the 1d history reads one Query)
#   day report row     DAY#<YYYY-MM-DD>     <asset_id>    day + 366 d   (the daily report reads one Query)
#   day totals         DAY#<YYYY-MM-DD>     ~TOTALS       day + 366 d   ("~" sorts after every asset id)
#   profile            RECOMMEND            <asset_id>    -             (similar + returns, one Query for all)
#   retired profile    RECOMMEND            <asset_id>    now + 2 d     (retired: true; the asset stopped being tradable)

CANDLE_PREFIX = "CANDLE#"
DAY_PREFIX = "DAY#"
DAY_TOTALS_SK = "~TOTALS"
PROFILE_PK = "RECOMMEND"
_CANDLE_FIELDS = ("open", "high", "low", "close", "count", "market_cap", "volume_24h")


def _ttl(day, days: int) -> dict:
    expires = datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() + days * 86400
    return {"N": str(int(expires))}


def candle_items(asset_id: str, candle: Candle, retention_days: int) -> list[dict]:
    """The two items of one asset-day: under the asset (history) and under the day (report)."""
    day = candle.start.date()
    values = {name: serialize(getattr(candle, name)) for name in _CANDLE_FIELDS if getattr(candle, name) is not None}
    ttl = _ttl(day, retention_days)
    return [
        {"PK": {"S": CANDLE_PREFIX + asset_id}, "SK": {"S": day.isoformat()}, "expires_at": ttl, **values},
        {"PK": {"S": DAY_PREFIX + day.isoformat()}, "SK": {"S": asset_id}, "expires_at": ttl, **values},
    ]


def item_to_candle(item: dict, day_from_sk: bool) -> Candle:
    """A Candle from either candle item (`day_from_sk`: the asset-partition one)."""
    raw = deserialize(item)
    day = date.fromisoformat(raw["SK"] if day_from_sk else raw["PK"][len(DAY_PREFIX):])
    return Candle(
        start=day_start(day),
        open=raw["open"], high=raw["high"], low=raw["low"], close=raw["close"], count=int(raw["count"]),
        market_cap=raw.get("market_cap"), volume_24h=raw.get("volume_24h"),
    )


def day_totals_item(totals: DayTotals, retention_days: int) -> dict:
    return {
        "PK": {"S": DAY_PREFIX + totals.day.isoformat()},
        "SK": {"S": DAY_TOTALS_SK},
        "expires_at": _ttl(totals.day, retention_days),
        "assets": {"N": str(totals.assets)},
        "market_cap": serialize(totals.market_cap),
        "volume_24h": serialize(totals.volume_24h),
        "rolled_at": serialize(totals.rolled_at),
    }


def item_to_day_totals(item: dict) -> DayTotals:
    raw = deserialize(item)
    return DayTotals(
        day=date.fromisoformat(raw["PK"][len(DAY_PREFIX):]), assets=int(raw["assets"]),
        market_cap=raw["market_cap"], volume_24h=raw["volume_24h"], rolled_at=from_iso(raw["rolled_at"]),
    )


def profile_item(profile: Profile) -> dict:
    return {
        "PK": {"S": PROFILE_PK},
        "SK": {"S": profile.asset_id},
        "categories": serialize(list(profile.categories)),
        **({"market_cap": serialize(profile.market_cap)} if profile.market_cap is not None else {}),
        "returns": serialize(dict(profile.returns)),
        "similar": serialize([
            {"asset_id": s.asset_id, "score": s.score, "reasons": list(s.reasons)} for s in profile.similar
        ]),
    }


def item_to_profile(item: dict) -> Profile:
    raw = deserialize(item)
    return Profile(
        asset_id=raw["SK"],
        categories=tuple(raw["categories"]),
        market_cap=raw.get("market_cap"),
        returns=dict(sorted(raw["returns"].items())),
        similar=tuple(Similar(s["asset_id"], s["score"], tuple(s["reasons"])) for s in raw["similar"]),
    )


# A retired profile lingers this long before DynamoDB's TTL removes it.
RETIRED_PROFILE_SECONDS = 2 * 86400


def retired_profile_item(asset_id: str, now: datetime) -> dict:
    return {
        "PK": {"S": PROFILE_PK},
        "SK": {"S": asset_id},
        "retired": {"BOOL": True},
        "expires_at": {"N": str(int(now.timestamp()) + RETIRED_PROFILE_SECONDS)},
    }


def is_retired_profile(item: dict) -> bool:
    return item.get("retired", {}).get("BOOL", False)


# -- operator-priced assets (docs/api.md "Operator-created assets") -------------
#
# An asset with its own staleness bound (price_max_age_seconds) also carries
# price_fresh_until = last_price_update + that bound (ISO), so a listing's filter
# can keep it while it is fresh: DynamoDB cannot add seconds to an attribute.
# Written with both fields (create, import), never by the refresh (it prices
# linked assets only). Costs no extra read or write: one more attribute.
PRICE_FRESH_UNTIL = "price_fresh_until"


def _set_fresh_until(changes: dict, names: dict, values: dict, sets: list, removes: list) -> None:
    names["#pfu"] = PRICE_FRESH_UNTIL
    priced_at, bound = changes["last_price_update"], changes["price_max_age_seconds"]
    if priced_at is None or bound is None:
        removes.append("#pfu")
    else:
        values[":pfu"] = serialize(priced_at + timedelta(seconds=bound))
        sets.append("#pfu = :pfu")


# -- categories (issue 12) ------------------------------------------------------
#
# On the asset item: `category` (the primary slug, the by_category index key),
# `categories` (a List of slugs, primary first) and, once an operator set them,
# `categories_set_by` (the token name): the membership job never writes an item
# carrying it. The job's last run is its own item, CATEGORIES/STATE.
# Cost: a membership run reads the catalog once (one by_rank Query, projected to
# five attributes) and writes one UpdateItem per asset whose categories changed;
# an operator's change is one transaction (asset, audit record, counts).

CATEGORIES_STATE_KEY = {"PK": {"S": "CATEGORIES"}, "SK": {"S": "STATE"}}
CATEGORIES_SET_BY = "categories_set_by"
MEMBERSHIP_PROJECTION = {
    "ProjectionExpression": "#id, #cg, #rank, #cat, #cats, #by",
    "ExpressionAttributeNames": {
        "#id": "asset_id", "#cg": "coingecko_id", "#rank": "market_cap_rank", "#cat": "category",
        "#cats": "categories", "#by": CATEGORIES_SET_BY,
    },
}


def item_to_membership(item: dict) -> tuple[str, str | None, int | None, tuple[str, ...], str | None]:
    """(asset_id, coingecko_id, rank, stored categories primary first, who set them or None for the source)."""
    raw = deserialize(item)
    # An item from before categories: its one label (the job's condition then expects no list).
    categories = tuple(raw["categories"]) if "categories" in raw else ()
    rank = raw.get("market_cap_rank")
    return raw["asset_id"], raw.get("coingecko_id"), None if rank is None else int(rank), categories, raw.get(
        CATEGORIES_SET_BY
    )


# The job writes only what it read, and never what an operator set: a change an
# operator made between the job's read and its write wins.
_SOURCE_MAY_SET = "attribute_exists(PK) AND attribute_not_exists(#by) AND "


def source_categories_update(asset_id: str, before: tuple[str, ...], after: tuple[str, ...], now: datetime) -> dict:
    """UpdateItem parameters for the membership job: the primary and the list, nothing else (no price, no version)."""
    params = asset_update(asset_id, {"category": after[0], "categories": after, "updated_at": now})
    names = {**params["ExpressionAttributeNames"], "#by": CATEGORIES_SET_BY, "#cats_read": "categories"}
    values = dict(params["ExpressionAttributeValues"])
    if before:
        values[":cats_read"] = serialize(before)
        unchanged = "#cats_read = :cats_read"
    else:
        unchanged = "attribute_not_exists(#cats_read)"
    return {
        **params,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
        "ConditionExpression": _SOURCE_MAY_SET + unchanged,
    }


def operator_categories_update(
    asset_id: str, categories: tuple[str, ...], expected_version: int, actor: str, now: datetime, pin: bool = True
) -> dict:
    """UpdateItem parameters for an operator's categories at the version read.

    `pin` marks them as the operator's (the job leaves them alone); without it
    the mark is removed and the next membership run may change them.
    """
    changes = {"category": categories[0], "categories": categories, CATEGORIES_SET_BY: actor if pin else None}
    return versioned_asset_update(asset_id, changes, expected_version, actor, now)


def categories_audit_item(change: StatusChange, before: tuple[str, ...], after: tuple[str, ...]) -> dict:
    """The audit record of a categories change: in the asset's audit partition, status unchanged."""
    return {
        **audit_item(change),
        "field": {"S": "categories"},
        "from_categories": serialize(list(before)),
        "to_categories": serialize(list(after)),
    }


def categories_state_item(ran_at: datetime, report: dict) -> dict:
    return {**CATEGORIES_STATE_KEY, "ran_at": serialize(ran_at), "report": {"S": json.dumps(report, sort_keys=True)}}


def item_to_categories_ran_at(item: dict | None) -> datetime | None:
    return from_iso(item["ran_at"]["S"]) if item and "ran_at" in item else None


# -- live stream feed (issue 13) ---------------------------------------------
# Every committed change is one feed entry, written in the SAME transaction as
# the change, so an entry exists iff the change committed:
#
#     feed head     CATALOG   FEED_SEQ          seq: the last seq handed out
#     feed entry    FEED      <seq:015d>        at, events (JSON), expires_at (TTL)
#
# A writer reserves a seq (one UpdateItem ADD on the head) before its
# transaction; a transaction that fails writes a void entry for its seq, so
# readers never wait on a seq that will not come. One entry holds every asset
# change of one transaction: a refresh of 250 assets is 5 transactions, so 5
# reservations and 5 entries (not 250). Each asset carries `stream_seq`, its own
# count of changes, moved by one in the same conditional update.
FEED_PK = "FEED"
FEED_HEAD_KEY = {"PK": {"S": "CATALOG"}, "SK": {"S": "FEED_SEQ"}}
FEED_SEQ_WIDTH = 15
STREAM_SEQ = "stream_seq"
_FEED_ENTRY_IS_NEW = "attribute_not_exists(PK)"


# Each event names one asset. A price or status event also carries the asset's
# stream_seq after the write (`asset_seq`) and the fields the write SET
# (`fields`, each in DynamoDB's attribute form, so numbers stay exact and decode
# by the same rules as an item): the read model applies it in place. Every other
# asset write (creates, imports, catalog and category writes: rare) records a
# `touch`, and readers re-read that asset.
TOUCH = "asset"


def feed_fields(changes: dict) -> dict:
    """The written fields of an asset, as a feed event carries them (None: removed)."""
    return {
        name: None if value is None else serialize(value)
        for name, value in changes.items()
        if name in Asset.__dataclass_fields__
    }


def fields_from_feed(fields: dict) -> dict:
    """Asset field values from a feed event's `fields`."""
    return {
        name: None if wire is None else _asset_value(name, _deserializer.deserialize(wire))
        for name, wire in fields.items()
        if name in Asset.__dataclass_fields__
    }


def touch_event(asset_id: str) -> dict:
    """The feed event of a write that readers re-read the asset for."""
    return {"type": TOUCH, "asset_id": asset_id}


def feed_key(seq: int) -> dict:
    return {"PK": {"S": FEED_PK}, "SK": {"S": f"{seq:0{FEED_SEQ_WIDTH}d}"}}


def feed_reserve() -> dict:
    """UpdateItem parameters that hand out the next feed seq (ADD starts a missing head at 0)."""
    return {
        "Key": FEED_HEAD_KEY,
        "UpdateExpression": "ADD #seq :one",
        "ExpressionAttributeNames": {"#seq": "seq"},
        "ExpressionAttributeValues": {":one": {"N": "1"}},
        "ReturnValues": "UPDATED_NEW",
    }


def item_to_feed_head(item: dict | None) -> int:
    return int(item["seq"]["N"]) if item and "seq" in item else 0


def feed_entry_put(table_name: str, seq: int, at: datetime, events: list[dict], expires: datetime) -> dict:
    """A transaction action that writes entry `seq` (never over an existing one)."""
    item = {
        **feed_key(seq),
        "seq": {"N": str(seq)},
        "at": {"S": to_iso(at)},
        # JSON keeps Decimals exact as strings and the item small (one attribute, not a map per event).
        "events": {"S": json.dumps(events, separators=(",", ":"), default=str)},
        "expires_at": {"N": str(int(expires.timestamp()))},
    }
    return {"Put": {"TableName": table_name, "Item": item, "ConditionExpression": _FEED_ENTRY_IS_NEW}}


def feed_query(table_name: str, after: int, limit: int) -> dict:
    """Query parameters for the entries after seq `after`, oldest first (strongly consistent)."""
    return {
        "TableName": table_name,
        "KeyConditionExpression": "PK = :pk AND SK > :after",
        "ExpressionAttributeValues": {
            ":pk": {"S": FEED_PK},
            ":after": {"S": f"{after:0{FEED_SEQ_WIDTH}d}"},
        },
        "ConsistentRead": True,
        "Limit": limit,
    }


def item_to_feed_entry(item: dict) -> tuple[int, datetime, list[dict]]:
    return int(item["seq"]["N"]), from_iso(item["at"]["S"]), json.loads(item["events"]["S"])


def stream_seq_step(previous: int) -> tuple[str, str, dict, dict]:
    """(condition, SET clause, names, values) that move an asset's stream_seq from `previous` to the next.

    Conditional on `previous`, so two writers that read the same asset cannot
    hand out the same per-asset sequence.
    """
    names = {"#sseq": STREAM_SEQ}
    values = {":sprev": {"N": str(previous)}, ":snext": {"N": str(previous + 1)}}
    condition = "#sseq = :sprev"
    if previous == 0:
        condition = f"(attribute_not_exists(#sseq) OR {condition})"
    return condition, "#sseq = :snext", names, values


# -- cross-checked prices (issue 22; store/crosscheck.py) -------------------------
CROSSCHECK_PK = "CROSSCHECK"


def pairs_key(exchange: str) -> dict:
    return {"PK": {"S": CROSSCHECK_PK}, "SK": {"S": f"PAIRS#{exchange}"}}


def pairs_item(exchange: str, pairs: dict[str, Pair], refreshed_at: datetime) -> dict:
    # One JSON attribute: a map of hundreds of small maps costs more to write and read as attributes.
    body = {coin: [p.symbol, p.base, p.quote, p.quote_coin_id] for coin, p in sorted(pairs.items())}
    return {
        **pairs_key(exchange),
        "pairs": {"S": json.dumps(body, separators=(",", ":"))},
        "refreshed_at": serialize(refreshed_at),
    }


def item_to_pairs(item: dict | None) -> tuple[dict[str, Pair], datetime | None]:
    if not item:
        return {}, None
    body = json.loads(item["pairs"]["S"])
    return {coin: Pair(*fields) for coin, fields in body.items()}, from_iso(item["refreshed_at"]["S"])


def band_audit_item(change: StatusChange, before: int | None, after: int | None) -> dict:
    """The audit record of an operator's band change: in the asset's audit partition, status unchanged."""
    item = {**audit_item(change), "field": {"S": "price_band_bps"}}
    for name, value in (("from_band_bps", before), ("to_band_bps", after)):
        item[name] = {"NULL": True} if value is None else {"N": str(value)}
    return item


def crosscheck_state_key(source: str) -> dict:
    return {"PK": {"S": CROSSCHECK_PK}, "SK": {"S": f"STATE#{source}"}}


_STATE_TIMES = ("last_success_at", "last_attempt_at", "mapping_refreshed_at")


def crosscheck_state_item(state: CrossCheckState) -> dict:
    item = crosscheck_state_key(state.source)
    for name in _STATE_TIMES:
        if getattr(state, name) is not None:
            item[name] = serialize(getattr(state, name))
    for name in ("last_error", "breaker_state"):
        if getattr(state, name):
            item[name] = {"S": getattr(state, name)}
    item["counts"] = serialize({k: int(v) for k, v in state.counts.items()})
    item["diverged"] = serialize(list(state.diverged))
    item["pairs"] = {"N": str(state.pairs)}
    return item


def item_to_crosscheck_state(source: str, item: dict | None) -> CrossCheckState:
    if not item:
        return CrossCheckState(source)
    raw = deserialize(item)
    return CrossCheckState(
        source=source,
        **{name: from_iso(raw[name]) for name in _STATE_TIMES if name in raw},
        last_error=raw.get("last_error"),
        breaker_state=raw.get("breaker_state"),
        counts={k: int(v) for k, v in raw.get("counts", {}).items()},
        diverged=tuple(raw.get("diverged", ())),
        pairs=int(raw.get("pairs", 0)),
    )
