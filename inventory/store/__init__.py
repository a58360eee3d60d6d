"""The DynamoDB data-access layer: everything that knows about items, keys and boto3 lives here."""

from .assets import AssetPage, AssetStore, ListQuery, PageKey, plan_list_query
from .dynamo import make_client

__all__ = ["AssetPage", "AssetStore", "ListQuery", "PageKey", "make_client", "plan_list_query"]
