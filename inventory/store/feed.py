"""FeedStore: the live stream's feed of committed changes (reserve a seq, write entries, read them)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..domain import InventoryError, utcnow
from . import mapping
from .dynamo import ConditionFailed, query_items, translate_errors

log = logging.getLogger(__name__)

# What resume can replay when no Config says otherwise (STREAM_FEED_RETENTION_SECONDS).
DEFAULT_FEED_RETENTION_SECONDS = 3600


@dataclass(frozen=True)
class FeedEntry:
    """One committed transaction's changes; `events` is empty for a void entry."""

    seq: int
    at: datetime
    events: list[dict]


class FeedJournal:
    """The feed entry of one transaction attempt: its action, and a void if the attempt fails."""

    def __init__(self, feed: "FeedStore", events: list[dict]):
        self.feed = feed
        self.asset_ids = [event["asset_id"] for event in events]
        self.seq = feed.reserve()
        self.action = feed.entry_action(self.seq, events)

    def cancel(self) -> None:
        self.feed.void(self.seq)

    def committed(self) -> None:
        """The attempt's transaction committed: tell the process (its read model publishes the seq)."""
        if self.feed.on_commit is not None:
            self.feed.on_commit(self.seq, self.asset_ids)


class FeedStore:
    def __init__(self, client, table_name: str, retention_seconds: int, clock: Callable[[], datetime] = utcnow):
        self.client = client
        self.table_name = table_name
        self.retention_seconds = retention_seconds
        self.clock = clock
        # Called with the seq and the asset ids of every entry this process commits
        # (readmodel.ReadModel.committed).
        self.on_commit: Callable[[int, list[str]], None] | None = None

    def reserve(self) -> int:
        """Hand out the next seq (one UpdateItem).

        :raises StoreError: the store is unreachable.
        """
        with translate_errors("UpdateItem"):
            response = self.client.update_item(TableName=self.table_name, **mapping.feed_reserve())
        return mapping.item_to_feed_head(response["Attributes"])

    def head(self) -> int:
        """The last seq handed out (its entry may still be in flight)."""
        with translate_errors("GetItem"):
            item = self.client.get_item(
                TableName=self.table_name, Key=mapping.FEED_HEAD_KEY, ConsistentRead=True
            ).get("Item")
        return mapping.item_to_feed_head(item)

    def entry_action(self, seq: int, events: list[dict]) -> dict:
        now = self.clock()
        return mapping.feed_entry_put(
            self.table_name, seq, now, events, now + timedelta(seconds=self.retention_seconds)
        )

    def journal(self, events: list[dict]) -> FeedJournal:
        """Reserve a seq for one transaction attempt carrying these events."""
        return FeedJournal(self, events)

    @contextlib.contextmanager
    def recording(self, events: list[dict]) -> Iterator[FeedJournal]:
        """Reserve a seq for the one transaction the block writes with `entry.action`.

        A block that raises voids the seq; one that returns reports it committed.
        """
        entry = self.journal(events)
        try:
            yield entry
        except BaseException:
            entry.cancel()
            raise
        entry.committed()

    def void(self, seq: int) -> None:
        """Mark `seq` as never to come (its transaction failed); best effort.

        If this fails too, readers skip the hole after their grace period.
        """
        try:
            with translate_errors("PutItem"):
                put = self.entry_action(seq, [])["Put"]
                self.client.put_item(**put)
        except InventoryError as exc:
            log.warning("could not void feed seq %s: %s", seq, exc)
        except ConditionFailed:
            # The attempt did commit (its reply was lost): the entry stands, rightly.
            log.info("feed seq %s committed after all", seq)

    def read(self, after: int, limit: int = 100) -> list[FeedEntry]:
        """Entries after seq `after`, oldest first, up to `limit` (one Query per 1 MB page)."""
        request = mapping.feed_query(self.table_name, after, limit)
        entries = []
        for item in query_items(self.client, request):
            seq, at, events = mapping.item_to_feed_entry(item)
            entries.append(FeedEntry(seq, at, events))
            if len(entries) >= limit:
                break
        return entries
