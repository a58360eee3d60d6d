"""AssetStore: asset items (reads, listings, creates, field updates) and the catalog counts item."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime

from ..domain import (
    Asset,
    AssetNotFound,
    CatalogStats,
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
# resync, the refresh, a recount). botocore parses a page into a tree of small objects before we convert it;
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


def counts_action(table_name: str, counts: CatalogStats | None) -> list[dict]:
    """The transaction action that moves the catalog counts by `counts`, if it moves any."""
    action = mapping.stats_delta_update(table_name, counts) if counts is not None else None
    return [action] if action else []


class AssetStore:
    """Asset items and the catalog counts item, over an injected DynamoDB client."""

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

    def create(self, asset: Asset, counts: CatalogStats | None = None) -> bool:
        """Store a new asset; return False (and change nothing) when the id is taken.

        `counts`, the change the new asset makes to the catalog counts, is
        written in the same transaction.
        """
        put = {"TableName": self.table_name, "Item": mapping.asset_to_item(asset), "ConditionExpression": _ASSET_IS_NEW}
        try:
            self._write_one("Put", put, asset.asset_id, counts)
        except ConditionFailed:
            return False
        return True

    def create_many(self, assets: list[Asset], fence: Fence | None = None) -> tuple[list[str], list[str]]:
        """Store new assets, 100 per call; return (created ids, ids that already existed).

        Whoever creates in bulk (seed, refresh) rewrites the counts afterwards.
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
        counts: CatalogStats | None = None,
    ) -> None:
        """Set operator-owned catalog fields at the version read, bumping the version.

        Only the named attributes are written, so a concurrent price refresh is
        kept; `counts` moves the catalog counts in the same transaction.

        :raises VersionConflict: the asset changed (or vanished) meanwhile.
        """
        update = {
            "TableName": self.table_name,
            "Key": mapping.asset_key(asset_id),
            **mapping.versioned_asset_update(asset_id, changes, expected_version, actor, now),
        }
        try:
            self._write_one("Update", update, asset_id, counts)
        except ConditionFailed:
            raise VersionConflict() from None

    def _write_one(self, kind: str, params: dict, asset_id: str, counts: CatalogStats | None = None) -> None:
        """One Put or Update in a transaction with its feed entry and the counts it moves.

        :raises ConditionFailed: its condition failed.
        """
        try:
            with self.feed.recording([mapping.touch_event(asset_id)]) as entry:
                transact(self.client, [{kind: params}, *counts_action(self.table_name, counts), entry.action])
        except TransactionCancelled as exc:
            if "ConditionalCheckFailed" in exc.reasons:
                raise ConditionFailed(kind) from exc
            raise StoreError("the write kept conflicting with other writes") from exc

    # -- the whole catalog ---------------------------------------------------

    def iter_all(self) -> Iterator[Asset]:
        """Every asset in rank order, through the by_rank index (a Query, not a Scan)."""
        request = {**catalog_query(self.table_name), "Limit": _CATALOG_PAGE}
        return (mapping.item_to_asset(item) for item in query_items(self.client, request))

    # -- catalog counts -----------------------------------------------------

    def get_stats(self) -> CatalogStats:
        """The stored catalog counts; empty counts before the first seed."""
        with translate_errors("GetItem"):
            response = self.client.get_item(TableName=self.table_name, Key=mapping.STATS_KEY)
        if "Item" not in response:
            return CatalogStats()
        return mapping.item_to_stats(response["Item"])

    def counts_writes(self) -> int:
        """How many operator writes have moved the counts: read it before the catalog, pass it to put_stats."""
        with translate_errors("GetItem"):
            response = self.client.get_item(
                TableName=self.table_name, Key=mapping.STATS_KEY, ProjectionExpression="#w",
                ExpressionAttributeNames={"#w": mapping.COUNTS_WRITES}, ConsistentRead=True,
            )
        return mapping.item_to_counts_writes(response.get("Item"))

    def recount(self, now: datetime, max_age_seconds: int, attempts: int = 3) -> CatalogStats | None:
        """Rebuild the counts item from the by_rank index; None if operator writes kept moving it.

        Each attempt reads the write counter, then the catalog, and replaces the
        counts only if no write moved them in between (that write's catalog
        change may be missing from what was read).
        """
        for _ in range(attempts):
            writes = self.counts_writes()
            stats = CatalogStats.compute(self.iter_all(), now, max_age_seconds)
            if self.put_stats(stats, writes):
                return stats
        return None

    def put_stats(self, stats: CatalogStats, writes: int) -> bool:
        """Replace the whole counts item unless an operator write moved it since `writes` was read.

        :returns: whether it was replaced.
        """
        try:
            with translate_errors("PutItem"):
                self.client.put_item(
                    TableName=self.table_name,
                    Item=mapping.stats_to_item(stats, writes),
                    **mapping.stats_unchanged_since(writes),
                )
        except ConditionFailed:
            return False
        return True
