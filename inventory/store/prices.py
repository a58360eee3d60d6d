"""PriceStore: writes refreshed market figures with their history points, and reads history."""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..domain import Fence, PricePoint
from ..domain.pricecheck import PRIMARY_SOURCE, PriceCheck, check_plain
from . import mapping
from .dynamo import query_items, write_groups
from .feed import DEFAULT_FEED_RETENTION_SECONDS, FeedStore

log = logging.getLogger(__name__)

# Write the new figures only onto an asset that exists and holds no newer price,
# so a slow or late refresh can never replace a fresher price with an older one.
# A price from the second source (price_source set, a CoinGecko outage) gives way to
# the primary's next price whatever their times: CoinGecko is primary again at once.
_NOT_NEWER_STORED = "attribute_exists(PK) AND (attribute_not_exists(#lpu) OR #lpu <= :lpu OR attribute_exists(#psrc))"
# A check is written only onto the asset as it was read (its stream_seq): a price
# written since then makes the check moot, and the next check is due anyway.
_ASSET_EXISTS = "attribute_exists(PK)"


@dataclass(frozen=True)
class PriceUpdate:
    """New market figures for one asset; `changes` holds only fields that differ."""

    asset_id: str
    changes: dict
    last_price_update: datetime
    point: dict  # the history point: price, market_cap, volume_24h
    stream_seq: int = 0  # the asset's stream_seq as read; the write moves it to the next
    # 24h change figures as of this update, changed or not: the stream sends them with each price.
    day_change: dict = field(default_factory=dict)

    def feed_event(self) -> dict:
        """This update as the live stream's feed records it: the price, where it came from, its check."""
        event = {
            "type": "price",
            "asset_id": self.asset_id,
            "asset_seq": self.stream_seq + 1,
            "price": self.point.get("price"),
            "price_change_24h": self.day_change.get("price_change_24h"),
            "price_change_percentage_24h": self.day_change.get("price_change_percentage_24h"),
            "as_of": mapping.to_iso(self.last_price_update),
            "source": self.changes.get("price_source") or PRIMARY_SOURCE,
            "fields": mapping.feed_fields({**self.changes, "last_price_update": self.last_price_update}),
        }
        if self.changes.get("price_check") is not None:
            event["price_check"] = check_plain(self.changes["price_check"])
        return event


@dataclass(frozen=True)
class CheckUpdate:
    """A new check of an asset's stored price (no new price): one conditional SET."""

    asset_id: str
    check: PriceCheck | None  # None: the asset lost its pair, nothing compares it now
    stream_seq: int = 0

    def feed_event(self) -> dict:
        event = {
            "type": "check",
            "asset_id": self.asset_id,
            "asset_seq": self.stream_seq + 1,
            "fields": mapping.feed_fields({"price_check": self.check}),
        }
        if self.check is not None:
            event["price_check"] = check_plain(self.check)
        return event


@dataclass
class ApplyResult:
    applied: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # missing, or a newer price is stored


