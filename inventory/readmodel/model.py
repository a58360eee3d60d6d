"""ReadModel: one process's catalog in memory, loaded once and kept current from the feed in seq order.

Every committed change to an asset writes one feed entry with a global seq in
its own transaction (store/feed.py). The model loads the catalog once (a
paginated index Query), then applies each entry exactly once, in seq order,
to the assets it names; readers get an immutable `SearchIndex` version and
never wait for the store. A writer applies its own committed change at once
(read-your-writes), and the workers of one instance share the highest seq any
of them has served (`SharedSeq`), so a worker behind it catches up before it
answers: no client sees an older version after a newer one.
"""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import mmap
import os
import struct
import threading
import time
import weakref
import zlib
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Protocol

from ..domain import Asset, InventoryError, StoreError, utcnow
from ..domain.search import SearchIndex, SnapshotAsset, load_index
from ..store import mapping

log = logging.getLogger(__name__)

# The instance's shared seq, in the directory its workers share (PROMETHEUS_MULTIPROC_DIR).
SHARED_SEQ_FILE = "inventory-catalog-seq"
# Entries read per feed Query.
FEED_PAGE = 100
# On a full load the model re-applies this many entries before the head it read
# first: the (eventually consistent) index may miss a change committed just before.
LOAD_LOOKBACK = 200
# How long DynamoDB's index may trail a write: a touch older than this when the load
# began was read by the load, so the lookback does not read that asset again.
INDEX_LAG_SECONDS = 10.0
# How long a reader behind the instance's seq waits for the catch-up before it
# answers from what it has (only while the store answers: a frozen store is never waited on).
CATCH_UP_SECONDS = 1.0


class FeedReader(Protocol):
    """Where the model reads the change log: the table's feed today (store/feed.py FeedStore);
    a DynamoDB Streams (or fan-out) reader would be one more class with these two methods."""

    def head(self) -> int:
        """The last seq handed out."""

    def read(self, after: int, limit: int) -> list:
        """Entries after seq `after`, oldest first (FeedEntry: seq, at, events)."""


class SharedSeq:
    """What the workers of one instance have served, in an mmap'd file they share: the highest
    feed seq any of them applied or committed (slot 0), and per asset (by a hash of its id) the
    seq of the last entry that changed it.

    A worker about to answer for an asset catches up only when that asset's slot is ahead of
    it, so a write makes the other workers poll once for the assets it wrote, not for every
    read (a collision only costs an extra poll). Pages and market figures span every asset:
    they compare slot 0.
    """

    _SLOT = struct.Struct("<q")
    ASSET_SLOTS = 65536  # 512 KB of file

    def __init__(self, path: str):
        self.path = path
        size = self._SLOT.size * (1 + self.ASSET_SLOTS)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < size:
                os.ftruncate(fd, size)
            self._map = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        self._lock = threading.Lock()

    def current(self) -> int:
        # An aligned 8-byte load is never seen half-written.
        return self._SLOT.unpack_from(self._map)[0]

    def of(self, asset_id: str) -> int:
        return self._SLOT.unpack_from(self._map, self._offset(asset_id))[0]

    def advance(self, seq: int, assets: dict[str, int] | None = None) -> None:
        """Publish `seq`, and for each asset the seq of the entry that last changed it."""
        with self._lock, open(self.path, "rb") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            for offset, value in [(0, seq), *((self._offset(a), s) for a, s in (assets or {}).items())]:
                if value > self._SLOT.unpack_from(self._map, offset)[0]:
                    self._SLOT.pack_into(self._map, offset, value)

    def _offset(self, asset_id: str) -> int:
        # crc32, not hash(): the same slot in every process, whatever its hash seed.
        return self._SLOT.size * (1 + zlib.crc32(asset_id.encode()) % self.ASSET_SLOTS)


_FIELDS = [f.name for f in dataclasses.fields(Asset)]

# The models started in this process, so a signal handler can stop their pollers.
_STARTED: "weakref.WeakSet[ReadModel]" = weakref.WeakSet()


def instance_seq(config) -> SharedSeq | None:
    """The instance's shared seq file, under gunicorn (its workers and refresher share
    PROMETHEUS_MULTIPROC_DIR); None in a single process."""
    directory = config.PROMETHEUS_MULTIPROC_DIR
    if directory and os.path.isdir(directory):
        return SharedSeq(os.path.join(directory, SHARED_SEQ_FILE))
    return None


