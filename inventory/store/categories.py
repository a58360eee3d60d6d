"""CategoryStore: asset categories as the membership job and operators write them, and the job's last run."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from ..domain import Asset, StatusChange, StoreError, VersionConflict
from . import mapping
from .assets import catalog_query
from .dynamo import TransactionCancelled, query_items, transact, translate_errors
from .feed import DEFAULT_FEED_RETENTION_SECONDS, FeedStore

# An audit record is written once; a second write with the same key is a bug.
_AUDIT_IS_NEW = "attribute_not_exists(PK)"


@dataclass(frozen=True)
class Membership:
    """What the membership job needs of an asset (a projection, not the whole item)."""

    asset_id: str
    coingecko_id: str | None
    rank: int | None
    categories: tuple[str, ...]  # as stored, primary first; () when the item has no list yet
    set_by: str | None  # the operator who set them; None when the source did


class CategoryStore:
    def __init__(self, client, table_name: str, feed: FeedStore | None = None):
        self.client = client
        self.table_name = table_name
        # Every asset write records itself in the feed, in its own transaction (store/feed.py).
        self.feed = feed or FeedStore(client, table_name, DEFAULT_FEED_RETENTION_SECONDS)

    def memberships(self) -> Iterator[Membership]:
        """Every asset's stored categories, through the by_rank index (a Query, not a Scan)."""
        request = catalog_query(self.table_name)
        request.update(
            ProjectionExpression=mapping.MEMBERSHIP_PROJECTION["ProjectionExpression"],
            ExpressionAttributeNames={
                **request["ExpressionAttributeNames"], **mapping.MEMBERSHIP_PROJECTION["ExpressionAttributeNames"]
            },
        )
        for item in query_items(self.client, request):
            yield Membership(*mapping.item_to_membership(item))

    def set_from_source(self, member: Membership, categories: tuple[str, ...], now: datetime) -> bool:
        """Store the source's categories unless an operator set them or they changed since read; False then."""
        update = {
            "TableName": self.table_name,
            "Key": mapping.asset_key(member.asset_id),
            **mapping.source_categories_update(member.asset_id, member.categories, categories, now),
        }
        try:
            self._transact(member.asset_id, [{"Update": update}])
        except TransactionCancelled as exc:
            if "ConditionalCheckFailed" in exc.reasons:
                return False
            raise StoreError("the categories write kept conflicting with other writes") from exc
        return True

    def _transact(self, asset_id: str, actions: list[dict]) -> None:
        """The actions and the asset's feed entry in one transaction.

        :raises TransactionCancelled:
        """
        with self.feed.recording([mapping.touch_event(asset_id)]) as entry:
            transact(self.client, [*actions, entry.action])

    def set_by_operator(
        self,
        asset: Asset,
        categories: tuple[str, ...],
        actor: str,
        reason: str,
        request_id: str,
        now: datetime,
        pin: bool = True,
    ) -> None:
        """The operator's categories at the version read, its audit record and its feed entry: one transaction.

        `pin=False` hands the asset back to the membership job (categories kept until its next run).

        :raises VersionConflict: the asset changed (or vanished) since it was read.
        """
        version = asset.version + 1
        change = StatusChange(asset.asset_id, asset.status, asset.status, actor, reason, request_id, now, version)
        update = {
            "TableName": self.table_name,
            "Key": mapping.asset_key(asset.asset_id),
            **mapping.operator_categories_update(asset.asset_id, categories, asset.version, actor, now, pin),
        }
        audit = {
            "TableName": self.table_name,
            "Item": mapping.categories_audit_item(change, asset.categories, categories),
            "ConditionExpression": _AUDIT_IS_NEW,
        }
        try:
            self._transact(asset.asset_id, [{"Update": update}, {"Put": audit}])
        except TransactionCancelled as exc:
            if "ConditionalCheckFailed" in exc.reasons or "TransactionConflict" in exc.reasons:
                raise VersionConflict() from exc
            raise StoreError("the categories write kept conflicting with other writes") from exc

    def last_run(self) -> datetime | None:
        """When the membership job last completed; None before its first run."""
        with translate_errors("GetItem"):
            item = self.client.get_item(
                TableName=self.table_name, Key=mapping.CATEGORIES_STATE_KEY, ConsistentRead=True
            ).get("Item")
        return mapping.item_to_categories_ran_at(item)

    def record_run(self, ran_at: datetime, report: dict) -> None:
        with translate_errors("PutItem"):
            self.client.put_item(TableName=self.table_name, Item=mapping.categories_state_item(ran_at, report))
