"""TTL caches for hot reads: locked, single-flight on a miss, stale-if-error for a grace period.

Contract (README "Caching"): a value is served for at most `ttl` seconds after it
was loaded, and only while the catalog generation it was loaded at is current
(`inventory/generation.py`): a refresh or an operator write anywhere bumps the
generation, and every worker of an instance drops older entries on its next lookup. When the loader fails
(the store is down) an expired value is served for up to `grace` more seconds,
marked stale, and after that the failure reaches the caller.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from cachetools import LRUCache, TTLCache

from .domain import StoreError

T = TypeVar("T")


@dataclass(frozen=True)
class Cached(Generic[T]):
    value: T
    stale: bool = False


class _Flight:
    """One in-progress load that other threads wait on instead of loading again."""

    def __init__(self):
        self.done = threading.Event()
        self.value = None
        self.error: BaseException | None = None
        # Set when a write drops the key mid-load: the result may predate the
        # write, so it is handed to the waiters but not kept.
        self.invalidated = False


class LoadingCache(Generic[T]):
    def __init__(
        self,
        name: str,
        maxsize: int,
        ttl: float,
        grace: float = 0.0,
        timer: Callable[[], float] = time.monotonic,
        on_lookup: Callable[[str, bool], None] | None = None,
        refresh_ahead: bool = False,
        generation=None,
        changed: Callable[[T, T], bool] | None = None,
        sizeof: Callable[[T], int] | None = None,
    ):
        self.name = name
        self.ttl = ttl
        self.grace = grace
        self._timer = timer
        # Entries outlive their ttl: to serve while the store is failing (grace),
        # and for a reload to compare against (at least one more ttl);
        # freshness is checked against loaded_at.
        # With `sizeof`, maxsize bounds the sum of the values' sizes instead of their number.
        getsizeof = None if sizeof is None else (lambda entry: sizeof(entry[0]))
        self._maxsize = maxsize
        self._entries: TTLCache = TTLCache(
            maxsize=maxsize, ttl=ttl + max(grace, ttl), timer=timer, getsizeof=getsizeof
        )
        if refresh_ahead:
            # A slow-to-load value (the search snapshot) is never evicted for age:
            # after a quiet minute the first requests would otherwise all wait
            # seconds for a synchronous load (BENCHMARKS.md, search p99 at c64).
            # Its generation stamp still decides whether it may stand in.
            self._entries = LRUCache(maxsize=maxsize, getsizeof=getsizeof)
        self._lock = threading.Lock()
        self._flights: dict[Hashable, _Flight] = {}
        self._on_lookup = on_lookup
        # For values that are slow to load (the search snapshot): once expired,
        # keep serving the old value while one background thread reloads it.
        self.refresh_ahead = refresh_ahead
        # The catalog generation (inventory/generation.py) entries are stamped
        # with, and with `changed` the key's own counter: a reload that finds
        # data different from the copy it replaces steps that counter before
        # serving it, so every worker drops its older copy of the key.
        self._generation = generation
        self._changed = changed if generation is not None else None

    def get(self, key: Hashable, loader: Callable[[], T]) -> Cached[T]:
        """Return the cached value for key, loading it (once per process) when expired.

        :raises StoreError: the loader failed and no value within the grace period exists.
        """
        now = self._timer()
        stamp = self._stamp(key)
        with self._lock:
            entry = self._entries.get(key)
            current = entry is not None and entry[2] == stamp
            if current and now - entry[1] < self.ttl:
                self._record(hit=True)
                return Cached(entry[0])
            flight = self._flights.get(key)
            # Only an expired entry of the current generation may stand in while
            # it reloads: an older generation must never be served again.
            if self.refresh_ahead and current:
                if flight is None:
                    flight = self._flights[key] = _Flight()
                    threading.Thread(target=self._load, args=(key, loader, flight), daemon=True).start()
                self._record(hit=True)
                return Cached(entry[0])
            leader = flight is None
            if leader:
                flight = self._flights[key] = _Flight()
        self._record(hit=False)
        if leader:
            self._load(key, loader, flight)
        else:
            flight.done.wait()
        if flight.error is None:
            return Cached(flight.value)
        if isinstance(flight.error, StoreError) and entry is not None and now - entry[1] < self.ttl + self.grace:
            return Cached(entry[0], stale=True)
        raise flight.error

    def _load(self, key, loader, flight: _Flight) -> None:
        try:
            stamp = self._stamp(key)
            flight.value = loader()
            if self._stamp(key) != stamp:
                # A newer generation was published while loading: the value may
                # predate it, and another worker may already serve the newer data.
                stamp = self._stamp(key)
                flight.value = loader()
            if self._changed is not None:
                with self._lock:
                    previous = self._entries.get(key)
                # A first load has nothing to compare with, and during a refresh
                # it may already see data that other workers' copies predate.
                if previous is None or self._changed(previous[0], flight.value):
                    stamp = (stamp[0], self._generation.step_key(hash((self.name, key))))
            with self._lock:
                entry = (flight.value, self._timer(), stamp)
                # A value larger than the whole bound is served but not kept.
                if not flight.invalidated and self._entries.getsizeof(entry) <= self._maxsize:
                    self._entries[key] = entry
        except BaseException as exc:  # handed to every waiter, then re-raised
            flight.error = exc
        finally:
            with self._lock:
                if self._flights.get(key) is flight:
                    del self._flights[key]
            flight.done.set()

    def invalidate(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)
            flight = self._flights.pop(key, None)
            if flight is not None:
                flight.invalidated = True

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            for flight in self._flights.values():
                flight.invalidated = True
            self._flights.clear()

    def _stamp(self, key: Hashable) -> tuple[int, int] | None:
        generation = self._generation
        if generation is None:
            return None
        # Workers are forks of one master, so they share str hashes (the seed).
        return (generation.current(), generation.key(hash((self.name, key))) if self._changed else 0)

    def __len__(self) -> int:
        return len(self._entries)

    def _record(self, hit: bool) -> None:
        if self._on_lookup is not None:
            self._on_lookup(self.name, hit)
