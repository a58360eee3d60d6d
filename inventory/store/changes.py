"""StatusStore: operator status changes with optimistic locking, and their audit log."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime

from ..domain import (
    MAX_ATOMIC_CHANGES,
    Asset,
    AssetStatus,
    StatusChange,
    VersionConflict,
)
from . import mapping
from .dynamo import TransactionCancelled, query_items, transact
from .feed import DEFAULT_FEED_RETENTION_SECONDS, FeedStore

# An audit record is written once: a second one at the same time and version is a bug.
_AUDIT_IS_NEW = "attribute_not_exists(PK)"


@dataclass(frozen=True)
class PlannedChange:
    asset: Asset  # as read, with the version the caller expects
    to_status: AssetStatus
    reason: str


class StatusStore:
    def __init__(self, client, table_name: str, feed: FeedStore | None = None):
        self.client = client
        self.table_name = table_name
        # Every status change records itself in the live stream's feed, in its own transaction.
        self.feed = feed or FeedStore(client, table_name, DEFAULT_FEED_RETENTION_SECONDS)

    def _actions(self, plan: PlannedChange, actor: str, request_id: str, now: datetime):
        change = StatusChange(
            asset_id=plan.asset.asset_id,
            from_status=plan.asset.status,
            to_status=plan.to_status,
            actor=actor,
            reason=plan.reason,
            request_id=request_id,
            at=now,
            version=plan.asset.version + 1,
        )
        params = mapping.versioned_asset_update(
            plan.asset.asset_id, {"status": plan.to_status}, plan.asset.version, actor, now
        )
        # The refresher moves stream_seq too (without a version), so it is a condition of its own.
        seq_condition, seq_set, seq_names, seq_values = mapping.stream_seq_step(plan.asset.stream_seq)
        params["UpdateExpression"] = params["UpdateExpression"].replace("SET ", f"SET {seq_set}, ", 1)
        params["ConditionExpression"] += f" AND {seq_condition}"
        params["ExpressionAttributeNames"].update(seq_names)
        params["ExpressionAttributeValues"].update(seq_values)
        update = {"Update": {"TableName": self.table_name, "Key": mapping.asset_key(plan.asset.asset_id), **params}}
        audit = {
            "Put": {
                "TableName": self.table_name,
                "Item": mapping.audit_item(change),
                "ConditionExpression": _AUDIT_IS_NEW,
            }
        }
        return [update, audit], change

    def apply(
        self,
        plans: list[PlannedChange],
        actor: str,
        request_id: str,
        now: datetime,
    ) -> list[StatusChange]:
        """Apply every change, its audit record and its feed entry in one transaction: all or none.

        :raises VersionConflict: an asset changed since it was read (errors name which).
        :raises ValueError: more than MAX_ATOMIC_CHANGES changes.
        """
        if len(plans) > MAX_ATOMIC_CHANGES:
            raise ValueError(f"at most {MAX_ATOMIC_CHANGES} changes fit one transaction")
        actions, changes = [], []
        for plan in plans:
            pair, change = self._actions(plan, actor, request_id, now)
            actions.extend(pair)
            changes.append(change)
        try:
            with self.feed.recording([_feed_event(plan, actor, now) for plan in plans]) as entry:
                transact(self.client, actions + [entry.action])
        except TransactionCancelled as exc:
            stale = [
                plan.asset.asset_id
                for plan, reason in zip(plans, exc.reasons[0 : 2 * len(plans) : 2])
                if reason == "ConditionalCheckFailed"
            ]
            if not stale and "TransactionConflict" in exc.reasons:
                # Conflicts that did not clear: none of them is known to be current.
                stale = [plan.asset.asset_id for plan in plans]
            raise VersionConflict(errors={"conflicts": stale}) from exc
        return changes

    def audit(self, asset_id: str, limit: int, after: str | None = None) -> tuple[list[StatusChange], str | None]:
        """Status changes of one asset, newest first; returns the page and the key to resume after."""
        request = {
            "TableName": self.table_name,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": mapping.audit_partition(asset_id)},
            "ScanIndexForward": False,
            "Limit": limit + 1,
        }
        if after:
            request["ExclusiveStartKey"] = mapping.audit_start_key(asset_id, after)
        items = list(itertools.islice(query_items(self.client, request), limit + 1))
        page = items[:limit]
        next_key = page[-1]["SK"]["S"] if len(items) > limit else None
        return [mapping.item_to_audit(item) for item in page], next_key


def written(plan: PlannedChange, actor: str, now: datetime) -> Asset:
    """The asset exactly as the change's transaction leaves it (its conditions pin what it was read as)."""
    return plan.asset.replace(
        status=plan.to_status, version=plan.asset.version + 1, updated_by=actor, stream_seq=plan.asset.stream_seq + 1,
        updated_at=mapping.from_iso(mapping.to_iso(now)),  # stored to the millisecond
    )


def _feed_event(plan: PlannedChange, actor: str, now: datetime) -> dict:
    """A status change as the feed records it (no reason: the stream is public)."""
    after = written(plan, actor, now)
    return {
        "type": "status",
        "asset_id": plan.asset.asset_id,
        "asset_seq": after.stream_seq,
        "status": plan.to_status.value,
        "from_status": plan.asset.status.value,
        "fields": mapping.feed_fields({
            "status": after.status, "version": after.version, "updated_at": now, "updated_by": actor,
        }),
    }
