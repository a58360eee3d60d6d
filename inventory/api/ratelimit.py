"""Rate limits: a read and a write budget per caller (token, or trusted end-client address), fixed windows in `limits` storage."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import MemoryStorage, storage_from_string

from .errors import error_response

log = logging.getLogger(__name__)

RATE_LIMIT_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After")


@dataclass(frozen=True)
class Window:
    """One budget as this request left it: for the RateLimit-* headers."""

    limit: int
    remaining: int
    reset_seconds: int
    exceeded: bool

    def headers(self) -> dict[str, str]:
        # RateLimit-Reset is seconds from now (IETF draft), like Retry-After.
        values = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }
        if self.exceeded:
            values["Retry-After"] = str(self.reset_seconds)
        return values


class RateLimits:
    """The two budgets of one worker process and the storage they count in."""

    def __init__(self, reads: str, writes: str, storage_uri: str, workers: int, on_storage_error=None):
        """Parse the limits and open the storage.

        With `memory://` every worker process counts alone, so each enforces its
        share of the limit (ceil(N / workers)) and an instance never admits more
        than about N per window; shared storage (redis://) counts exactly.

        :raises ValueError: a limit that `limits` cannot parse.
        """
        self._storage = storage_from_string(storage_uri, wrap_exceptions=True)
        # A write budget still holds, per process, while the shared storage is down.
        self._fallback = MemoryStorage()
        share = workers if isinstance(self._storage, MemoryStorage) else 1
        self.reads = _share(_parse_one(reads, "RATE_LIMIT_READS"), share)
        self.writes = _share(_parse_one(writes, "RATE_LIMIT_WRITES"), share)
        self._on_storage_error = on_storage_error or (lambda budget: None)
        self._failing = False

    def hit(self, read: bool, key: str) -> Window | None:
        """Count one request against `key`'s read or write budget; None when the storage failed on a read."""
        item = self.reads if read else self.writes
        storage_key = item.key_for(key, "reads" if read else "writes")
        try:
            window = _count(self._storage, item, storage_key)
        except StorageError:
            self._storage_failed("reads" if read else "writes")
            if read:
                return None  # fail open: reads are what the gateway must keep getting
            return _count(self._fallback, item, storage_key)
        if self._failing:
            self._failing = False
            log.warning("rate limit storage recovered")
        return window

    def _storage_failed(self, budget: str) -> None:
        self._on_storage_error(budget)
        if not self._failing:
            # Once per outage, not per request; the metric counts every one.
            self._failing = True
            log.warning("rate limit storage failed: reads pass unlimited, writes count per process", exc_info=True)


def too_many_requests(window: Window):
    """The 429 answer, in the one error shape, with Retry-After and the RateLimit headers."""
    return error_response(
        429,
        f"Rate limit exceeded ({window.limit} per window); retry after the Retry-After delay.",
        headers=window.headers(),
    )


def _count(storage, item: RateLimitItem, key: str) -> Window:
    # The fixed-window strategy of `limits`, with one round trip for the count
    # and one for the reset instead of its three.
    used = storage.incr(key, item.get_expiry())
    reset = max(0, math.ceil(storage.get_expiry(key) - time.time()))
    return Window(item.amount, max(0, item.amount - used), reset, used > item.amount)


def _parse_one(raw: str, name: str) -> RateLimitItem:
    try:
        return parse(raw)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from exc


def _share(item: RateLimitItem, workers: int) -> RateLimitItem:
    if workers <= 1:
        return item
    return type(item)(max(1, math.ceil(item.amount / workers)), item.multiples, item.namespace)