class PriceStore:
    def __init__(
        self, client, table_name: str, history_days: int, write_concurrency: int = 4, feed: FeedStore | None = None
    ):
        self.client = client
        self.table_name = table_name
        self.history_days = history_days
        self.write_concurrency = write_concurrency
        # Every price write records its changes in the live stream's feed, in its own transaction.
        self.feed = feed or FeedStore(client, table_name, DEFAULT_FEED_RETENTION_SECONDS)

    def apply(self, updates: list[PriceUpdate], fence: Fence | None = None) -> ApplyResult:
        """Write each update with its history point atomically, up to 50 assets per call.

        Only the fields named in `changes` (market figures, source facts) are SET; status and every other
        operator field are never part of the write, so a concurrent status change
        cannot be lost. With a `fence`, nothing is written once its lease is lost.

        :raises LeaseLost: the fence's lease has moved on.
        """
        return self._write([self._actions(u) for u in updates], updates, fence)

    def record_checks(self, updates: list[CheckUpdate], fence: Fence | None = None) -> ApplyResult:
        """Write each asset's new check, only onto the asset as read (its stream_seq), 50 a transaction.

        :raises LeaseLost: the fence's lease has moved on.
        """
        return self._write([[self._check_action(u)] for u in updates], updates, fence)

    def _write(self, groups: list[list[dict]], updates: list, fence: Fence | None) -> ApplyResult:
        """One group of actions per update, each update's feed event journalled with its transaction."""
        applied, rejected = write_groups(
            self.client,
            groups,
            self.write_concurrency,
            mapping.fence_check(self.table_name, fence),
            journal=lambda batch: self.feed.journal([updates[i].feed_event() for i in batch]),
        )
        return ApplyResult(
            applied=[updates[i].asset_id for i in applied],
            rejected=[updates[i].asset_id for i in rejected],
        )

    def _check_action(self, update: CheckUpdate) -> dict:
        seq_condition, seq_set, seq_names, seq_values = mapping.stream_seq_step(update.stream_seq)
        params = mapping.asset_update(
            update.asset_id, {"price_check": update.check}, names=seq_names, values=seq_values, sets=(seq_set,)
        )
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": mapping.asset_key(update.asset_id),
                "ConditionExpression": f"{_ASSET_EXISTS} AND {seq_condition}",
                **params,
            }
        }

    def record_first_points(self, assets, fence: Fence | None = None) -> None:
        """History points for newly added priced assets (their first price)."""
        groups = [
            [self._point_put(a.asset_id, a.last_price_update,
                             {"price": a.current_price, "market_cap": a.market_cap, "volume_24h": a.volume_24h})]
            for a in assets
            if a.current_price is not None and a.last_price_update is not None
        ]
        write_groups(self.client, groups, self.write_concurrency, mapping.fence_check(self.table_name, fence))

    def record_points(self, asset_id: str, points: list[PricePoint], kept_from: datetime) -> int:
        """Store backfilled points, each kept PRICE_HISTORY_DAYS from `kept_from`; return the count."""
        groups = [
            [self._point_put(asset_id, p.at, {"price": p.price, "market_cap": p.market_cap,
                                               "volume_24h": p.volume_24h}, kept_from)]
            for p in points
        ]
        applied, _ = write_groups(self.client, groups, self.write_concurrency)
        return len(applied)

    def _point_put(self, asset_id: str, at: datetime, point: dict, kept_from: datetime | None = None) -> dict:
        expires = (kept_from or at) + timedelta(days=self.history_days)
        values = {k: v for k, v in point.items() if v is not None}
        return {"Put": {"TableName": self.table_name, "Item": mapping.history_item(asset_id, at, values, expires)}}

    def _actions(self, update: PriceUpdate) -> list[dict]:
        seq_condition, seq_set, seq_names, seq_values = mapping.stream_seq_step(update.stream_seq)
        params = mapping.asset_update(
            update.asset_id,
            update.changes,
            names={"#lpu": "last_price_update", "#psrc": "price_source", **seq_names},
            values={":lpu": mapping.serialize(update.last_price_update), **seq_values},
            sets=(seq_set,),
        )
        return [
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": mapping.asset_key(update.asset_id),
                    "ConditionExpression": f"{_NOT_NEWER_STORED} AND {seq_condition}",
                    **params,
                }
            },
            self._point_put(update.asset_id, update.last_price_update, update.point),
        ]

    def history(self, asset_id: str, start: datetime, end: datetime, limit: int) -> list[PricePoint]:
        """Points for one asset between start and end (inclusive), oldest first, by key order."""
        request = {
            "TableName": self.table_name,
            "KeyConditionExpression": "PK = :pk AND SK BETWEEN :start AND :end",
            "ExpressionAttributeValues": {
                ":pk": {"S": mapping.HISTORY_PREFIX + asset_id},
                ":start": {"S": mapping.to_iso(start)},
                ":end": {"S": mapping.to_iso(end)},
            },
            "Limit": limit,
        }
        items = itertools.islice(query_items(self.client, request), limit)
        return [mapping.item_to_point(item) for item in items]
