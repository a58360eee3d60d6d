"""TTL caches for hot reads: locked, single-flight on a miss, stale-if-error for a grace period.

Contract (docs/design.md "Read model and caching"): a value is served for at most `ttl` seconds after it
was loaded. Callers key what the read model serves by the version it was built
from (an asset's own change count, the model's seq), so a value never outlives
its data; the ttl and the size bound only bound memory and time-dependent
fields. When the loader fails (the store is down) an expired value is served
for up to `grace` more seconds, marked stale, and after that the failure
reaches the caller.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from cachetools import TTLCache

from ..domain import StoreError

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
        self._lock = threading.Lock()
        self._flights: dict[Hashable, _Flight] = {}
        self._on_lookup = on_lookup

    def get(self, key: Hashable, loader: Callable[[], T]) -> Cached[T]:
        """Return the cached value for key, loading it (once per process) when expired.

        :raises StoreError: the loader failed and no value within the grace period exists.
        """
        now = self._timer()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and now - entry[1] < self.ttl:
                self._record(hit=True)
                return Cached(entry[0])
            flight = self._flights.get(key)
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
            flight.value = loader()
            with self._lock:
                entry = (flight.value, self._timer())
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

    def __len__(self) -> int:
        return len(self._entries)

    def _record(self, hit: bool) -> None:
        if self._on_lookup is not None:
            self._on_lookup(self.name, hit)
