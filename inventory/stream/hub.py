"""Hub: the stream clients of one process, fed by its read model (each applied feed entry, in seq order)."""

from __future__ import annotations

import logging
import queue
import threading
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from ..domain import Asset, InventoryError, utcnow
from ..domain.numbers import plain_number
from ..domain.pricecheck import (
    PRIMARY_SOURCE,
    CheckStatus,
    PriceCheck,
    SourcePrice,
    check_plain,
)

log = logging.getLogger(__name__)

# Entries kept in memory for resumes and late subscribers; older ones are read from the table.
RING_SIZE = 2000


# The hubs started in this process, so a signal handler can close their streams.
_STARTED: "weakref.WeakSet[Hub]" = weakref.WeakSet()


def close_process_streams(reason: str = "shutdown") -> None:
    """End every stream of this process with a reconnect hint (gunicorn's stop signal hook).

    Safe in a signal handler: it only marks the hubs (no lock to wait for), and each stream
    sees the mark at its next tick (half a second at most) and sends its close notice itself.
    Closing the queues from here instead left streams open when a second signal (the master's
    SIGQUIT after the terminal's SIGINT) interrupted the first handler mid-loop.
    """
    for hub in list(_STARTED):
        if not hub.stopping:
            hub.stopping.append(reason)


class Closed(Exception):
    """The stream ended: `reason` says why (slow, shutdown) and clients may reconnect."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _text(value) -> str | None:
    # One number format on every path (REST, stream, board, CSV): plain notation, every digit.
    return None if value is None else plain_number(value)


def message(kind: str, seq: int, asset: Asset, now: datetime, max_age_seconds: int, **extra) -> dict:
    """One stream message about `asset` as the model holds it."""
    as_of = asset.last_price_update
    return {
        "type": kind,
        "seq": seq,
        "asset_id": asset.asset_id,
        "asset_seq": asset.stream_seq,
        "price": _text(asset.current_price),
        "price_change_24h": _text(asset.price_change_24h),
        "price_change_percentage_24h": _text(asset.price_change_percentage_24h),
        "as_of": as_of.isoformat() if as_of else None,
        "status": asset.status.value,
        "tradable": asset.is_tradable(now, max_age_seconds),
        "source": asset.source_of_price,
        "price_check": check_plain(asset.check()),
        **extra,
    }


_NUMBERS = ("price", "price_change_24h", "price_change_percentage_24h")


def event_message(event: dict, seq: int, asset: Asset | None, now: datetime, max_age_seconds: int) -> dict | None:
    """The message of one feed event, from the event itself (a replay of the log says what
    happened then), with what only the model knows (status, tradable now) from `asset`."""
    kind = event.get("type")
    if kind not in ("price", "status", "check"):
        return None
    out = {k: v for k, v in event.items() if k not in ("type", "fields")}
    for name in _NUMBERS:
        if out.get(name) is not None:
            out[name] = _text(Decimal(out[name]))
    if kind == "price":
        out.setdefault("source", PRIMARY_SOURCE)  # entries written before the second source
        if "price_check" not in out and out.get("price") is not None:
            # An unchecked asset's price: the check is the price itself, from one source.
            only = SourcePrice(out["source"], Decimal(out["price"]), datetime.fromisoformat(out["as_of"]))
            out["price_check"] = check_plain(PriceCheck(CheckStatus.SINGLE_SOURCE, (only,)))
    if kind == "check" and "price_check" not in out and asset is not None:
        out["price_check"] = check_plain(asset.check())
    if asset is not None:
        out.setdefault("status", asset.status.value)
        out["tradable"] = (
            out["status"] == "ACTIVE" and out.get("price", _text(asset.current_price)) is not None
            and not asset.price_stale(now, max_age_seconds)
        )
    return {"type": kind, "seq": seq, **out}


def entry_messages(entry, view, now: datetime, max_age_seconds: int) -> list[dict]:
    """The messages of one feed entry: each event's own, or the snapshot of an asset it touched
    (created, or its catalog or categories changed)."""
    out = []
    for event in entry.events:
        asset = view.row(event["asset_id"])
        message_ = event_message(event, entry.seq, asset, now, max_age_seconds)
        if message_ is None and asset is not None:
            message_ = message("snapshot", entry.seq, asset, now, max_age_seconds)
        if message_ is not None:
            out.append(message_)
    return out


@dataclass
class Subscription:
    """One client's stream: its filter, its queue, and where it is in the feed."""

    assets: set[str] | None  # None: every asset; else the assets named (by query or subscribe message)
    client_key: str | None  # what the per-client limit counts (None: not counted)
    queue: queue.Queue
    # Category slugs followed, and their members: read when subscribed, then kept current by
    # the snapshots of touched assets (a category write is a touch in the feed).
    categories: set[str] = field(default_factory=set)
    members: set[str] = field(default_factory=set)
    position: int = 0  # the last seq whose messages are all queued
    closed: str | None = None
    stopping: list = field(default_factory=list)  # the hub's: [reason] once the process is stopping
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
        if self.stopping:
            raise Closed(self.stopping[0])
        try:
            message = self.queue.get(timeout=timeout)
        except queue.Empty:
            if self.closed or self.stopping:
                raise Closed(self.closed or self.stopping[0]) from None
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
    """One process's stream clients, fed by its read model: every applied feed entry becomes messages."""

    def __init__(
        self,
        model,
        *,
        max_age_seconds: int,
        retention_seconds: int,
        poll_seconds: float = 0.5,
        max_connections: int = 500,
        max_per_client: int = 50,
        queue_size: int = 1000,
        clock: Callable[[], datetime] = utcnow,
        metrics=None,
    ):
        self.model = model  # readmodel.ReadModel
        self.max_age_seconds = max_age_seconds
        self.retention = timedelta(seconds=retention_seconds)
        self.poll_seconds = poll_seconds
        self.max_connections, self.max_per_client, self.queue_size = max_connections, max_per_client, queue_size
        self.clock = clock
        self.metrics = metrics  # telemetry.metrics.StreamMetrics, or None (no metrics)
        self._lock = threading.RLock()
        self._start_lock = threading.Lock()
        self._ring: deque = deque(maxlen=RING_SIZE)
        self._subs: list[Subscription] = []
        self._stale: set[str] = set()
        self.position = 0
        self._started = False
        self.stopping: list[str] = []  # close_process_streams
        self._stop = threading.Event()
        self.dropped = 0

    # -- the model's side ------------------------------------------------------

    def start(self) -> "Hub":
        """Follow the model (loading it if no request has yet) and notice stale prices (idempotent)."""
        # Not under the hub's lock: the model calls the hub (under that lock) from whichever
        # thread applies entries, the one loading it included.
        with self._start_lock:
            if not self._started:
                self.model.add_listener(self._applied)
                self.model.start()
                view = self.model.view()
                now = self.clock()
                with self._lock:
                    self.position = max(self.position, view.seq)
                    self._stale = {a.asset_id for a in view.assets if a.price_stale(now, self.max_age_seconds)}
                if self.poll_seconds > 0:
                    threading.Thread(target=self._run, name="stream-stale", daemon=True).start()
                self._started = True
                _STARTED.add(self)
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.notice_stale()
            except Exception:  # noqa: BLE001  (must outlive one bad row)
                log.exception("stream: stale check failed")

    def poll_once(self) -> None:
        """Bring the model up to the feed and notice prices gone stale (tests drive the hub with it)."""
        self.model.sync()
        self.notice_stale()

    def _applied(self, entries: list, view) -> None:
        """The model applied these entries (in seq order): their messages go out, and to the ring."""
        now = self.clock()
        with self._lock:
            for entry in entries:
                messages = entry_messages(entry, view, now, self.max_age_seconds)
                for message_ in messages:
                    asset = view.row(message_["asset_id"])
                    if message_["type"] == "snapshot":
                        self._follow_categories(asset, entry.seq)
                    elif message_["type"] == "price" and asset.asset_id in self._stale \
                            and not asset.price_stale(now, self.max_age_seconds):
                        self._stale.discard(asset.asset_id)
                        message_["recovered"] = True
                self.position = max(self.position, entry.seq)
                self._ring.append((entry.seq, entry.at, messages))
                for sub in list(self._subs):
                    self._send(sub, entry.seq, messages)
                if self.metrics and messages and self._started:  # not the load's lookback: old news
                    self.metrics.delivered((now - entry.at).total_seconds())
            self.position = max(self.position, view.seq)

    def _follow_categories(self, asset: Asset, seq: int) -> None:
        # Membership is the asset's own categories now: a stream that follows a category
        # gains an asset that joined it (its snapshot follows) and is told of one that left.
        for sub in self._subs:
            if not sub.categories or seq <= sub.position:
                continue
            if sub.categories.intersection(asset.categories):
                sub.members.add(asset.asset_id)
            elif asset.asset_id in sub.members:
                sub.members.discard(asset.asset_id)
                if not sub.wants(asset.asset_id):
                    sub.sent_seq.pop(asset.asset_id, None)
                    self._offer(sub, {"type": "left", "seq": seq, "asset_id": asset.asset_id,
                                      "asset_seq": asset.stream_seq, "categories": list(asset.categories)})

    def notice_stale(self) -> None:
        # Derived from as_of and the bound alone, so every instance says the same, at the same moment.
        view = self.model.view()
        now = self.clock()
        with self._lock:
            for asset in view.assets:
                if asset.asset_id not in self._stale and asset.price_stale(now, self.max_age_seconds):
                    self._stale.add(asset.asset_id)
                    stale = message("stale", self.position, asset, now, self.max_age_seconds)
                    for sub in list(self._subs):
                        if sub.wants(asset.asset_id):
                            self._offer(sub, stale)

    def _send(self, sub: Subscription, seq: int, messages: list[dict]) -> None:
        if seq <= sub.position:
            return
        sent = False
        for message_ in messages:
            # A snapshot goes out whatever was sent before (its asset's catalog changed);
            # a change only when newer than what the client has.
            if sub.wants(message_["asset_id"]) and (
                message_["type"] == "snapshot" or message_["asset_seq"] > sub.sent_seq.get(message_["asset_id"], -1)
            ):
                sub.sent_seq[message_["asset_id"]] = max(message_["asset_seq"], sub.sent_seq.get(message_["asset_id"], -1))
                if not self._offer(sub, message_):
                    return
                sent = True
        sub.position = seq
        if sent:
            self._offer(sub, position_marker(seq))

    def _offer(self, sub: Subscription, message_: dict) -> bool:
        if sub.closed:
            return False
        if sub.offer(message_):
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
        client_key: str | None,
        since: int | None = None,
        categories: tuple[set[str], set[str]] | None = None,
    ) -> Subscription:
        """Open a stream: a snapshot (or, with `since`, what was missed), then every change.

        `categories`: the slugs followed and their members now (assets None then means none named).

        :raises Full: the process or the client has no room for another stream.
        """
        self.start()
        view = self.model.view()
        with self._lock:
            if len(self._subs) >= self.max_connections:
                raise Full("process")
            if client_key is not None and \
                    sum(1 for s in self._subs if s.client_key == client_key) >= self.max_per_client:
                raise Full("client")
            if self.stopping:
                raise Full("process")  # a stopping process takes no new stream
            sub = Subscription(assets, client_key, queue.Queue(self.queue_size + 10), stopping=self.stopping)
            if categories:
                sub.assets = sub.assets or set()
                sub.categories, sub.members = set(categories[0]), set(categories[1])
            replay = self._replay(since, view) if since is not None else None
            if replay is None:
                self._snapshot(sub, view, resync=since is not None)
            else:
                for seq, messages in replay:
                    self._send(sub, seq, messages)
                now = self.clock()
                for asset_id in sorted(self._stale):
                    asset = view.row(asset_id)
                    if asset is not None and sub.wants(asset_id):
                        self._offer(sub, message("stale", self.position, asset, now, self.max_age_seconds))
            sub.position = max(sub.position, self.position)
            self._subs.append(sub)
        return sub

    def _snapshot(self, sub: Subscription, view, resync: bool) -> None:
        extra = {"resync": True} if resync else {}
        now = self.clock()
        for asset in sorted(view.assets, key=lambda a: a.asset_id):
            if sub.wants(asset.asset_id):
                sub.sent_seq[asset.asset_id] = asset.stream_seq
                self._offer(sub, message("snapshot", self.position, asset, now, self.max_age_seconds, **extra))
        sub.position = self.position
        self._offer(sub, position_marker(self.position))

    def _replay(self, since: int, view) -> list[tuple[int, list[dict]]] | None:
        """The messages after `since`, entry by entry, from the log; None when they are no longer all kept."""
        if since >= self.position:
            return []
        if self._ring and self._ring[0][0] <= since + 1:
            return [(seq, msgs) for seq, _, msgs in self._ring if seq > since]
        # Older than memory: the table keeps entries for the retention period.
        try:
            entries = self.model.read_feed(since, self.position - since)
        except InventoryError:
            return None
        now = self.clock()
        oldest_kept = now - self.retention
        expected, replay = since + 1, []
        for entry in entries:
            if entry.seq > self.position:
                break
            if entry.seq != expected or entry.at < oldest_kept:
                return None
            replay.append((entry.seq, entry_messages(entry, view, now, self.max_age_seconds)))
            expected += 1
        return replay if expected == self.position + 1 else None

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
        view = self.model.view()
        now = self.clock()
        with self._lock:
            if sub.assets is None:
                return  # every asset already
            followed = sub.assets | sub.members
            sub.assets = (sub.assets - remove) | (add or set())
            if categories is not None:
                sub.categories, sub.members = set(categories[0]), set(categories[1])
            for asset_id in sorted((sub.assets | sub.members) - followed):
                asset = view.row(asset_id)
                if asset is not None:
                    sub.sent_seq[asset_id] = asset.stream_seq
                    self._offer(sub, message("snapshot", self.position, asset, now, self.max_age_seconds))

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
        """Tell every client to reconnect (elsewhere) and stop noticing."""
        self._stop.set()
        with self._lock:
            for sub in list(self._subs):
                self._close(sub, reason)
