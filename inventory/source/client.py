"""CoinGecko HTTP client: pooled session, retries that honour Retry-After, a circuit breaker."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.util.retry import Retry

from ..domain import PriceSourceError
from .rows import load_json

log = logging.getLogger(__name__)

USER_AGENT = "inventory-service/1.0 (+price refresh)"
PRO_HOST = "pro-api.coingecko.com"
PER_PAGE = 250
# Percentage windows CoinGecko only returns when asked for explicitly.
PRICE_CHANGE_WINDOWS = "1h,24h,7d,30d"
# /exchanges/{id}/tickers: 100 tickers a page (CoinGecko's fixed page size); coins asked per call.
TICKERS_PER_PAGE = 100
TICKER_COINS_PER_CALL = 50


class PriceSourceUnavailable(PriceSourceError):
    """Server errors, timeouts or rate limiting outlasted the retries."""


class PriceSourceRejected(PriceSourceError):
    """The source refused us (wrong key or host): retrying will not help."""


class MalformedResponse(PriceSourceError):
    """The body was not the JSON shape the endpoint documents."""


class CircuitOpen(PriceSourceError):
    """Calls are paused after repeated failures (or a long Retry-After)."""


class CircuitBreaker:
    """Closed -> open after `threshold` failed fetches -> one probe after a pause -> closed or open again.

    The pause starts at `initial_pause` and doubles with every further failure,
    up to `cooldown`, so a short hiccup costs seconds while a long outage is not
    hammered. A Retry-After from the source sets the pause exactly, at once.
    Counted per fetch, not per HTTP attempt: the retries inside one fetch are
    already bounded by the transport.
    """

    def __init__(self, threshold: int, cooldown: float, clock: Callable[[], float] = time.monotonic,
                 initial_pause: float = 5.0):
        self.threshold = threshold
        self.cooldown = cooldown
        self.initial_pause = min(initial_pause, cooldown)
        self.clock = clock
        self.failures = 0
        self.open_until: float | None = None
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        if self.open_until is None:
            return "closed"
        return "open" if self.clock() < self.open_until else "half_open"

    def before_call(self) -> None:
        """:raises CircuitOpen: still pausing."""
        with self._lock:
            if self.open_until is not None and self.clock() < self.open_until:
                wait = self.open_until - self.clock()
                raise CircuitOpen(f"price source paused for {wait:.0f} s after repeated failures")

    def success(self) -> None:
        with self._lock:
            self.failures = 0
            self.open_until = None

    def failure(self, pause: float | None = None) -> None:
        """Record a failed fetch; `pause` (a Retry-After, seconds) opens the circuit for exactly that long."""
        with self._lock:
            self.failures += 1
            if pause is not None:
                self.open_until = self.clock() + pause
            elif self.failures >= self.threshold or self.open_until is not None:
                self.open_until = self.clock() + self.backoff()

    def backoff(self) -> float:
        """The pause after the current run of failures: initial_pause, doubled per failure past the threshold."""
        doublings = max(0, self.failures - self.threshold)
        return min(self.cooldown, self.initial_pause * 2 ** min(doublings, 32))


class PauseOnLongRetryAfter(Retry):
    """urllib3's Retry, except that a Retry-After longer than `retry_after_max` is not waited in-line.

    urllib3 would sleep `retry_after_max` and ask again, before the time the source
    asked for; blocking the refresh for minutes also ages every price. Such an answer
    ends the fetch at once instead: the caller sees the 429 and pauses the breaker for
    exactly the Retry-After, and the second source stands in meanwhile.
    """

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        if response is not None and response.status in self.RETRY_AFTER_STATUS_CODES:
            # get_retry_after caps the value at retry_after_max: read it uncapped.
            wait = self.new(retry_after_max=2**31).get_retry_after(response)
            if wait is not None and wait > self.retry_after_max:
                raise MaxRetryError(_pool, url, ResponseError(f"Retry-After {wait:.0f} s"))
        return super().increment(method, url, response, error, _pool, _stacktrace)


class RateLimiter:
    """Spaces calls so at most `per_minute` start in any minute (one process: the master)."""

    def __init__(self, per_minute: int, clock=time.monotonic, sleep=time.sleep):
        self.interval = 60.0 / per_minute if per_minute > 0 else 0.0
        self.clock, self.sleep = clock, sleep
        self.next_slot = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            now = self.clock()
            wait = self.next_slot - now
            self.next_slot = max(now, self.next_slot) + self.interval
        if wait > 0:
            self.sleep(wait)


@dataclass
class MarketFetch:
    rows: list
    calls: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


class JsonSource:
    """A price source's HTTP contract: pooled session, retries that honour Retry-After, a breaker, a rate budget.

    Every source (CoinGecko, the exchange that cross-checks it) is reached through
    this one contract, so a misbehaving source costs the same bounded time and
    is paused the same way. `name` labels its metrics and its errors.
    """

    name = "source"
    # Statuses retried inside one fetch (with backoff, honouring Retry-After).
    retry_statuses: tuple[int, ...] = (429, 500, 502, 503, 504)
    # Statuses that mean the source refuses us (a key, a host, a region): retrying cannot help.
    rejected_statuses: tuple[int, ...] = (400, 401, 403)
    # Statuses that ask us to back off: their Retry-After pauses the breaker.
    throttled_statuses: tuple[int, ...] = (429,)

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float = 3.05,
        read_timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        retry_after_max: int = 5,
        calls_per_minute: int = 30,
        breaker: CircuitBreaker | None = None,
        on_response: Callable[[str, int | str], None] | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.breaker = breaker or CircuitBreaker(threshold=3, cooldown=60)
        self.limiter = RateLimiter(calls_per_minute)
        self.on_response = on_response
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        retry = PauseOnLongRetryAfter(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            status_forcelist=self.retry_statuses,
            allowed_methods=frozenset({"GET"}),
            backoff_factor=backoff,
            backoff_jitter=backoff,
            backoff_max=30,
            respect_retry_after_header=True,
            # A longer Retry-After ends the fetch and pauses the breaker for it (PauseOnLongRetryAfter).
            retry_after_max=retry_after_max,
            raise_on_status=False,
        )
        self.session.mount("http://", HTTPAdapter(max_retries=retry, pool_maxsize=4))
        self.session.mount("https://", HTTPAdapter(max_retries=retry, pool_maxsize=4))

    def rejected_hint(self, status: int) -> str:
        """What to check when the source refuses us with `status`."""
        return "check its URL"

    def get_json(self, path: str, params: dict | None = None):
        """GET one endpoint and parse its JSON with exact Decimals.

        :raises PriceSourceError: (a subclass) for every way the call can fail.
        """
        self.breaker.before_call()
        self.limiter.acquire()
        try:
            response = self.session.get(self.base_url + path, params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            self._report(path, "error")
            self.breaker.failure()
            raise PriceSourceUnavailable(f"{self.name} unreachable: {type(exc).__name__}") from exc
        self._report(path, response.status_code)
        if response.status_code in self.throttled_statuses:
            retry_after = response.headers.get("Retry-After", "")
            self.breaker.failure(pause=float(retry_after) if retry_after.isdigit() else None)
            raise PriceSourceUnavailable(f"{self.name} rate limit exceeded ({response.status_code})")
        if response.status_code in self.rejected_statuses:
            self.breaker.failure()
            raise PriceSourceRejected(
                f"{self.name} rejected the request ({response.status_code}): {self.rejected_hint(response.status_code)}"
            )
        if response.status_code >= 400:
            self.breaker.failure()
            raise PriceSourceUnavailable(f"{self.name} answered {response.status_code}")
        try:
            body = load_json(response.content)
        except ValueError as exc:
            self.breaker.failure()
            raise MalformedResponse(f"{self.name} sent a body that is not valid JSON") from exc
        self.breaker.success()
        return body

    def _report(self, path: str, status) -> None:
        if self.on_response:
            self.on_response(path, status)


class CoinGeckoClient(JsonSource):
    """The primary: catalog rows, prices and market figures."""

    name = "price source"

    def __init__(self, base_url: str, api_key: str | None = None, **kwargs):
        super().__init__(base_url, **kwargs)
        if api_key:
            # The key header must match the host: a key sent to the wrong host is rejected.
            pro = urlsplit(self.base_url).hostname == PRO_HOST
            self.session.headers["x-cg-pro-api-key" if pro else "x-cg-demo-api-key"] = api_key

    def rejected_hint(self, status: int) -> str:
        return ("check COINGECKO_API_URL and COINGECKO_API_KEY (a demo key needs the public host, "
                "a pro key pro-api.coingecko.com)")

    def fetch_markets(self, pages: int = 1, ids: list[str] | None = None) -> MarketFetch:
        """Read /coins/markets page by page (250 rows each) until `pages` or a short page.

        With `ids`, asks for exactly those coins instead, 250 ids per call.
        """
        fetch = MarketFetch(rows=[])
        base = {
            "vs_currency": "usd",
            "order": "market_cap_desc",
            "per_page": PER_PAGE,
            "price_change_percentage": PRICE_CHANGE_WINDOWS,
            "sparkline": "false",
            "precision": "full",
        }
        batches = (
            [{"ids": ",".join(ids[i : i + PER_PAGE]), "page": 1} for i in range(0, len(ids), PER_PAGE)]
            if ids
            else [{"page": page} for page in range(1, pages + 1)]
        )
        for extra in batches:
            body = self.get_json("/coins/markets", {**base, **extra})
            fetch.calls += 1
            if not isinstance(body, list):
                raise MalformedResponse("/coins/markets did not return a list")
            fetch.rows.extend(body)
            if not ids and len(body) < PER_PAGE:
                break
        return fetch

    def categories_list(self) -> dict[str, str]:
        """Every category id CoinGecko has, with its name (/coins/categories/list)."""
        body = self.get_json("/coins/categories/list")
        if not isinstance(body, list) or not all(isinstance(c, dict) and isinstance(c.get("category_id"), str)
                                                 for c in body):
            raise MalformedResponse("/coins/categories/list did not return a list of categories")
        return {c["category_id"]: str(c.get("name") or c["category_id"]) for c in body}

    def category_members(self, category_id: str, max_rank: int | None, max_pages: int) -> MarketFetch:
        """The coins of one category, largest market cap first (/coins/markets?category=), page by page.

        Stops after `max_pages`, at an empty page, at a page shorter than the
        first (the server's own page size: it has answered category queries
        with 50 rows a page when asked for 250), or once a page ends past
        `max_rank`: the pages are in market-cap order, so no later coin ranks
        within the catalog.
        """
        fetch = MarketFetch(rows=[])
        page_size = None
        for page in range(1, max_pages + 1):
            body = self.get_json("/coins/markets", {
                "vs_currency": "usd", "category": category_id, "order": "market_cap_desc",
                "per_page": PER_PAGE, "page": page, "sparkline": "false",
            })
            fetch.calls += 1
            if not isinstance(body, list):
                raise MalformedResponse("/coins/markets did not return a list")
            fetch.rows.extend(body)
            page_size = page_size or len(body)
            if not body or len(body) < page_size:
                break
            last_rank = body[-1].get("market_cap_rank") if isinstance(body[-1], dict) else None
            if max_rank is not None and not (isinstance(last_rank, int) and last_rank <= max_rank):
                break
        return fetch

    def exchange_tickers(self, exchange_id: str, coin_ids: list[str], max_pages: int = 10) -> MarketFetch:
        """An exchange's tickers of `coin_ids` (/exchanges/{id}/tickers), page by page (100 a page).

        Asked 50 coins a call, so a large catalog never builds a URL past what
        proxies accept; a batch stops at a short page or after `max_pages`.
        """
        fetch = MarketFetch(rows=[])
        for start in range(0, len(coin_ids), TICKER_COINS_PER_CALL):
            batch = ",".join(coin_ids[start:start + TICKER_COINS_PER_CALL])
            for page in range(1, max_pages + 1):
                body = self.get_json(f"/exchanges/{exchange_id}/tickers", {"coin_ids": batch, "page": page})
                fetch.calls += 1
                tickers = body.get("tickers") if isinstance(body, dict) else None
                if not isinstance(tickers, list):
                    raise MalformedResponse("/exchanges/{id}/tickers did not return a ticker list")
                fetch.rows.extend(tickers)
                if len(tickers) < TICKERS_PER_PAGE:
                    break
        return fetch

    def market_chart(self, coin_id: str, days: int) -> dict:
        """Price, market cap and volume points for the past `days` days."""
        body = self.get_json(f"/coins/{coin_id}/market_chart", {"vs_currency": "usd", "days": days})
        if not isinstance(body, dict) or not isinstance(body.get("prices"), list):
            raise MalformedResponse("market_chart did not return price points")
        return body

    def ping(self, timeout: float = 2.0) -> float:
        """GET /ping once and return the seconds it took: the source itself answers.

        One attempt with a short timeout, outside the breaker and the rate
        limiter: a health check must not wait on retries, and must not pause or
        delay the refresh.

        :raises PriceSourceError: no answer in time, or an answer that is not a 200 JSON object.
        """
        started = time.perf_counter()
        try:
            response = requests.get(self.base_url + "/ping", headers=self.session.headers, timeout=timeout)
        except requests.RequestException as exc:
            self._report("/ping", "error")
            raise PriceSourceUnavailable(f"price source unreachable: {type(exc).__name__}") from exc
        seconds = time.perf_counter() - started
        self._report("/ping", response.status_code)
        if response.status_code in (401, 403):
            raise PriceSourceRejected(f"price source rejected the ping ({response.status_code}): check COINGECKO_API_KEY")
        if response.status_code != 200:
            raise PriceSourceUnavailable(f"price source answered {response.status_code}")
        try:
            body = load_json(response.content)
        except ValueError as exc:
            raise MalformedResponse("price source ping was not JSON") from exc
        if not isinstance(body, dict):
            raise MalformedResponse("price source ping was not a JSON object")
        return seconds
