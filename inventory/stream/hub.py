"""Hub: one process's view of the feed (polled from the table) fanned out to its stream clients."""

from __future__ import annotations

import logging
import queue
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..domain import Asset, InventoryError, utcnow

log = logging.getLogger(__name__)

# Entries kept in memory for resumes and late subscribers; older ones are read from the table.
RING_SIZE = 2000
# On start the hub re-reads this many entries before the head: an asset read from
# the (eventually consistent) index may miss a change committed just before.
START_LOOKBACK = 200


# The hubs started in this process, so a signal handler can close their streams.
_STARTED: "weakref.WeakSet[Hub]" = weakref.WeakSet()


def close_process_streams(reason: str = "shutdown") -> None:
    """Close every stream of this process with a reconnect hint (gunicorn's SIGTERM hook)."""
    for hub in list(_STARTED):
        hub.close_all(reason)


class Closed(Exception):
    """The stream ended: `reason` says why (slow, shutdown) and clients may reconnect."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class AssetState:
    """What the hub knows of one asset: enough to build a snapshot and to notice a stale price."""

    asset_id: str
    asset_seq: int
    status: str
    price: str | None
    price_change_24h: str | None
    price_change_percentage_24h: str | None
    as_of: datetime | None
    stale: bool = False

    def tradable(self) -> bool:
        return self.status == "ACTIVE" and self.price is not None and not self.stale

    def message(self, kind: str, seq: int, **extra) -> dict:
        return {
            "type": kind,
            "seq": seq,
            "asset_id": self.asset_id,
            "asset_seq": self.asset_seq,
            "price": self.price,
            "price_change_24h": self.price_change_24h,
            "price_change_percentage_24h": self.price_change_percentage_24h,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "status": self.status,
            "tradable": self.tradable(),
            **extra,
        }


def _text(value) -> str | None:
    return None if value is None else str(value)


def state_of(asset: Asset) -> AssetState:
    return AssetState(
        asset_id=asset.asset_id,
        asset_seq=asset.stream_seq,
        status=asset.status.value,
        price=_text(asset.current_price),
        price_change_24h=_text(asset.price_change_24h),
        price_change_percentage_24h=_text(asset.price_change_percentage_24h),
        as_of=asset.last_price_update,
    )


@dataclass
class Subscription:
    """One client's stream: its filter, its queue, and where it is in the feed."""

    assets: set[str] | None  # None: every asset; else the assets named (by query or subscribe message)
    client_key: str
    queue: queue.Queue
    # Category slugs followed, and their members when subscribed (or first seen by the hub):
    # category writes are not in the feed, so membership is not re-read while the stream lasts.
    categories: set[str] = field(default_factory=set)
    members: set[str] = field(default_factory=set)
    position: int = 0  # the last seq whose messages are all queued
    closed: str | None = None
    sent_seq: dict[str, int] = field(default_factory=dict)  # asset -> last asset_seq queued

    def wants(self, asset_id: str) -> bool:
        return self.assets is None or asset_id in self.assets or asset_id in self.members

    def offer(self, message: dict) -> bool:
        """Queue a message; False when the client is too far behind (then it is dropped)."""
        try:
            self.queue.put_nowait(message)
            return True
        except queue.Full:
            return False

    def next(self, timeout: float) -> dict | None:
        """The next message, or None after `timeout` (time for a heartbeat).

        :raises Closed: the hub closed this stream.
        """
        try:
            message = self.queue.get(timeout=timeout)
        except queue.Empty:
            if self.closed:
                raise Closed(self.closed) from None
            return None
        if message.get("type") == "_closed":
            raise Closed(message["reason"])
        return message


def position_marker(seq: int) -> dict:
    """Queued after the last message of an entry: every message up to `seq` is out (the resume point)."""
    return {"type": "_position", "seq": seq}


class Full(Exception):
    """No room for another stream (per process or per client)."""


