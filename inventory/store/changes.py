"""StatusStore: operator status changes with optimistic locking and their audit log; batch reads."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from ..domain import Asset, AssetStatus, StatusChange, StoreError, VersionConflict
from . import mapping
from .dynamo import ConditionFailed, TransactionCancelled, translate_errors

# The change applies only to the version the operator saw: two operators acting
# on the same ETag cannot both win.
_VERSION_MATCHES = "attribute_exists(PK) AND #version = :expected"
_BATCH_GET_MAX = 100
_UNPROCESSED_RETRIES = 5


@dataclass(frozen=True)
class PlannedChange:
    asset: Asset  # as read, with the version the caller expects
    to_status: AssetStatus
    reason: str


class StatusStore:
    def __init__(self, client, table_name: str):
        self.client = client
        self.table_name = table_name

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
        update = {
            "Update": {
                "TableName": self.table_name,
                "Key": mapping.asset_key(plan.asset.asset_id),
                "UpdateExpression": "SET #status = :to, #version = :next, #updated_at = :now, #by = :by",
                "ConditionExpression": _VERSION_MATCHES,
                "ExpressionAttributeNames": {
                    "#status": "status", "#version": "version", "#updated_at": "updated_at", "#by": "updated_by",
                },
                "ExpressionAttributeValues": {
                    ":to": {"S": plan.to_status.value},
                    ":next": {"N": str(change.version)},
                    ":expected": {"N": str(plan.asset.version)},
                    ":now": mapping.serialize(now),
                    ":by": {"S": actor},
                },
            }
        }
        audit = {
            "Put": {
                "TableName": self.table_name,
                "Item": mapping.audit_item(change),
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        }
        return [update, audit], change

    def apply(self, plans: list[PlannedChange], actor: str, request_id: str, now: datetime) -> list[StatusChange]:
        """Apply every change and its audit record in one transaction: all or none.

        :raises VersionConflict: an asset changed since it was read (errors name which).
        """
        actions, changes = [], []
        for plan in plans:
            pair, change = self._actions(plan, actor, request_id, now)
            actions.extend(pair)
            changes.append(change)
        try:
            with translate_errors("TransactWriteItems"):
                self.client.transact_write_items(TransactItems=actions)
        except TransactionCancelled as exc:
            stale = [
                plan.asset.asset_id
                for plan, reason in zip(plans, exc.reasons[0::2])
                if reason == "ConditionalCheckFailed"
            ]
            if not stale and any(r == "TransactionConflict" for r in exc.reasons):
                stale = [plan.asset.asset_id for plan in plans]
            raise VersionConflict(errors={"conflicts": stale}) from exc
        return changes

    def audit(self, asset_id: str, limit: int, after: str | None = None) -> tuple[list[StatusChange], str | None]:
        """Status changes of one asset, newest first; returns the page and the key to resume after."""
        request = {
            "TableName": self.table_name,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": mapping.AUDIT_PREFIX + asset_id}},
            "ScanIndexForward": False,
            "Limit": limit + 1,
        }
        if after:
            request["ExclusiveStartKey"] = {"PK": {"S": mapping.AUDIT_PREFIX + asset_id}, "SK": {"S": after}}
        items: list[dict] = []
        while len(items) <= limit:
            with translate_errors("Query"):
                response = self.client.query(**request)
            items.extend(response["Items"])
            if "LastEvaluatedKey" not in response:
                break
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        page = items[:limit]
        next_key = page[-1]["SK"]["S"] if len(items) > limit else None
        return [mapping.item_to_audit(item) for item in page], next_key

    def batch_get(self, asset_ids: list[str]) -> dict[str, Asset]:
        """The assets that exist among `asset_ids` (BatchGetItem, unprocessed keys retried)."""
        found: dict[str, Asset] = {}
        for start in range(0, len(asset_ids), _BATCH_GET_MAX):
            keys = [mapping.asset_key(i) for i in asset_ids[start : start + _BATCH_GET_MAX]]
            request = {self.table_name: {"Keys": keys}}
            for attempt in range(_UNPROCESSED_RETRIES + 1):
                with translate_errors("BatchGetItem"):
                    response = self.client.batch_get_item(RequestItems=request)
                for item in response["Responses"].get(self.table_name, []):
                    asset = mapping.item_to_asset(item)
                    found[asset.asset_id] = asset
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                if attempt == _UNPROCESSED_RETRIES:
                    raise StoreError("the store kept some keys unprocessed")
                # Unprocessed keys mean throttling: back off before asking again.
                time.sleep(min(0.05 * 2**attempt, 1.0))
        return found

    def update_catalog(self, asset_id: str, changes: dict, expected_version: int, actor: str, now: datetime) -> None:
        """Set operator-owned catalog fields at the version read, bumping the version.

        Only the named attributes are written, so a concurrent price refresh is kept.

        :raises VersionConflict: the asset changed (or vanished) meanwhile.
        """
        params = mapping.asset_update(
            asset_id,
            changes,
            names={"#version": "version", "#updated_at": "updated_at", "#by": "updated_by"},
            values={
                ":expected": {"N": str(expected_version)},
                ":next": {"N": str(expected_version + 1)},
                ":now": mapping.serialize(now),
                ":by": {"S": actor},
            },
            sets=("#version = :next", "#updated_at = :now", "#by = :by"),
        )
        try:
            with translate_errors("UpdateItem"):
                self.client.update_item(
                    TableName=self.table_name,
                    Key=mapping.asset_key(asset_id),
                    ConditionExpression=_VERSION_MATCHES,
                    **params,
                )
        except ConditionFailed:
            raise VersionConflict() from None