def publish_commits(feed, shared: SharedSeq | None) -> None:
    """Have every entry `feed` commits advance the instance's shared seq (the refresher's writes:
    a worker asked right after a refresh catches up before it answers)."""
    if shared is not None:
        feed.on_commit = lambda seq, asset_ids: shared.advance(seq, dict.fromkeys(asset_ids, seq))


def build_read_model(stores, config, shared: SharedSeq | None = None, metrics=None) -> "ReadModel":
    """A model over these stores (store.Stores) with Config's poll, retention and grace."""
    return ReadModel(
        load=stores.assets.iter_all,
        feed=stores.feed,
        reread=lambda ids: stores.assets.batch_get(ids, True),
        poll_seconds=config.STREAM_POLL_SECONDS,
        retention_seconds=config.STREAM_FEED_RETENTION_SECONDS,
        gap_grace_seconds=config.STREAM_GAP_GRACE_SECONDS,
        shared=shared,
        metrics=metrics,
    )


def stop_process_models() -> None:
    """Stop every model's poller in this process (a worker's exit; tests between apps)."""
    for model in list(_STARTED):
        model.stop()


class ReadModel:
    """The catalog as of feed seq `view().seq`, with the changes this process wrote on top."""

    def __init__(
        self,
        *,
        load: Callable[[], Iterable[Asset]],
        feed: FeedReader,
        reread: Callable[[list[str]], dict[str, Asset]],
        poll_seconds: float,
        retention_seconds: float,
        gap_grace_seconds: float = 30.0,
        shared: SharedSeq | None = None,
        metrics=None,
        clock: Callable[[], datetime] = utcnow,
        timer: Callable[[], float] = time.monotonic,
    ):
        self._load, self._feed, self._reread = load, feed, reread
        self.poll_seconds = poll_seconds
        self.retention_seconds = retention_seconds
        self.gap_grace_seconds = gap_grace_seconds
        self.shared = shared
        self.metrics = metrics  # telemetry.metrics.InventoryMetrics, or None
        self.clock, self._timer = clock, timer
        self._view: SearchIndex | None = None
        self._sync_lock = threading.Lock()  # one poll (or load) at a time
        self._start_lock = threading.Lock()
        self._gap_since: float | None = None
        self._local = 0  # changes this process applied on top of the feed since its last entry
        # Per asset, the last feed seq this process committed itself (it applies those at once).
        self._written: dict[str, int] = {}
        self._loaded_at: datetime | None = None  # when the last full load began
        self.last_poll_ok: float | None = None  # timer() of the last poll that reached the store
        self.last_poll_failed: float | None = None
        self.reloads = 0
        self._listeners: list[Callable[[list, SearchIndex], None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> "ReadModel":
        """Load the catalog and start tailing the feed (idempotent).

        :raises StoreError: the first load failed (the next call tries again).
        """
        if self._view is not None:
            return self
        with self._start_lock:
            if self._view is None:
                with self._sync_lock:
                    self._view = self._full_load(None, "cold")
                    self._catch_up()
                if self.poll_seconds > 0:
                    self._thread = threading.Thread(target=self._run, name="read-model", daemon=True)
                    self._thread.start()
                _STARTED.add(self)
        return self

    def stop(self) -> None:
        self._stop.set()

    def add_listener(self, listener: Callable[[list, SearchIndex], None]) -> None:
        """Call `listener(entries, view)` after each applied batch: the entries in seq order,
        and the version that holds them (the stream hub)."""
        self._listeners.append(listener)

    # -- reads ---------------------------------------------------------------

    def view(self, assets: Iterable[str] = ()) -> SearchIndex:
        """The current version, caught up first when this instance already served a newer one
        (of these assets, or of any when none are named).

        Never waits for a store that is not answering: then it is what this process has.
        """
        view = self.start()._view
        if self.poll_seconds <= 0:
            # No poller (tests, the CLI): every read catches up itself, or answers from
            # what it has when the store does not answer.
            try:
                self.sync()
            except InventoryError as exc:
                log.warning("read model: feed poll failed: %s", exc)
        elif self.shared is not None and self._behind(view, assets) and self.store_answering():
            self.sync(timeout=CATCH_UP_SECONDS)
        return self._view

    def _behind(self, view: SearchIndex, assets: Iterable[str]) -> bool:
        if not assets:
            return self.shared.current() > view.seq
        written = self._written
        return any(self.shared.of(a) > max(view.seq, written.get(a, 0)) for a in assets)

    def get(self, asset_id: str) -> Asset:
        """:raises KeyError: no such asset in the model."""
        row = self.view((asset_id,)).row(asset_id)
        if row is None:
            raise KeyError(asset_id)
        return row

    @property
    def seq(self) -> int:
        """The feed seq the current version reflects (without catching up)."""
        view = self._view
        return 0 if view is None else view.seq

    def read_feed(self, after: int, limit: int) -> list:
        """Feed entries after seq `after` straight from the store (a stream's resume).

        :raises StoreError:
        """
        return self._feed.read(after, limit)

    def store_answering(self) -> bool:
        """False while the last poll failed and none has succeeded since."""
        failed = self.last_poll_failed
        return failed is None or (self.last_poll_ok is not None and self.last_poll_ok > failed)

    def check_store(self) -> None:
        """Before a write: fail at once while the store does not answer this process's polls
        (a write would only wait for its timeout to fail the same way).

        :raises StoreError:
        """
        if self.poll_seconds > 0 and not self.store_answering():
            raise StoreError("the store did not answer the last feed poll")

    def lag_seconds(self) -> float | None:
        """How long since the model last confirmed it was current (None before the first poll)."""
        if self.last_poll_ok is None:
            return None
        return max(0.0, self._timer() - self.last_poll_ok)

    # -- writes by this process ------------------------------------------------

    def written(self, assets: Iterable[Asset]) -> None:
        """Apply this process's own committed change at once (the feed brings it to the others)."""
        with self._sync_lock:
            rows = {}
            view = self._view
            if view is None:
                return
            for asset in assets:
                current = view.row(asset.asset_id)
                if current is None or asset.stream_seq >= current.stream_seq:
                    rows[asset.asset_id] = SnapshotAsset.of(asset, current)
            if rows:
                self._local += 1
                self._view = view.updated(rows, view.seq, f"{view.seq}.{os.getpid()}.{self._local}")

    def reread(self, asset_ids: list[str]) -> None:
        """Read these assets again (strongly consistent) and apply them: after a write whose image
        this process does not know (imports, catalog and category writes).

        :raises StoreError:
        """
        self.written(self._reread(asset_ids).values())

    def committed(self, seq: int, asset_ids: Iterable[str]) -> None:
        """This process committed feed entry `seq` for these assets (and applies it itself, at
        once): no worker of the instance may serve them older."""
        ids = set(asset_ids)
        for asset_id in ids:
            self._written[asset_id] = max(seq, self._written.get(asset_id, 0))
        if self.shared is not None:
            self.shared.advance(seq, dict.fromkeys(ids, seq))

    # -- the feed --------------------------------------------------------------

    def sync(self, timeout: float | None = None) -> int:
        """Apply every entry committed so far; return how many (0 if another sync ran meanwhile).

        :raises StoreError: the feed could not be read (without `timeout`).
        """
        self.start()
        if not self._sync_lock.acquire(timeout=-1 if timeout is None else timeout):
            return 0
        try:
            return self._catch_up()
        except InventoryError:
            if timeout is None:
                raise
            return 0
        finally:
            self._sync_lock.release()

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                if self._behind_retention():
                    self._resync()
                else:
                    self.sync()
            except InventoryError as exc:
                log.warning("read model: feed poll failed: %s", exc)
            except Exception:  # noqa: BLE001  (the poller must outlive one bad entry)
                log.exception("read model: feed poll failed")

    def _behind_retention(self) -> bool:
        # Entries older than the retention may be gone: a model that has not read the
        # feed for that long cannot know what it missed.
        ok = self.last_poll_ok
        return ok is not None and self._timer() - ok > self.retention_seconds

    def _resync(self) -> None:
        """Load the whole catalog again while the old version is served, then swap it in."""
        previous = self._view
        fresh = self._full_load(previous, "resync")
        with self._sync_lock:
            self._view = fresh
            self._local = 0
            self._catch_up()
        self.reloads += 1
        log.warning("read model: reloaded the catalog (behind the feed's retention)")

    def _full_load(self, previous: SearchIndex | None, reason: str) -> SearchIndex:
        # The head first: every change after it is applied from the feed, and the
        # lookback covers what the index had not caught up with yet.
        head = self._feed.head()
        self._loaded_at = self.clock()
        view = load_index(self._load(), max(0, head - LOAD_LOOKBACK), previous)
        self.last_poll_ok = self._timer()
        if self.metrics is not None:
            self.metrics.catalog_load(reason)
        return view

    def _catch_up(self) -> int:
        """Read and apply entries until the feed has no more (the caller holds the sync lock)."""
        applied = 0
        try:
            while True:
                entries = self._feed.read(self._view.seq, FEED_PAGE)
                ready = self._in_order(entries)
                if ready:
                    self._apply(ready)
                    applied += len(ready)
                if len(ready) < FEED_PAGE:
                    break
        except InventoryError:
            self.last_poll_failed = self._timer()
            raise
        self.last_poll_ok = self._timer()
        return applied

    def _in_order(self, entries: list) -> list:
        """The entries that follow the current seq without a hole (a hole past its grace is skipped)."""
        ready, expected = [], self._view.seq + 1
        for entry in entries:
            if entry.seq != expected and not self._skip_gap(expected, entry.seq):
                break
            ready.append(entry)
            expected = entry.seq + 1
        return ready

    def _skip_gap(self, expected: int, seq: int) -> bool:
        # A reserved seq without its entry: its transaction is in flight (wait), or its
        # writer died before writing a void (skip after the grace: the entry is written in
        # the same transaction as the change, so a change without one never committed).
        now = self._timer()
        if self._gap_since is None:
            self._gap_since = now
        if now - self._gap_since < self.gap_grace_seconds:
            return False
        log.warning("read model: feed seqs %s..%s never came; skipped", expected, seq - 1)
        self._gap_since = None
        return True

    def _apply(self, entries: list) -> None:
        """Fold entries into a new version: each asset named is updated once, from its fields
        or (a touch, or a change the model cannot place) by reading it again."""
        self._gap_since = None
        view = self._view
        rows: dict[str, Asset] = {}
        missing: set[str] = set()
        published: dict[str, int] = {}
        loaded = self._loaded_at - timedelta(seconds=INDEX_LAG_SECONDS) if self._loaded_at else None
        for entry in entries:
            for event in entry.events:
                asset_id = event["asset_id"]
                published[asset_id] = entry.seq
                current = rows.get(asset_id) or view.row(asset_id)
                if current is not None and event.get("type") == mapping.TOUCH and loaded and entry.at < loaded:
                    continue  # the load read this asset well after this write
                row = _applied(event, current)
                if row is None:
                    missing.add(asset_id)
                elif row is not current:
                    rows[asset_id] = row
        if missing:
            # The latest state of each: whatever later entries of this batch say, it has them.
            for asset_id, asset in self._reread(sorted(missing)).items():
                rows[asset_id] = SnapshotAsset.of(asset, rows.get(asset_id) or view.row(asset_id))
        seq = entries[-1].seq
        if self.metrics is not None:
            self.metrics.feed_applied(len(entries))
        self._local = 0
        self._view = view.updated(rows, seq) if rows else _moved_to(view, seq)
        if self.shared is not None:
            self.shared.advance(seq, published)
        for listener in self._listeners:
            listener(entries, self._view)


def _applied(event: dict, current: Asset | None) -> Asset | None:
    """`current` with the event applied; `current` itself when it already has it; None: read it again."""
    if event.get("type") == mapping.TOUCH or "fields" not in event or current is None:
        return None
    seq = event["asset_seq"]
    if seq <= current.stream_seq:
        return current  # the load (or this process's own write) already had it
    if seq != current.stream_seq + 1:
        return None  # a change the model never saw came between
    values = {name: getattr(current, name) for name in _FIELDS}
    values.update(mapping.fields_from_feed(event["fields"]), stream_seq=seq)
    return SnapshotAsset.of(Asset(**values), current)


def _moved_to(view: SearchIndex, seq: int) -> SearchIndex:
    """The same rows at a later seq (entries that changed nothing the model holds)."""
    return view.updated({}, seq)
