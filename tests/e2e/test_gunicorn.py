"""The real gunicorn (3 sync workers) over real HTTP: detail, errors, paging and aggregated metrics."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import simplejson
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from inventory.jobs.seed import bundled_rows

pytestmark = pytest.mark.e2e

DETAIL_ROUTE = "/inventory/assets/<asset_id:asset_id>"
DURATION_COUNT = "flask_http_request_duration_seconds_count"
LEAKS = ("Traceback", "botocore", "ClientError", "Exception")


def body(response):
    return simplejson.loads(response.content, use_decimal=True)


@pytest.mark.parametrize("raw", ["BTC", "btc"])
def test_get_asset_by_ticker_any_case_returns_200(gunicorn_server, raw):
    response = gunicorn_server.get(f"/inventory/assets/{raw}")
    assert response.status_code == 200
    data = body(response)["data"]
    assert data["asset_id"] == "BTC"
    assert data["coingecko_id"] == "bitcoin"


@pytest.mark.parametrize(
    "path, status",
    [
        ("/inventory/assets/BTC!", 422),
        ("/inventory/assets/ZZZZ", 404),
        ("/inventory/assets?limit=0", 422),
        ("/inventory/assets?cursor=garbage", 400),
        ("/no/such/route", 404),
    ],
)
def test_errors_use_the_one_shape_and_leak_no_internals(gunicorn_server, path, status):
    response = gunicorn_server.get(path)
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("application/json")
    payload = body(response)
    assert {"code", "status", "error", "message", "request_id"} <= payload.keys()
    assert payload["code"] == status
    assert payload["request_id"] == response.headers["X-Request-ID"]
    for leak in LEAKS:
        assert leak not in response.text


def test_supplied_request_id_is_echoed_in_error_body(gunicorn_server):
    response = gunicorn_server.get("/inventory/assets/ZZZZ", headers={"X-Request-ID": "e2e-trace-1"})
    assert response.status_code == 404
    assert body(response)["request_id"] == "e2e-trace-1"


def walk(server, limit: int = 5) -> tuple[list[dict], set[int]]:
    """Every asset of the unfiltered listing, following next_cursor; and the total_counts seen."""
    seen, totals, params = [], set(), {"limit": limit, "active_only": "false"}
    while True:
        response = server.get("/inventory/assets", params=params)
        assert response.status_code == 200, response.text
        page = body(response)
        assert len(page["data"]) <= limit
        seen += page["data"]
        totals.add(page["total_count"])
        if page["next_cursor"] is None:
            return seen, totals
        params = {**params, "cursor": page["next_cursor"]}


def test_paging_covers_the_seeded_catalog_in_rank_order_across_workers(gunicorn_server):
    # GIVEN the bundled catalog seeded by `flask seed`
    report = gunicorn_server.seed_report
    expected = len(bundled_rows()) - report["skipped"]
    assert report["created"] == expected

    # WHEN the listing is walked twice, each page on a new connection (any worker)
    first, totals = walk(gunicorn_server)
    second, _ = walk(gunicorn_server)

    # THEN every asset appears once, in rank order, and both walks agree
    ids = [a["asset_id"] for a in first]
    assert len(ids) == len(set(ids)) == expected
    assert totals == {expected}
    order = [(a["market_cap_rank"] is None, a["market_cap_rank"] or 0, a["asset_id"]) for a in first]
    assert order == sorted(order)
    assert [a["asset_id"] for a in second] == ids


def scrape(server) -> dict:
    """/metrics as {(sample name, frozenset(labels)): value}."""
    response = server.get("/metrics")
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def per_worker_counts(server, labels: dict) -> dict[str, float]:
    """The request count each worker process wrote to the shared metrics directory."""
    key = (DURATION_COUNT, frozenset(labels.items()))
    counts = {}
    for path in server.metrics_dir.glob("histogram_*.db"):
        for metric in MultiProcessCollector.merge([str(path)]):
            for sample in metric.samples:
                if (sample.name, frozenset(sample.labels.items())) == key:
                    counts[path.stem] = sample.value
    return counts


def test_metrics_sum_every_worker_and_label_by_route_template(gunicorn_server):
    labels = {"method": "GET", "route_template": DETAIL_ROUTE, "status": "200"}
    key = (DURATION_COUNT, frozenset(labels.items()))
    before = scrape(gunicorn_server)
    before_by_worker = per_worker_counts(gunicorn_server, labels)
    n = 60

    # Concurrent requests on new connections keep several workers busy at once.
    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(
            lambda i: gunicorn_server.get("/inventory/assets/" + ("BTC" if i % 2 else "eth")).status_code,
            range(n),
        ))
    assert statuses == [200] * n

    after = scrape(gunicorn_server)
    assert after[key] - before.get(key, 0) == n
    by_worker = per_worker_counts(gunicorn_server, labels)
    served = {w: c - before_by_worker.get(w, 0) for w, c in by_worker.items()}
    served = {w: c for w, c in served.items() if c}
    assert len(served) >= 2, f"one worker answered everything, so the sum proves nothing: {served}"
    assert sum(served.values()) == n


def test_metric_labels_are_route_templates_never_raw_paths(gunicorn_server):
    raw_paths = ["/inventory/assets/BTC", "/inventory/assets/btc", "/inventory/assets/ZZZZ",
                 "/inventory/assets/BTC!", "/no/such/route"]
    for path in raw_paths:
        gunicorn_server.get(path)

    samples = scrape(gunicorn_server)
    label_values = {value for _, labels in samples for _, value in labels}
    routes = {dict(labels).get("route_template") for name, labels in samples if name == DURATION_COUNT}
    assert DETAIL_ROUTE in routes
    assert not label_values & set(raw_paths)
    assert not any(value.startswith("/inventory/assets/") and value != DETAIL_ROUTE
                   and value != "/inventory/assets/search" for value in label_values)
