"""The DynamoDB data-access layer: everything that knows about items, keys and boto3 lives here."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Config
from .assets import AssetStore
from .candles import CandleStore
from .categories import CategoryStore, Membership
from .changes import PlannedChange, StatusStore
from .crosscheck import CrossCheckStore
from .dynamo import make_client
from .feed import FeedStore
from .lease import LeaseStore
from .prices import PriceStore
from .profiles import ProfileStore
from .refresh_state import RefreshStateStore


@dataclass(frozen=True)
class Stores:
    """Every store over one client and table: what the factory builds once per process."""

    client: object
    table_name: str
    assets: AssetStore
    changes: StatusStore
    prices: PriceStore
    refresh_state: RefreshStateStore
    leases: LeaseStore
    candles: CandleStore
    profiles: ProfileStore
    categories: CategoryStore
    feed: FeedStore
    crosschecks: CrossCheckStore

    @classmethod
    def build(cls, client, config: Config) -> "Stores":
        table, concurrency = config.DYNAMODB_TABLE_NAME, config.DYNAMODB_WRITE_CONCURRENCY
        feed = FeedStore(client, table, config.STREAM_FEED_RETENTION_SECONDS)
        return cls(
            client=client,
            table_name=table,
            assets=AssetStore(client, table, concurrency, feed),
            changes=StatusStore(client, table, feed),
            prices=PriceStore(client, table, config.PRICE_HISTORY_DAYS, concurrency, feed),
            refresh_state=RefreshStateStore(client, table),
            leases=LeaseStore(client, table),
            candles=CandleStore(client, table, concurrency),
            profiles=ProfileStore(client, table, concurrency),
            categories=CategoryStore(client, table, feed),
            feed=feed,
            crosschecks=CrossCheckStore(client, table, feed),
        )


__all__ = [
    "AssetStore",
    "CandleStore",
    "CategoryStore",
    "CrossCheckStore",
    "FeedStore",
    "LeaseStore",
    "Membership",
    "PlannedChange",
    "PriceStore",
    "ProfileStore",
    "RefreshStateStore",
    "StatusStore",
    "Stores",
    "make_client",
]
