"""LeaseStore: one lease item decides which instance refreshes prices, with a fencing counter."""

from __future__ import annotations

from dataclasses import dataclass

from . import mapping
from .dynamo import ConditionFailed, LeaseLost, translate_errors

LEASE_PK = "LEASE"

# Free, expired, or already ours: only then may an instance take the lease.
_TAKEABLE = "attribute_not_exists(PK) OR #expires <= :now OR #owner = :me"
# A renewal or release only by the holder of this very fence.
_HELD = "#owner = :me AND #fence = :fence"


__all__ = ["Lease", "LeaseLost", "LeaseStore"]


@dataclass(frozen=True)
class Lease:
    owner: str
    fence: int
    expires_ms: int


class LeaseStore:
    def __init__(self, client, table_name: str, name: str = "price-refresh"):
        self.client = client
        self.table_name = table_name
        self.key = {"PK": {"S": LEASE_PK}, "SK": {"S": name}}

    def acquire(self, owner: str, now_ms: int, ttl_ms: int) -> Lease | None:
        """Take the lease if it is free or expired; taking it bumps the fence."""
        attributes = self._update(
            "SET #owner = :me, #expires = :exp ADD #fence :one",
            _TAKEABLE,
            {":me": owner, ":now": now_ms, ":exp": now_ms + ttl_ms, ":one": 1},
        )
        return _lease(attributes) if attributes else None

    def renew(self, lease: Lease, now_ms: int, ttl_ms: int) -> Lease | None:
        """Extend a lease we hold; None when it was lost (taken over after expiring)."""
        held = {":me": lease.owner, ":fence": lease.fence}
        if self._update("SET #expires = :exp", _HELD, {**held, ":exp": now_ms + ttl_ms}) is None:
            return None
        return Lease(lease.owner, lease.fence, now_ms + ttl_ms)

    def release(self, lease: Lease) -> None:
        """Let another instance take over at once (on shutdown); a no-op if it is already theirs."""
        self._update("SET #expires = :zero", _HELD, {":me": lease.owner, ":fence": lease.fence, ":zero": 0})

    def _update(self, expression: str, condition: str, values: dict) -> dict | None:
        """Apply a conditional update to the lease item; its new attributes, or None if refused."""
        names = {"#owner": "owner", "#expires": "expires_ms", "#fence": "fence"}
        try:
            with translate_errors("UpdateItem"):
                response = self.client.update_item(
                    TableName=self.table_name,
                    Key=self.key,
                    UpdateExpression=expression,
                    ConditionExpression=condition,
                    ExpressionAttributeNames={k: v for k, v in names.items() if k in expression + condition},
                    ExpressionAttributeValues={k: mapping.serialize(v) for k, v in values.items()},
                    ReturnValues="ALL_NEW",
                )
        except ConditionFailed:
            return None
        return response["Attributes"]

    def current(self) -> Lease | None:
        with translate_errors("GetItem"):
            response = self.client.get_item(TableName=self.table_name, Key=self.key, ConsistentRead=True)
        return _lease(response["Item"]) if "Item" in response else None

    def guard(self, lease: Lease) -> dict:
        """A transaction action that fails unless `lease` is still held: the fence on writes."""
        return {
            "ConditionCheck": {
                "TableName": self.table_name,
                "Key": self.key,
                "ConditionExpression": _HELD,
                "ExpressionAttributeNames": {"#owner": "owner", "#fence": "fence"},
                "ExpressionAttributeValues": {":me": {"S": lease.owner}, ":fence": {"N": str(lease.fence)}},
            }
        }


def _lease(item: dict) -> Lease:
    raw = mapping.deserialize(item)
    return Lease(owner=raw["owner"], fence=int(raw["fence"]), expires_ms=int(raw["expires_ms"]))
