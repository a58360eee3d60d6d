"""Coherent caches across workers: real gunicorn (3 workers) polled from many connections across refreshes."""

from __future__ import annotations

import os
import threading
import time
import uuid

import pytest
import requests

from inventory.devtools.dynamodb_local import free_port
from tests.e2e.conftest import _flask, _stop, start_gunicorn
from tests.fakes.coingecko import FakeCoinGecko, generate_catalog

pytestmark = pytest.mark.e2e

POLLERS = 8
SECONDS = 8


@pytest.fixture(scope="module")
def server(dynamodb_local, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("coherent")
    with FakeCoinGecko(generate_catalog(40)) as cg:
        cg.tick()
        env = {
            **os.environ,
            "DYNAMODB_ENDPOINT_URL": dynamodb_local,
            "DYNAMODB_TABLE_NAME": f"e2e-coherent-{uuid.uuid4().hex[:10]}",
            "COINGECKO_API_URL": cg.url,
            "COINGECKO_CALLS_PER_MINUTE": "600",
            "PRICE_REFRESH_INTERVAL_SECONDS": "1",
            "PRICE_MAX_AGE_SECONDS": "600",
            # The default cache ttl: the read model and the shared seq, not a short ttl, keep workers in step.
            "CACHE_TTL_SECONDS": "5",
            "RATE_LIMIT_READS": "1000000/minute",
            "BIND": f"127.0.0.1:{free_port()}",
            "WEB_CONCURRENCY": "3",
            "PROMETHEUS_MULTIPROC_DIR": str(workdir),
        }
        _flask(["migrate"], env)
        process, url = start_gunicorn(env, workdir / "gunicorn.log")
        try:
            deadline = time.monotonic() + 30
            while requests.get(url + "/health/detailed", timeout=5).json()["status"] != "healthy":
                assert time.monotonic() < deadline, "no first refresh"
                time.sleep(0.5)
            yield url, cg
        finally:
            _stop(process)


def poll(url: str, path: str, field, stop: threading.Event, answers: list) -> None:
    while not stop.is_set():
        started = time.monotonic()
        # A new connection each time, so any worker may answer.
        response = requests.get(url + path, timeout=10)
        assert response.status_code == 200, response.text
        answers.append((started, time.monotonic(), field(response.json()), response.headers["ETag"]))


def first_regression(answers: list):
    """An answer older than one that had already been served when it was asked for, or None."""
    answers = sorted(answers, key=lambda a: a[1])  # by the time the answer arrived
    newest_served, newest_etag = None, None
    pending = sorted(answers, key=lambda a: a[0])  # by the time it was asked
    done = 0
    for asked, _, value, etag in pending:
        while done < len(answers) and answers[done][1] < asked:
            if newest_served is None or answers[done][2] > newest_served:
                newest_served, newest_etag = answers[done][2], answers[done][3]
            done += 1
        if newest_served is not None and value < newest_served:
            return {"served_first": (newest_served, newest_etag), "then": (value, etag)}
    return None


@pytest.mark.parametrize(
    "path, field",
    [
        ("/inventory/assets/BTC", lambda body: body["data"]["last_price_update"]),
        ("/inventory/assets?limit=1", lambda body: body["data"][0]["last_price_update"]),
    ],
    ids=["detail", "list"],
)
def test_no_answer_is_older_than_one_already_served(server, path, field):
    # GIVEN many connections polling while the source moves and the master refreshes every second
    url, cg = server
    stop, answers = threading.Event(), []
    threads = [threading.Thread(target=poll, args=(url, path, field, stop, answers)) for _ in range(POLLERS)]
    for thread in threads:
        thread.start()
    for _ in range(SECONDS * 2):
        cg.tick()
        time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join(15)
    # THEN prices moved several times, and never back in time once served
    assert len({a[2] for a in answers}) >= 3, "the refreshes did not change what was served"
    assert first_regression(answers) is None