class Hub:
    def __init__(
        self,
        read_feed: Callable[[int, int], list],
        head: Callable[[], int],
        load_assets: Callable[[], Iterable[Asset]],
        *,
        get_asset: Callable[[str], Asset] | None = None,
        max_age_seconds: int,
        retention_seconds: int,
        poll_seconds: float = 0.5,
        gap_grace_seconds: float = 30.0,
        max_connections: int = 500,
        max_per_client: int = 50,
        queue_size: int = 1000,
        clock: Callable[[], datetime] = utcnow,
        metrics=None,
    ):
        self._read_feed, self._head, self._load_assets = read_feed, head, load_assets
        self._get_asset = get_asset  # reads an asset first seen in the feed (created after the load)
        self.max_age = timedelta(seconds=max_age_seconds)
        self.retention = timedelta(seconds=retention_seconds)
        self.poll_seconds, self.gap_grace = poll_seconds, gap_grace_seconds
        self.max_connections, self.max_per_client, self.queue_size = max_connections, max_per_client, queue_size
        self.clock = clock
        self.metrics = metrics  # inventory.metrics.StreamMetrics, or None (no metrics)
        self._lock = threading.RLock()
        self._states: dict[str, AssetState] = {}
        self._ring: deque = deque(maxlen=RING_SIZE)
        self._subs: list[Subscription] = []
        self.position = 0
        self._gap_since: float | None = None
        self._started = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = 0

    # -- the poller ----------------------------------------------------------

    def start(self) -> "Hub":
        """Load the catalog and start polling in a daemon thread (idempotent)."""
        with self._lock:
            if self._thread is None:
                self.load()
                self._thread = threading.Thread(target=self._run, name="stream-poller", daemon=True)
                self._thread.start()
                _STARTED.add(self)
        return self

    def load(self) -> None:
        assets = list(self._load_assets())
        head = self._head()
        with self._lock:
            self._states = {a.asset_id: state_of(a) for a in assets}
            self.position = max(0, head - START_LOOKBACK)
        self.poll_once()  # catch up to the head before anyone subscribes
        self._started.set()

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll_once()
            except InventoryError as exc:
                # Clients keep their heartbeats; the next poll tries again.
                log.warning("stream feed poll failed: %s", exc)
            except Exception:  # noqa: BLE001  (the poller must outlive one bad entry)
                log.exception("stream feed poll failed")

    def poll_once(self) -> int:
        """Read and deliver new entries, then notice prices gone stale; return how many entries."""
        delivered = 0
        while True:
            entries = self._read_feed(self.position, 100)
            for entry in entries:
                if entry.seq != self.position + 1 and not self._skip_gap(entry.seq):
                    break
                self._deliver(entry)
                delivered += 1
            else:
                if len(entries) == 100:
                    continue
            break
        self._notice_stale()
        return delivered

    def _skip_gap(self, seq: int) -> bool:
        # A reserved seq whose entry is missing: its transaction is in flight (wait),
        # or its writer died before writing a void (skip after the grace period).
        now = time.monotonic()
        if self._gap_since is None:
            self._gap_since = now
        if now - self._gap_since < self.gap_grace:
            return False
        log.warning("stream feed seqs %s..%s never came; skipped", self.position + 1, seq - 1)
        self._gap_since = None
        return True

    def _deliver(self, entry) -> None:
        new = self._read_new(entry)
        with self._lock:
            self._gap_since = None
            messages = [m for event in entry.events for m in self._apply(event, entry.seq, new)]
            self.position = entry.seq
            self._ring.append((entry.seq, entry.at, messages))
            for sub in list(self._subs):
                self._send(sub, entry.seq, messages)
        if self.metrics and messages:
            self.metrics.delivered((self.clock() - entry.at).total_seconds())

    def _read_new(self, entry) -> dict[str, Asset]:
        # Outside the lock: one consistent GetItem per asset created since the load (rare), so
        # subscribers of every asset get its snapshot before its changes.
        if self._get_asset is None:
            return {}
        new = {}
        for asset_id in {e["asset_id"] for e in entry.events if e["asset_id"] not in self._states}:
            try:
                new[asset_id] = self._get_asset(asset_id)
            except InventoryError as exc:
                log.warning("stream: new asset %s not read (%s); its changes go out without a snapshot",
                            asset_id, exc)
        return new

    def _apply(self, event: dict, seq: int, new: dict[str, Asset]) -> list[dict]:
        """Fold one feed event into the asset's state; its messages (none when already folded).

        An asset the hub has not seen yet (created after the load) gets a snapshot first.
        """
        out = []
        state = self._states.get(event["asset_id"])
        if state is None and event["asset_id"] in new:
            asset = new[event["asset_id"]]
            state = self._states[asset.asset_id] = state_of(asset)
            state.stale = self._is_stale(state)
            for sub in self._subs:
                if sub.categories.intersection(asset.categories):
                    sub.members.add(asset.asset_id)
            out.append(state.message("snapshot", seq))
        elif state is None:
            state = self._states[event["asset_id"]] = AssetState(
                event["asset_id"], 0, "ACTIVE", None, None, None, None
            )
        if event["asset_seq"] <= state.asset_seq:
            return out  # the catalog load (or the read of a new asset) already had it
        state.asset_seq = event["asset_seq"]
        if event["type"] == "price":
            state.price = event["price"]
            state.price_change_24h = event.get("price_change_24h")
            state.price_change_percentage_24h = event.get("price_change_percentage_24h")
            state.as_of = datetime.fromisoformat(event["as_of"])
            recovered = state.stale
            state.stale = self._is_stale(state)
            out.append(state.message("price", seq, **({"recovered": True} if recovered and not state.stale else {})))
            return out
        state.status = event["status"]
        out.append(state.message("status", seq, from_status=event.get("from_status")))
        return out

    def _is_stale(self, state: AssetState) -> bool:
        return state.price is not None and (state.as_of is None or self.clock() - state.as_of > self.max_age)

    def _notice_stale(self) -> None:
        # Derived from as_of and the bound alone, so every instance says the same, at the same moment.
        with self._lock:
            for state in self._states.values():
                if not state.stale and self._is_stale(state):
                    state.stale = True
                    message = state.message("stale", self.position)
                    for sub in list(self._subs):
                        if sub.wants(state.asset_id):
                            self._offer(sub, message)

    def _send(self, sub: Subscription, seq: int, messages: list[dict]) -> None:
        if seq <= sub.position:
            return
        sent = False
        for message in messages:
            # -1: a new asset's snapshot may be its change 0 (created without a feed entry).
            if sub.wants(message["asset_id"]) and message["asset_seq"] > sub.sent_seq.get(message["asset_id"], -1):
                sub.sent_seq[message["asset_id"]] = message["asset_seq"]
                if not self._offer(sub, message):
                    return
                sent = True
        sub.position = seq
        if sent:
            self._offer(sub, position_marker(seq))

    def _offer(self, sub: Subscription, message: dict) -> bool:
        if sub.closed:
            return False
        if sub.offer(message):
            return True
        self.dropped += 1
        if self.metrics:
            self.metrics.dropped_client("slow")
        self._close(sub, "slow")
        return False

    # -- clients -------------------------------------------------------------

    def subscribe(
        self,
        assets: set[str] | None,
        client_key: str,
        since: int | None = None,
        categories: tuple[set[str], set[str]] | None = None,
    ) -> Subscription:
        """Open a stream: a snapshot (or, with `since`, what was missed), then every change.

        `categories`: the slugs followed and their members now (assets None then means none named).

        :raises Full: the process or the client has no room for another stream.
        """
        self._started.wait(timeout=30)
        with self._lock:
            if len(self._subs) >= self.max_connections:
                raise Full("process")
            if sum(1 for s in self._subs if s.client_key == client_key) >= self.max_per_client:
                raise Full("client")
            sub = Subscription(assets, client_key, queue.Queue(self.queue_size + 10))
            if categories:
                sub.assets = sub.assets or set()
                sub.categories, sub.members = set(categories[0]), set(categories[1])
            replay = self._replay(since) if since is not None else None
            if replay is None:
                self._snapshot(sub, resync=since is not None)
            else:
                for seq, messages in replay:
                    self._send(sub, seq, messages)
                for state in self._states.values():
                    if state.stale and sub.wants(state.asset_id):
                        self._offer(sub, state.message("stale", self.position))
            sub.position = max(sub.position, self.position)
            self._subs.append(sub)
        return sub

    def _snapshot(self, sub: Subscription, resync: bool) -> None:
        extra = {"resync": True} if resync else {}
        for state in sorted(self._states.values(), key=lambda s: s.asset_id):
            if sub.wants(state.asset_id):
                sub.sent_seq[state.asset_id] = state.asset_seq
                self._offer(sub, state.message("snapshot", self.position, **extra))
        sub.position = self.position
        self._offer(sub, position_marker(self.position))

    def _replay(self, since: int) -> list[tuple[int, list[dict]]] | None:
        """The messages after `since`, entry by entry; None when they are no longer all kept."""
        if since >= self.position:
            return []
        if self._ring and self._ring[0][0] <= since + 1:
            return [(seq, msgs) for seq, _, msgs in self._ring if seq > since]
        # Older than memory: the table keeps entries for the retention period.
        try:
            entries = self._read_feed(since, self.position - since)
        except InventoryError:
            return None
        oldest_kept = self.clock() - self.retention
        expected = since + 1
        replay = []
        for entry in entries:
            if entry.seq > self.position:
                break
            if entry.seq != expected or entry.at < oldest_kept:
                return None
            replay.append((entry.seq, [self._rebuild(event, entry.seq) for event in entry.events]))
            expected += 1
        return replay if expected == self.position + 1 else None

    @staticmethod
    def _rebuild(event: dict, seq: int) -> dict:
        kind = event["type"]
        message = {k: v for k, v in event.items() if k != "type"}
        return {"type": kind, "seq": seq, **message}

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def change_filter(
        self,
        sub: Subscription,
        add: set[str] | None = None,
        remove: set[str] = frozenset(),
        categories: tuple[set[str], set[str]] | None = None,
    ) -> None:
        """Follow more assets (a snapshot of each newly followed one first) or fewer.

        `categories`: the slugs now followed and their members now (read by the caller).
        """
        with self._lock:
            if sub.assets is None:
                return  # every asset already
            followed = sub.assets | sub.members
            sub.assets = (sub.assets - remove) | (add or set())
            if categories is not None:
                sub.categories, sub.members = set(categories[0]), set(categories[1])
            for asset_id in sorted((sub.assets | sub.members) - followed):
                state = self._states.get(asset_id)
                if state:
                    sub.sent_seq[asset_id] = state.asset_seq
                    self._offer(sub, state.message("snapshot", self.position))

    def connections(self) -> int:
        return len(self._subs)

    def _close(self, sub: Subscription, reason: str) -> None:
        sub.closed = reason
        # Room for the close notice even in a full queue (its size has slack).
        try:
            sub.queue.put_nowait({"type": "_closed", "reason": reason})
        except queue.Full:
            pass
        if sub in self._subs:
            self._subs.remove(sub)

    def close_all(self, reason: str = "shutdown") -> None:
        """Tell every client to reconnect (elsewhere) and stop polling."""
        self._stop.set()
        with self._lock:
            for sub in list(self._subs):
                self._close(sub, reason)
