"""LeaseStore: one lease item decides which instance refreshes prices, with a fencing counter."""

from __future__ import annotations

from ..domain import Fence, Lease
from . import mapping
from .dynamo import ConditionFailed, LeaseLost, translate_errors

# Free, expired, or already ours: only then may an instance take the lease.
_TAKEABLE = "attribute_not_exists(PK) OR #expires <= :now OR #owner = :me"

__all__ = ["Fence", "Lease", "LeaseLost", "LeaseStore"]


class LeaseStore:
    def __init__(self, client, table_name: str, name: str = "price-refresh"):
        self.client = client
        self.table_name = table_name
        self.name = name

    def acquire(self, owner: str, now_ms: int, ttl_ms: int) -> Lease | None:
        """Take the lease if it is free or expired; taking it bumps the fence."""
        return self._update(
            "SET #owner = :me, #expires = :exp ADD #fence :one",
            _TAKEABLE,
            {":me": owner, ":now": now_ms, ":exp": now_ms + ttl_ms, ":one": 1},
        )

    def renew(self, lease: Lease, now_ms: int, ttl_ms: int) -> Lease | None:
        """Extend a lease we hold; None when it was lost (taken over after expiring)."""
        held = {":me": lease.owner, ":fence": lease.fence}
        return self._update("SET #expires = :exp", mapping.LEASE_HELD, {**held, ":exp": now_ms + ttl_ms})

    def release(self, lease: Lease) -> None:
        """Let another instance take over at once (on shutdown); a no-op if it is already theirs."""
        self._update("SET #expires = :zero", mapping.LEASE_HELD, {":me": lease.owner, ":fence": lease.fence, ":zero": 0})

    def _update(self, expression: str, condition: str, values: dict) -> Lease | None:
        """Apply a conditional update to the lease item; the lease it leaves, or None if refused."""
        try:
            with translate_errors("UpdateItem"):
                response = self.client.update_item(
                    TableName=self.table_name,
                    Key=mapping.lease_key(self.name),
                    UpdateExpression=expression,
                    ConditionExpression=condition,
                    ExpressionAttributeNames={
                        k: v for k, v in mapping.LEASE_NAMES.items() if k in expression + condition
                    },
                    ExpressionAttributeValues={k: mapping.serialize(v) for k, v in values.items()},
                    ReturnValues="ALL_NEW",
                )
        except ConditionFailed:
            return None
        return mapping.item_to_lease(response["Attributes"])

    def current(self) -> Lease | None:
        with translate_errors("GetItem"):
            response = self.client.get_item(
                TableName=self.table_name, Key=mapping.lease_key(self.name), ConsistentRead=True
            )
        return mapping.item_to_lease(response["Item"]) if "Item" in response else None
