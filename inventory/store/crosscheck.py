"""CrossCheckStore: the exchange pairs that map CoinGecko ids (refreshed daily) and the last check's state.

    item              PK            SK                     attributes
    pair map          CROSSCHECK    PAIRS#<exchange>       pairs (JSON), refreshed_at
    check state       CROSSCHECK    STATE#<source>         last_success_at, last_attempt_at, last_error, ...

One item each: the pair map is bounded by what one exchange lists (hundreds of
coins, tens of KB), and the job reads it whole every check.
"""

from __future__ import annotations

from datetime import datetime

from ..domain import Asset, Fence, StatusChange, StoreError, VersionConflict
from ..domain.pricecheck import CrossCheckState, Pair, PriceCheck
from . import mapping
from .dynamo import TransactionCancelled, transact, translate_errors, write_groups
from .feed import FeedStore


class CrossCheckStore:
    def __init__(self, client, table_name: str, feed: FeedStore | None = None):
        self.client = client
        self.table_name = table_name
        self.feed = feed

    def set_band(self, asset: Asset, band_bps: int | None, check: PriceCheck | None, actor: str, reason: str,
                 request_id: str, now) -> None:
        """An operator's band for the asset's price check, its check judged anew, the audit record and the
        feed entry: one transaction at the version read. The asset's stream_seq moves too, so a check
        computed against the old band before this write can no longer land after it.

        :raises VersionConflict: the asset changed (or vanished) since it was read.
        """
        version = asset.version + 1
        change = StatusChange(asset.asset_id, asset.status, asset.status, actor, reason, request_id, now, version)
        changes = {"price_band_bps": band_bps, "price_check": check}
        update = mapping.versioned_asset_update(asset.asset_id, changes, asset.version, actor, now)
        seq_condition, seq_set, seq_names, seq_values = mapping.stream_seq_step(asset.stream_seq)
        update["UpdateExpression"] = update["UpdateExpression"].replace("SET ", f"SET {seq_set}, ", 1)
        update["ExpressionAttributeNames"].update(seq_names)
        update["ExpressionAttributeValues"].update(seq_values)
        update["ConditionExpression"] += f" AND {seq_condition}"
        event = {
            "type": "check", "asset_id": asset.asset_id, "asset_seq": asset.stream_seq + 1,
            "fields": mapping.feed_fields({**changes, "version": version, "updated_at": now, "updated_by": actor}),
        }
        actions = [
            {"Update": {"TableName": self.table_name, "Key": mapping.asset_key(asset.asset_id), **update}},
            {"Put": {"TableName": self.table_name, "Item": mapping.band_audit_item(change, asset.price_band_bps,
                                                                                   band_bps),
                     "ConditionExpression": "attribute_not_exists(PK)"}},
        ]
        try:
            with self.feed.recording([event]) as entry:
                transact(self.client, [*actions, entry.action])
        except TransactionCancelled as exc:
            if "ConditionalCheckFailed" in exc.reasons or "TransactionConflict" in exc.reasons:
                raise VersionConflict() from exc
            raise StoreError("the band write kept conflicting with other writes") from exc

    def pairs(self, exchange: str) -> tuple[dict[str, Pair], datetime | None]:
        """coingecko id -> its pair on `exchange`, and when the map was refreshed (None: never)."""
        with translate_errors("GetItem"):
            response = self.client.get_item(
                TableName=self.table_name, Key=mapping.pairs_key(exchange), ConsistentRead=True
            )
        return mapping.item_to_pairs(response.get("Item"))

    def put_pairs(self, exchange: str, pairs: dict[str, Pair], refreshed_at: datetime,
                  fence: Fence | None = None) -> None:
        """Replace the pair map; with a `fence`, only while its lease is held.

        :raises LeaseLost: the fence's lease has moved on.
        """
        put = {"Put": {"TableName": self.table_name, "Item": mapping.pairs_item(exchange, pairs, refreshed_at)}}
        write_groups(self.client, [[put]], 1, mapping.fence_check(self.table_name, fence))

    def state(self, source: str) -> CrossCheckState:
        with translate_errors("GetItem"):
            response = self.client.get_item(TableName=self.table_name, Key=mapping.crosscheck_state_key(source))
        return mapping.item_to_crosscheck_state(source, response.get("Item"))

    def put_state(self, state: CrossCheckState) -> None:
        with translate_errors("PutItem"):
            self.client.put_item(TableName=self.table_name, Item=mapping.crosscheck_state_item(state))
