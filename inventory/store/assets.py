"""AssetStore: reads and writes assets and the catalog counts in the single table."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from ..domain import Asset, AssetNotFound, AssetStatus, CatalogStats, RefreshState
from . import mapping
from .dynamo import ConditionFailed, translate_errors, write_groups

# Create only: the seed must never replace an asset that already exists.
_ASSET_IS_NEW = "attribute_not_exists(PK)"
# Update only: a write that targets a deleted or unknown asset must not create a stub.
_ASSET_EXISTS = "attribute_exists(PK)"

# How many items one Query may read when a filter may discard many of them.
_FILTERED_PAGE = 200


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


def plan_list_query(
    status: AssetStatus | None, category: str | None, tradable_since: datetime | None
) -> ListQuery:
    """Pick the narrowest index for the filters; the rest is a filter on that index.

    DynamoDB refuses a filter on the queried index's own key, so status is only
    ever filtered when the index is not by_status.
    """
    if tradable_since is not None:
        # Tradable implies ACTIVE.
        status = AssetStatus.ACTIVE
    if category is not None:
        return ListQuery("by_category", category, status, tradable_since)
    if status is not None:
        return ListQuery("by_status", status.value, None, tradable_since)
    return ListQuery("by_rank", mapping.ASSET_KIND, None, None)


class AssetStore:
    """Asset items and the catalog counts item, over an injected DynamoDB client."""

    def __init__(self, client, table_name: str, write_concurrency: int = 4):
        self.client = client
        self.table_name = table_name
        self.write_concurrency = write_concurrency

    # -- single items -------------------------------------------------------

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

    def create(self, asset: Asset) -> bool:
        """Store a new asset; return False (and change nothing) when the id is taken."""
        try:
            with translate_errors("PutItem"):
                self.client.put_item(
                    TableName=self.table_name,
                    Item=mapping.asset_to_item(asset),
                    ConditionExpression=_ASSET_IS_NEW,
                )
        except ConditionFailed:
            return False
        return True

    def create_many(self, assets: list[Asset], guard: dict | None = None) -> tuple[list[str], list[str]]:
        """Store new assets, 100 per call; return (created ids, ids that already existed)."""
        groups = [
            [{"Put": {"TableName": self.table_name, "Item": mapping.asset_to_item(a),
                      "ConditionExpression": _ASSET_IS_NEW}}]
            for a in assets
        ]
        created, existed = write_groups(self.client, groups, self.write_concurrency, guard)
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

    # -- listings -----------------------------------------------------------

    def list_page(self, query: ListQuery, limit: int, after: PageKey | None = None) -> AssetPage:
        """Return up to `limit` assets in rank order, and the key to resume after them.

        Reads one more matching item than asked, so `next_key` is None exactly when
        nothing follows (DynamoDB alone cannot tell an exactly full last page).
        """
        request = self._query_request(query)
        wanted = limit + 1
        found: list[dict] = []
        start = (
            mapping.index_start_key(query.index, query.partition, after.asset_id, after.rank_key)
            if after
            else None
        )
        while len(found) < wanted:
            page_size = wanted - len(found)
            if "FilterExpression" in request:
                page_size = max(page_size, _FILTERED_PAGE)
            kwargs = dict(request, Limit=page_size)
            if start:
                kwargs["ExclusiveStartKey"] = start
            with translate_errors("Query"):
                response = self.client.query(**kwargs)
            found.extend(response["Items"])
            start = response.get("LastEvaluatedKey")
            if not start:
                break
        items = found[:limit]
        next_key = None
        if len(found) > limit:
            last = items[-1]
            next_key = PageKey(last["asset_id"]["S"], last["rank_key"]["S"])
        return AssetPage([mapping.item_to_asset(item) for item in items], next_key)

    def iter_all(self) -> Iterator[Asset]:
        """Every asset in rank order, through the by_rank index (a Query, not a Scan)."""
        request = self._query_request(plan_list_query(None, None, None))
        while True:
            with translate_errors("Query"):
                response = self.client.query(**request)
            for item in response["Items"]:
                yield mapping.item_to_asset(item)
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

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
            filters.append("attribute_exists(#price) AND #ts >= :since")
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

    def recount(self, now: datetime, max_age_seconds: int) -> CatalogStats:
        """Rebuild the counts item from the by_rank index; done after catalog writes."""
        stats = CatalogStats.compute(self.iter_all(), now, max_age_seconds)
        self.put_stats(stats)
        return stats

    def put_stats(self, stats: CatalogStats) -> None:
        with translate_errors("PutItem"):
            self.client.put_item(TableName=self.table_name, Item=mapping.stats_to_item(stats))

    def get_refresh_state(self) -> RefreshState:
        with translate_errors("GetItem"):
            response = self.client.get_item(TableName=self.table_name, Key=mapping.REFRESH_STATE_KEY)
        if "Item" not in response:
            return RefreshState()
        return mapping.item_to_refresh_state(response["Item"])

    def put_refresh_state(self, state: RefreshState) -> None:
        with translate_errors("PutItem"):
            self.client.put_item(TableName=self.table_name, Item=mapping.refresh_state_to_item(state))

    def describe(self) -> dict:
        """Table status and item count as DynamoDB reports them (for health checks)."""
        with translate_errors("DescribeTable"):
            table = self.client.describe_table(TableName=self.table_name)["Table"]
        return {"status": table["TableStatus"]}
