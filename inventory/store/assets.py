"""AssetStore: asset items (reads, the whole catalog, creates, field updates)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime

from ..domain import (
    Asset,
    AssetNotFound,
    Fence,
    StoreError,
    VersionConflict,
)
from . import mapping
from .dynamo import (
    ConditionFailed,
    TransactionCancelled,
    query_items,
    transact,
    translate_errors,
    write_groups,
)
from .feed import DEFAULT_FEED_RETENTION_SECONDS, FeedStore

# Create only: the seed must never replace an asset that already exists.
_ASSET_IS_NEW = "attribute_not_exists(PK)"
# Update only: a write that targets a deleted or unknown asset must not create a stub.
_ASSET_EXISTS = "attribute_exists(PK)"

_BATCH_GET_MAX = 100
# Items per Query page when reading the whole catalog (a read model's cold load or
# resync, the refresh). botocore parses a page into a tree of small objects before we convert it;
# at DynamoDB's 1 MB default that tree is ~15 MB, and the rows kept from it pin the
# allocator's arenas: a 10,000-asset load and three reloads leave +53 MB of RSS,
# +25 MB at 200 items, +23 MB at 100 (same live data; bench/market.py, "snapshot
# load"). A load then costs ~0.3 s more CPU than at 1 MB pages; 200 halves the requests of 100 for ~2 MB. Read capacity is charged by
# size, not by page.
_CATALOG_PAGE = 200
_UNPROCESSED_RETRIES = 5


def catalog_query(table_name: str) -> dict:
    """Query parameters for every asset in rank order: the by_rank index (a Query, not a Scan)."""
    return {
        "TableName": table_name,
        "IndexName": "by_rank",
        "KeyConditionExpression": "#pk = :pk",
        "ExpressionAttributeNames": {"#pk": mapping.INDEXES["by_rank"]},
        "ExpressionAttributeValues": {":pk": {"S": mapping.ASSET_KIND}},
    }


class AssetStore:
    """Asset items, over an injected DynamoDB client."""

    def __init__(self, client, table_name: str, write_concurrency: int = 4, feed: FeedStore | None = None):
        self.client = client
        self.table_name = table_name
        self.write_concurrency = write_concurrency
        # Every asset write records itself in the feed, in its own transaction (store/feed.py).
        self.feed = feed or FeedStore(client, table_name, DEFAULT_FEED_RETENTION_SECONDS)

    # -- reads --------------------------------------------------------------

    def get(self, asset_id: str) -> Asset:
        """Return the asset with this id.

        :raises AssetNotFound: no such asset.
        :raises StoreError: DynamoDB failed.
        """
        with translate_errors("GetItem"):
            response = self.client.get_item(
                TableName=self.table_name, Key=mapping.asset_key(asset_id), ConsistentRead=True
            )
        if "Item" not in response:
            raise AssetNotFound(f"Asset {asset_id} not found.")
        return mapping.item_to_asset(response["Item"])

    def batch_get(self, asset_ids: list[str], consistent: bool = False) -> dict[str, Asset]:
        """The assets that exist among `asset_ids` (BatchGetItem, unprocessed keys retried).

        `consistent`: strongly consistent reads (twice the read units), for quotes.
        """
        found: dict[str, Asset] = {}
        for start in range(0, len(asset_ids), _BATCH_GET_MAX):
            keys = [mapping.asset_key(i) for i in asset_ids[start : start + _BATCH_GET_MAX]]
            request = {self.table_name: {"Keys": keys, "ConsistentRead": consistent}}
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

    # -- writes -------------------------------------------------------------

    def create(self, asset: Asset) -> bool:
        """Store a new asset; return False (and change nothing) when the id is taken."""
        put = {"TableName": self.table_name, "Item": mapping.asset_to_item(asset), "ConditionExpression": _ASSET_IS_NEW}
        try:
            self._write_one("Put", put, asset.asset_id)
        except ConditionFailed:
            return False
        return True

    def create_many(self, assets: list[Asset], fence: Fence | None = None) -> tuple[list[str], list[str]]:
        """Store new assets, 100 per call; return (created ids, ids that already existed).

        """
        groups = [
            [{"Put": {"TableName": self.table_name, "Item": mapping.asset_to_item(a),
                      "ConditionExpression": _ASSET_IS_NEW}}]
            for a in assets
        ]
        created, existed = write_groups(
            self.client, groups, self.write_concurrency, mapping.fence_check(self.table_name, fence),
            journal=lambda batch: self.feed.journal([mapping.touch_event(assets[i].asset_id) for i in batch]),
        )
        return [assets[i].asset_id for i in created], [assets[i].asset_id for i in existed]

    def update_fields(self, asset_id: str, changes: dict, now: datetime) -> None:
        """SET (or REMOVE, for None) only the named fields, leaving every other field alone.

        Because only these attributes are written, a concurrent change to any other
        field (an operator's status, say) is never overwritten.

        :raises AssetNotFound: the asset does not exist.
        """
        update = {
            "TableName": self.table_name,
            "Key": mapping.asset_key(asset_id),
            "ConditionExpression": _ASSET_EXISTS,
            **mapping.asset_update(asset_id, {**changes, "updated_at": now}),
        }
        try:
            self._write_one("Update", update, asset_id)
        except ConditionFailed:
            raise AssetNotFound(f"Asset {asset_id} not found.") from None

    def update_catalog(
        self,
        asset_id: str,
        changes: dict,
        expected_version: int,
        actor: str,
        now: datetime,
    ) -> None:
        """Set operator-owned catalog fields at the version read, bumping the version.

        Only the named attributes are written, so a concurrent price refresh is kept.

        :raises VersionConflict: the asset changed (or vanished) meanwhile.
        """
        update = {
            "TableName": self.table_name,
            "Key": mapping.asset_key(asset_id),
            **mapping.versioned_asset_update(asset_id, changes, expected_version, actor, now),
        }
        try:
            self._write_one("Update", update, asset_id)
        except ConditionFailed:
            raise VersionConflict() from None

    def _write_one(self, kind: str, params: dict, asset_id: str) -> None:
        """One Put or Update in a transaction with its feed entry.

        :raises ConditionFailed: its condition failed.
        """
        try:
            with self.feed.recording([mapping.touch_event(asset_id)]) as entry:
                transact(self.client, [{kind: params}, entry.action])
        except TransactionCancelled as exc:
            if "ConditionalCheckFailed" in exc.reasons:
                raise ConditionFailed(kind) from exc
            raise StoreError("the write kept conflicting with other writes") from exc

    # -- the whole catalog ---------------------------------------------------

    def iter_all(self) -> Iterator[Asset]:
        """Every asset in rank order, through the by_rank index (a Query, not a Scan)."""
        request = {**catalog_query(self.table_name), "Limit": _CATALOG_PAGE}
        return (mapping.item_to_asset(item) for item in query_items(self.client, request))
