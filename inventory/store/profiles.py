"""ProfileStore: each tradable asset's recommendation profile (similar assets, daily returns), one partition."""

from __future__ import annotations

from datetime import datetime

from ..domain import Fence
from ..domain.history import Profile
from . import mapping
from .dynamo import query_items, translate_errors, write_groups


class ProfileStore:
    """Cost: the recommender puts one item per tradable asset per run (~1-2 KB: top-K plus
    the returns); `get` is one GetItem, `all` one paginated Query (about 1 RCU per 8 profiles)."""

    def __init__(self, client, table_name: str, write_concurrency: int = 4):
        self.client = client
        self.table_name = table_name
        self.write_concurrency = write_concurrency

    def put_all(self, profiles: list[Profile], stale: list[str], now: datetime, fence: Fence | None = None) -> None:
        """Store these profiles and retire those of `stale` asset ids (no longer tradable).

        A retired profile is overwritten with a marker that expires (TTL) rather
        than deleted: the service's IAM policy grants no DeleteItem.

        :raises LeaseLost: the fence's lease has moved on.
        """
        items = [mapping.profile_item(p) for p in profiles] + [mapping.retired_profile_item(a, now) for a in stale]
        groups = [[{"Put": {"TableName": self.table_name, "Item": item}}] for item in items]
        write_groups(self.client, groups, self.write_concurrency, mapping.fence_check(self.table_name, fence))

    def get(self, asset_id: str) -> Profile | None:
        with translate_errors("GetItem"):
            item = self.client.get_item(
                TableName=self.table_name, Key={"PK": {"S": mapping.PROFILE_PK}, "SK": {"S": asset_id}}
            ).get("Item")
        return mapping.item_to_profile(item) if item and not mapping.is_retired_profile(item) else None

    def all(self) -> list[Profile]:
        request = {
            "TableName": self.table_name,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": mapping.PROFILE_PK}},
        }
        return [
            mapping.item_to_profile(item) for item in query_items(self.client, request)
            if not mapping.is_retired_profile(item)
        ]
