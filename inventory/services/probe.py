"""The live check of the price source: one ping per cache period per worker, shared by health calls and scrapes."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from ..domain import PriceSourceError, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProbeResult:
    reachable: bool
    latency_ms: float | None
    checked_at: datetime
    # The newest failed ping's message and time, kept after a recovery so a flap is visible.
    last_error: str | None = None
    last_error_at: datetime | None = None


class SourceProbe:
    """Pings the source at most once per `cache_seconds`; concurrent callers wait for the one ping in flight.

    Health checks come from load balancers, orchestrators and Prometheus, each
    every few seconds per instance: pinging on each would spend the source's
    rate limit, which the price refresh needs.
    """

    def __init__(
        self,
        ping: Callable[[], float],
        cache_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_result: Callable[[bool, float | None], None] | None = None,
    ):
        self._ping = ping
        self.cache_seconds = cache_seconds
        self.clock = clock
        self.on_result = on_result
        self._result: ProbeResult | None = None
        self._checked = 0.0
        self._lock = threading.Lock()

    def check(self) -> ProbeResult:
        with self._lock:
            if self._result is not None and self.clock() - self._checked < self.cache_seconds:
                return self._result
            previous = self._result
            try:
                seconds = self._ping()
            except PriceSourceError as exc:
                message = str(exc)
                log.warning("price source ping failed: %s", message)
                result = ProbeResult(False, None, utcnow(), message, utcnow())
                seconds = None
            else:
                result = ProbeResult(
                    True, round(seconds * 1000, 2), utcnow(),
                    previous.last_error if previous else None, previous.last_error_at if previous else None,
                )
            self._result, self._checked = result, self.clock()
        if self.on_result:
            self.on_result(result.reachable, seconds)
        return result


def build_probe(config, on_result=None, on_response=None) -> SourceProbe:
    """A probe of COINGECKO_API_URL; the HTTP client is built on the first ping (after gunicorn forks)."""
    client = []

    def ping() -> float:
        if not client:
            # Imported here: the HTTP stack of the source loads where a ping is made.
            from ..source.client import CoinGeckoClient

            client.append(CoinGeckoClient(config.COINGECKO_API_URL, config.COINGECKO_API_KEY, on_response=on_response))
        return client[0].ping(timeout=config.HEALTH_SOURCE_PING_TIMEOUT_SECONDS)

    return SourceProbe(ping, config.HEALTH_SOURCE_PING_CACHE_SECONDS, on_result=on_result)
