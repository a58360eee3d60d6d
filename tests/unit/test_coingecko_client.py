"""The CoinGecko client over `responses`: retries, Retry-After, the breaker, key headers, 4xx, exact Decimals."""

from __future__ import annotations

from decimal import Decimal

import pytest
import requests
import responses
from responses import matchers
from responses.registries import OrderedRegistry
from urllib3 import HTTPResponse

from inventory.source.client import (
    PER_PAGE,
    CircuitBreaker,
    CircuitOpen,
    CoinGeckoClient,
    MalformedResponse,
    PriceSourceRejected,
    PriceSourceUnavailable,
)

BASE = "https://api.coingecko.com/api/v3"
PRO = "https://pro-api.coingecko.com/api/v3"
MARKETS = BASE + "/coins/markets"
ROW = '{"id": "bitcoin", "symbol": "btc", "name": "Bitcoin", "current_price": 0.00001234, "market_cap": 1234567890123456789012}'


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_client(base=BASE, **kwargs) -> CoinGeckoClient:
    options = dict(retries=2, backoff=0, calls_per_minute=0, breaker=CircuitBreaker(threshold=2, cooldown=60))
    options.update(kwargs)
    return CoinGeckoClient(base, **options)


def markets(status=200, body=f"[{ROW}]", **kwargs):
    responses.add(responses.GET, MARKETS, body=body, status=status, content_type="application/json", **kwargs)


@responses.activate
def test_numbers_are_parsed_as_exact_decimals():
    markets()
    rows = make_client().fetch_markets().rows
    assert rows[0]["current_price"] == Decimal("0.00001234")
    assert isinstance(rows[0]["current_price"], Decimal)
    assert rows[0]["market_cap"] == 1234567890123456789012  # a big integer stays exact


@pytest.mark.parametrize("body", ["[NaN]", "<html>Just a moment...</html>", '[{"id": "bitc', '{"data": []}'])
@responses.activate
def test_bodies_that_are_not_the_documented_json_are_malformed(body):
    markets(body=body)
    with pytest.raises(MalformedResponse):
        make_client().fetch_markets()


@responses.activate(registry=OrderedRegistry)
def test_server_errors_are_retried_then_the_answer_is_used():
    markets(503)
    markets(502)
    markets()
    assert len(make_client(retries=2).fetch_markets().rows) == 1
    assert len(responses.calls) == 3


@responses.activate
def test_retries_are_bounded_and_count_as_one_failed_fetch():
    markets(500)  # every call
    client = make_client(retries=2)
    with pytest.raises(PriceSourceUnavailable, match="500"):
        client.fetch_markets()
    assert len(responses.calls) == 3  # the first try and two retries
    assert client.breaker.failures == 1


@pytest.mark.parametrize("status", [400, 401, 403])
@responses.activate
def test_a_rejected_request_is_not_retried_and_names_the_settings(status):
    markets(status, body='{"status": {"error_code": 10011}}')
    with pytest.raises(PriceSourceRejected, match="COINGECKO_API_KEY"):
        make_client(retries=3).fetch_markets()
    assert len(responses.calls) == 1


@responses.activate
def test_other_client_errors_are_not_retried_either():
    markets(404, body='{"error": "Not Found"}')
    with pytest.raises(PriceSourceUnavailable, match="404"):
        make_client(retries=3).fetch_markets()
    assert len(responses.calls) == 1


@responses.activate(registry=OrderedRegistry)
def test_rate_limit_with_retry_after_is_retried():
    markets(429, headers={"Retry-After": "1"})
    markets()
    assert make_client(retries=2).fetch_markets().rows
    assert len(responses.calls) == 2


def test_retry_after_is_waited_for_up_to_its_cap(monkeypatch):
    # `responses` replays retries without sleeping, so the transport's own wait is checked here.
    slept = []
    monkeypatch.setattr("urllib3.util.retry.time.sleep", slept.append)
    retry = make_client(retry_after_max=30).session.get_adapter(MARKETS).max_retries
    for seconds in ("2", "120"):
        retry.sleep(HTTPResponse(status=429, headers={"Retry-After": seconds}))
    assert slept == [2, 30]


@responses.activate
def test_a_long_retry_after_pauses_the_source_without_calling_it():
    clock = Clock()
    client = make_client(retries=0, breaker=CircuitBreaker(threshold=3, cooldown=10, clock=clock))
    markets(429, headers={"Retry-After": "120"})
    with pytest.raises(PriceSourceUnavailable, match="429"):
        client.fetch_markets()
    assert client.breaker.state == "open"  # at once, below the threshold
    clock.now = 119
    with pytest.raises(CircuitOpen, match="paused"):
        client.fetch_markets()
    assert len(responses.calls) == 1
    clock.now = 121
    assert client.breaker.state == "half_open"


