"""AssetStore: asset items (reads, listings, creates, field updates) and the catalog counts item."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from ..domain import (
    Asset,
    AssetNotFound,
    AssetStatus,
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

# Create only: the seed must never replace an asset that already exists.
_ASSET_IS_NEW = "attribute_not_exists(PK)"
# Update only: a write that targets a deleted or unknown asset must not create a stub.
_ASSET_EXISTS = "attribute_exists(PK)"

# How many items one Query may read when a filter may discard many of them.
_FILTERED_PAGE = 200
_BATCH_GET_MAX = 100
# Items per Query page when reading the whole catalog (worker snapshots, the stream
# hub). botocore parses a page into a tree of small objects before we convert it;
# at DynamoDB's 1 MB default that tree is ~15 MB, and the rows kept from it pin the
# allocator's arenas: a 10,000-asset load and three reloads leave +53 MB of RSS,
# +25 MB at 200 items, +23 MB at 100 (same live data; bench/market.py, "snapshot
# load"). A reload then costs ~0.3 s more CPU than at 1 MB pages (a few ms per
# request); 200 halves the requests of 100 for ~2 MB. Read capacity is charged by
# size, not by page.
_CATALOG_PAGE = 200
_UNPROCESSED_RETRIES = 5


@dataclass(frozen=True)
class PageKey:
    """Where a listing stopped: enough to resume the same index query after it."""

    asset_id: str
    rank_key: str


@dataclass(frozen=True)
class AssetPage:
    assets: list[Asset]
    next_key: PageKey | None


@dataclass(frozen=True)
class ListQuery:
    """Which index answers a listing, and what the filter still has to drop."""

    index: str
    partition: str
    status: AssetStatus | None  # filtered when the index does not imply it
    tradable_since: datetime | None  # only ACTIVE assets priced at or after this
    # With tradable_since: now, for assets with their own bound (price_fresh_until >= now instead).
    now: datetime | None = None


def plan_list_query(
    status: AssetStatus | None, category: str | None, tradable_since: datetime | None, now: datetime | None = None
) -> ListQuery:
    """Pick the narrowest index for the filters; the rest is a filter on that index.

    DynamoDB refuses a filter on the queried index's own key, so status is only
    ever filtered when the index is not by_status.
    """
    if tradable_since is not None:
        # Tradable implies ACTIVE.
        status = AssetStatus.ACTIVE
    if category is not None:
        return ListQuery("by_category", category, status, tradable_since, now)
    if status is not None:
        return ListQuery("by_status", status.value, None, tradable_since, now)
    return ListQuery("by_rank", mapping.ASSET_KIND, None, None)


def counts_action(table_name: str, counts: CatalogStats | None) -> list[dict]:
    """The transaction action that moves the catalog counts by `counts`, if it moves any."""
    action = mapping.stats_delta_update(table_name, counts) if counts is not None else None
    return [action] if action else []


class AssetStore:
    """Asset items and the catalog counts item, over an injected DynamoDB client."""

    def __init__(self, client, table_name: str, write_concurrency: int = 4):
        self.client = client
        self.table_name = table_name
        self.write_concurrency = write_concurrency

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
            self._write_one("Put", put, counts)
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
            self.client, groups, self.write_concurrency, mapping.fence_check(self.table_name, fence)
        )
        return [assets[i].asset_id for i in created], [assets[i].asset_id for i in existed]

    def update_fields(self, asset_id: str, changes: dict, now: datetime) -> None:
        """SET (or REMOVE, for None) only the named fields, leaving every other field alone.

        Because only these attributes are written, a concurrent change to any other
        field (an operator's status, say) is never overwritten.

        :raises AssetNotFound: the asset does not exist.
        """
        try:
            with translate_errors("UpdateItem"):
                self.client.update_item(
                    TableName=self.table_name,
                    Key=mapping.asset_key(asset_id),
                    ConditionExpression=_ASSET_EXISTS,
                    **mapping.asset_update(asset_id, {**changes, "updated_at": now}),
                )
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
            self._write_one("Update", update, counts)
        except ConditionFailed:
            raise VersionConflict() from None

    def _write_one(self, kind: str, params: dict, counts: CatalogStats | None) -> None:
        """One Put or Update alone, or in a transaction with the counts it moves.

        :raises ConditionFailed: its condition failed.
        """
        moved = counts_action(self.table_name, counts)
        if not moved:
            with translate_errors(f"{kind}Item"):
                getattr(self.client, f"{kind.lower()}_item")(**params)
            return
        try:
            transact(self.client, [{kind: params}, *moved])
        except TransactionCancelled as exc:
            if "ConditionalCheckFailed" in exc.reasons:
                raise ConditionFailed(kind) from exc
            raise StoreError("the write kept conflicting with other writes") from exc

    # -- listings -----------------------------------------------------------

    def list_page(self, query: ListQuery, limit: int, after: PageKey | None = None) -> AssetPage:
        """Return up to `limit` assets in rank order, and the key to resume after them.

        Reads one more matching item than asked, so `next_key` is None exactly when
        nothing follows (DynamoDB alone cannot tell an exactly full last page).
        """
        request = self._query_request(query)
        wanted = limit + 1
        request["Limit"] = max(wanted, _FILTERED_PAGE) if "FilterExpression" in request else wanted
        if after:
            request["ExclusiveStartKey"] = mapping.index_start_key(
                query.index, query.partition, after.asset_id, after.rank_key
            )
        found = list(itertools.islice(query_items(self.client, request), wanted))
        items = found[:limit]
        next_key = None
        if len(found) > limit:
            last = items[-1]
            next_key = PageKey(last["asset_id"]["S"], last["rank_key"]["S"])
        return AssetPage([mapping.item_to_asset(item) for item in items], next_key)

    def iter_all(self) -> Iterator[Asset]:
        """Every asset in rank order, through the by_rank index (a Query, not a Scan)."""
        request = {**self._query_request(plan_list_query(None, None, None)), "Limit": _CATALOG_PAGE}
        return (mapping.item_to_asset(item) for item in query_items(self.client, request))

    def _query_request(self, query: ListQuery) -> dict:
        names = {"#pk": mapping.INDEXES[query.index]}
        values = {":pk": {"S": query.partition}}
        filters = []
        if query.status is not None:
            names["#status"] = "status"
            values[":status"] = {"S": query.status.value}
            filters.append("#status = :status")
        if query.tradable_since is not None:
            # Tradable now: ACTIVE (the index or the status filter sees to that),
            # priced, and priced recently enough.
            names.update({"#price": "current_price", "#ts": "last_price_update"})
            values[":since"] = {"S": mapping.to_iso(query.tradable_since)}
            if query.now is None:
                filters.append("attribute_exists(#price) AND #ts >= :since")
            else:
                # An operator-priced asset is fresh by its own bound (README
                # "Operator-created assets"), every other by the service's.
                names["#pfu"] = mapping.PRICE_FRESH_UNTIL
                values[":now"] = {"S": mapping.to_iso(query.now)}
                filters.append(
                    "attribute_exists(#price) AND "
                    "((attribute_not_exists(#pfu) AND #ts >= :since) OR #pfu >= :now)"
                )
        request = {
            "TableName": self.table_name,
            "IndexName": query.index,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        if filters:
            request["FilterExpression"] = " AND ".join(filters)
        return request

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
