"""Domain records and the DynamoDB data-access layer; nothing outside imports boto3."""

from .assets import AssetPage, AssetStore, ListQuery, PageKey, plan_list_query
from .dynamo import make_client
from .models import ASSET_ID_RE, CATEGORY_RE, MARKET_FIELDS, Asset, AssetStatus, CatalogStats, utcnow

__all__ = [
    "ASSET_ID_RE",
    "CATEGORY_RE",
    "MARKET_FIELDS",
    "Asset",
    "AssetPage",
    "AssetStatus",
    "AssetStore",
    "CatalogStats",
    "ListQuery",
    "PageKey",
    "make_client",
    "plan_list_query",
    "utcnow",
]