@responses.activate
def test_breaker_opens_after_repeated_failures_then_lets_one_probe_through():
    clock = Clock()
    client = make_client(retries=0, breaker=CircuitBreaker(threshold=2, cooldown=30, clock=clock))
    failing = responses.add(responses.GET, MARKETS, status=500, json={})
    for _ in range(2):
        with pytest.raises(PriceSourceUnavailable):
            client.fetch_markets()
    assert client.breaker.state == "open"
    with pytest.raises(CircuitOpen):
        client.fetch_markets()
    assert len(responses.calls) == 2
    # WHEN the cool-down is over and the source is back: the probe closes the breaker
    clock.now = 31
    responses.remove(failing)
    markets()
    assert client.fetch_markets().rows
    assert client.breaker.state == "closed" and client.breaker.failures == 0


@responses.activate
def test_a_failed_probe_opens_the_breaker_again():
    clock = Clock()
    client = make_client(retries=0, breaker=CircuitBreaker(threshold=1, cooldown=30, clock=clock))
    markets(503)
    with pytest.raises(PriceSourceUnavailable):
        client.fetch_markets()
    clock.now = 31
    with pytest.raises(PriceSourceUnavailable):
        client.fetch_markets()
    assert client.breaker.state == "open"
    assert len(responses.calls) == 2


@pytest.mark.parametrize(
    ("base", "sent", "not_sent"),
    [(BASE, "x-cg-demo-api-key", "x-cg-pro-api-key"), (PRO, "x-cg-pro-api-key", "x-cg-demo-api-key")],
)
@responses.activate
def test_the_key_header_matches_the_host(base, sent, not_sent):
    responses.add(responses.GET, base + "/coins/markets", body="[]", match=[matchers.header_matcher({sent: "k-1"})])
    make_client(base, api_key="k-1").fetch_markets()
    assert not_sent not in responses.calls[0].request.headers


@responses.activate
def test_no_key_sends_no_key_header():
    markets(body="[]")
    make_client().fetch_markets()
    headers = responses.calls[0].request.headers
    assert not {"x-cg-demo-api-key", "x-cg-pro-api-key"} & {h.lower() for h in headers}


@responses.activate
def test_an_unreachable_source_is_reported_as_unavailable():
    seen = []
    markets(body=requests.ConnectionError("refused"))
    client = make_client(retries=0, on_response=lambda path, status: seen.append((path, status)))
    with pytest.raises(PriceSourceUnavailable, match="unreachable"):
        client.fetch_markets()
    assert seen == [("/coins/markets", "error")]


@responses.activate
def test_pages_are_read_until_a_short_page():
    full = "[" + ",".join([ROW] * PER_PAGE) + "]"
    responses.add(responses.GET, MARKETS, body=full, match=[matchers.query_param_matcher({"page": "1"}, strict_match=False)])
    responses.add(responses.GET, MARKETS, body=f"[{ROW}]", match=[matchers.query_param_matcher({"page": "2"}, strict_match=False)])
    fetch = make_client().fetch_markets(pages=5)
    assert fetch.calls == 2 and len(fetch.rows) == PER_PAGE + 1


@responses.activate
def test_ids_are_asked_for_in_batches_of_a_page():
    markets(body="[]")
    ids = [f"coin-{n}" for n in range(PER_PAGE + 1)]
    fetch = make_client().fetch_markets(ids=ids)
    assert fetch.calls == 2
    asked = [call.request.params["ids"].split(",") for call in responses.calls]
    assert asked == [ids[:PER_PAGE], ids[PER_PAGE:]]


@responses.activate
def test_a_short_retry_after_pauses_only_that_long():
    # A 429 with Retry-After: 2 must not stop prices for the whole cooldown.
    clock = Clock()
    client = make_client(retries=0, breaker=CircuitBreaker(threshold=3, cooldown=120, clock=clock))
    markets(429, headers={"Retry-After": "2"})
    with pytest.raises(PriceSourceUnavailable, match="429"):
        client.fetch_markets()
    clock.now = 1.9
    assert client.breaker.state == "open"
    clock.now = 2.1
    assert client.breaker.state == "half_open"
    markets()
    assert client.fetch_markets().rows and client.breaker.state == "closed"


def test_the_pause_grows_while_failures_continue_up_to_the_cooldown():
    clock = Clock()
    breaker = CircuitBreaker(threshold=2, cooldown=60, clock=clock, initial_pause=5)
    pauses = []
    for _ in range(7):
        breaker.failure()
        if breaker.open_until is not None:
            pauses.append(breaker.open_until - clock.now)
    assert pauses == [5, 10, 20, 40, 60, 60]
    breaker.success()
    breaker.failure()
    assert breaker.state == "closed"  # a new run of failures starts below the threshold again

