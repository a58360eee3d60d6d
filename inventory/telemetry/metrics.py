"""Service-specific Prometheus metrics, beside the per-route HTTP metrics of the exporter."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class HttpMetrics:
    """The per-request HTTP metrics, under the names and labels prometheus_flask_exporter gives its defaults.

    Observed from our one after-request hook with the label children bound once
    per (method, route, status): the exporter's own hooks looked the request up
    and built label dicts on every request (BENCHMARKS.md). Alerts and the
    dashboard query these names (docs/alerts.yml, docs/grafana-dashboard.json).
    """

    def __init__(self, registry: CollectorRegistry):
        self.duration = Histogram(
            "flask_http_request_duration_seconds",
            "Flask HTTP request duration in seconds",
            ("method", "route_template", "status"),
            registry=registry,
        )
        self.total = Counter(
            "flask_http_request_total", "Total number of HTTP requests", ("method", "status"), registry=registry
        )
        self.exceptions = Counter(
            "flask_http_request_exceptions_total",
            "Total number of HTTP requests which resulted in an exception",
            ("method", "status"),
            registry=registry,
        )
        self._children: dict[tuple[str, str, int], tuple] = {}

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        children = self._children.get((method, route, status))
        if children is None:
            children = self._children[method, route, status] = (
                self.duration.labels(method, route, str(status)),
                self.total.labels(method, str(status)),
            )
        children[0].observe(seconds)
        children[1].inc()

    def exception(self, method: str) -> None:
        self.exceptions.labels(method, "500").inc()


def _source_calls(registry: CollectorRegistry | None) -> Counter:
    # Both the refresher and the web workers' health ping call CoinGecko; one family, summed.
    return Counter(
        "inventory_coingecko_requests_total",
        "Responses from CoinGecko by endpoint and status code (error = no response)",
        ("endpoint", "status"),
        registry=registry,
    )


_IMPORTED = frozenset({"created", "updated", "unchanged"})


class InventoryMetrics:
    """Metric objects for one app.

    Under gunicorn (multiprocess mode) values go to the shared directory and
    `registry` is None; in a single process they register on the app's registry.
    """

    def __init__(self, registry: CollectorRegistry | None):
        self.cache_lookups = Counter(
            "inventory_cache_lookups_total",
            "Cache lookups by cache name and result",
            ("cache", "result"),
            registry=registry,
        )
        # Label children by (cache, hit), bound once: labels() per lookup costs
        # a lock and a tuple on every cached read.
        self._cache_children: dict[tuple[str, bool], object] = {}

        self.dynamodb_calls = Counter(
            "inventory_dynamodb_requests_total",
            "DynamoDB API calls by operation and outcome (ok, conditional_failed, error, unreachable)",
            ("operation", "outcome"),
            registry=registry,
        )
        self.dynamodb_latency = Histogram(
            "inventory_dynamodb_request_duration_seconds",
            "DynamoDB API call latency, retries included",
            ("operation",),
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=registry,
        )
        self.dynamodb_retries = Counter(
            "inventory_dynamodb_retries_total", "Retries botocore made", ("operation",), registry=registry
        )
        self.dynamodb_throttles = Counter(
            "inventory_dynamodb_throttles_total", "Throttled DynamoDB attempts", ("operation",), registry=registry
        )

        self.rate_limit_storage_errors = Counter(
            "inventory_rate_limit_storage_errors_total",
            "Rate limit checks the limit storage failed (reads then pass, writes count per process)",
            ("budget",),
            registry=registry,
        )

        # The read model (readmodel.py): whole-catalog loads, by reason (cold start, resync),
        # and feed entries applied. Loads beyond one per worker mean resyncs.
        self.catalog_loads = Counter(
            "inventory_catalog_loads_total", "Whole-catalog loads of a read model, by reason (cold, resync)",
            ("reason",), registry=registry,
        )
        self.feed_entries_applied = Counter(
            "inventory_feed_entries_applied_total", "Feed entries a read model applied", registry=registry
        )

        # Asset operations. Labels are closed sets: statuses, results, operation
        # names (never asset ids or paths).
        self.status_changes = Counter(
            "inventory_asset_status_changes_total",
            "Operator status changes applied, by from and to status",
            ("from_status", "to_status"),
            registry=registry,
        )
        self.imports = Counter(
            "inventory_asset_imports_total",
            "Imported items by result (created, updated, unchanged, rejected)",
            ("result",),
            registry=registry,
        )
        self.write_conflicts = Counter(
            "inventory_write_conflicts_total",
            "Writes refused because the asset changed since the caller read it (a 412, or a conflict item), by operation",
            ("operation",),
            registry=registry,
        )
        self.batch_items = Histogram(
            "inventory_batch_items",
            "Items per batch request (batch_get, bulk_status, import)",
            ("operation",),
            buckets=(1, 2, 5, 10, 25, 50, 100),
            registry=registry,
        )
        self.source_calls = _source_calls(registry)

        # The live check of the price source (/health/detailed, and each scrape).
        self.source_up = Gauge(
            "inventory_coingecko_up",
            "1 when the last health ping of CoinGecko answered, 0 when it failed",
            multiprocess_mode="mostrecent",
            registry=registry,
        )
        self.source_ping_seconds = Gauge(
            "inventory_coingecko_ping_duration_seconds",
            "How long the last answered health ping of CoinGecko took",
            multiprocess_mode="mostrecent",
            registry=registry,
        )

        # Quotes and valuations: the reason label holds a handful of fixed codes
        # (quotes.refusal and unknown_asset), never an asset id.
        self.quotes_issued = Counter("inventory_quotes_issued_total", "Quotes issued", registry=registry)
        self.quotes_refused = Counter(
            "inventory_quotes_refused_total",
            "Quotes refused, by reason (unknown_asset, suspended, inactive, no_price, stale_price)",
            ("reason",),
            registry=registry,
        )
        self.valuation_holdings = Histogram(
            "inventory_valuation_holdings",
            "Holdings per valuation request",
            buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000),
            registry=registry,
        )

    def catalog_load(self, reason: str) -> None:
        self.catalog_loads.labels(reason).inc()

    def feed_applied(self, entries: int) -> None:
        self.feed_entries_applied.inc(entries)

    def status_change(self, from_status: str, to_status: str) -> None:
        self.status_changes.labels(from_status, to_status).inc()

    def write_conflict(self, operation: str, count: int = 1) -> None:
        if count:
            self.write_conflicts.labels(operation).inc(count)

    def batch(self, operation: str, items: int) -> None:
        self.batch_items.labels(operation).observe(items)

    def import_results(self, results: list[dict]) -> None:
        """Count one import request's per-item results; refused and failed items are `rejected`."""
        for result in results:
            outcome = result["result"]
            self.imports.labels(outcome if outcome in _IMPORTED else "rejected").inc()
        self.write_conflict("import", sum(1 for r in results if r["result"] == "conflict"))
        self.batch("import", len(results))

    def bulk_results(self, results: list[dict]) -> None:
        self.write_conflict("bulk_status", sum(1 for r in results if r["result"] == "conflict"))
        self.batch("bulk_status", len(results))

    def source_response(self, path: str, status) -> None:
        # Only fixed paths (the health ping) reach this from the web workers.
        self.source_calls.labels(endpoint=path, status=str(status)).inc()

    def source_probe(self, up: bool, seconds: float | None) -> None:
        self.source_up.set(1 if up else 0)
        if seconds is not None:
            self.source_ping_seconds.set(seconds)

    def quote_issued(self) -> None:
        self.quotes_issued.inc()

    def quote_refused(self, reason: str) -> None:
        self.quotes_refused.labels(reason=reason).inc()

    def valuation(self, holdings: int) -> None:
        self.valuation_holdings.observe(holdings)

    def rate_limit_storage_error(self, budget: str) -> None:
        self.rate_limit_storage_errors.labels(budget=budget).inc()

    def dynamodb_call(self, operation: str, outcome: str, seconds: float, retries: int, throttles: int) -> None:
        self.dynamodb_calls.labels(operation=operation, outcome=outcome).inc()
        self.dynamodb_latency.labels(operation=operation).observe(seconds)
        if retries:
            self.dynamodb_retries.labels(operation=operation).inc(retries)
        if throttles:
            self.dynamodb_throttles.labels(operation=operation).inc(throttles)

    def cache_lookup(self, cache: str, hit: bool) -> None:
        child = self._cache_children.get((cache, hit))
        if child is None:
            child = self._cache_children[cache, hit] = self.cache_lookups.labels(
                cache=cache, result="hit" if hit else "miss"
            )
        child.inc()


class RefreshMetrics:
    """Metrics of the price refresher, which runs in its own process beside the gunicorn master (or the CLI)."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.duration = Histogram(
            "inventory_price_refresh_duration_seconds",
            "Wall time of one price refresh",
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=registry,
        )
        self.runs = Counter(
            "inventory_price_refresh_total", "Price refreshes by outcome", ("outcome",), registry=registry
        )
        self.assets = Counter(
            "inventory_price_refresh_assets_total",
            "Assets handled by price refreshes, by result (updated, unchanged, created, skipped:<reason>)",
            ("result",),
            registry=registry,
        )
        self.last_success = Gauge(
            "inventory_price_refresh_last_success_timestamp_seconds",
            "When the last successful price refresh started",
            multiprocess_mode="max",
            registry=registry,
        )
        self.source_calls = _source_calls(registry)
        self.breaker_open = Gauge(
            "inventory_coingecko_breaker_open",
            "1 while the CoinGecko circuit breaker is open or half-open",
            multiprocess_mode="mostrecent",
            registry=registry,
        )
        self.oldest_price = Gauge(
            "inventory_oldest_tradable_price_timestamp_seconds",
            "Price time of the stalest ACTIVE priced asset, as of the last refresh",
            multiprocess_mode="mostrecent",
            registry=registry,
        )

        self.lease_held = Gauge(
            "inventory_refresh_lease_held",
            "1 while this instance holds the price refresh lease",
            multiprocess_mode="mostrecent",
            registry=registry,
        )
        # Cross-checked prices (issue 22): the second source's health and what the checks found.
        self.exchange_calls = Counter(
            "inventory_secondary_source_requests_total",
            "Responses from the second price source by endpoint and status code (error = no response)",
            ("source", "endpoint", "status"),
            registry=registry,
        )
        self.secondary_up = Gauge(
            "inventory_secondary_source_up",
            "1 when the last cross-check reached the second price source, else 0",
            ("source",), multiprocess_mode="mostrecent", registry=registry,
        )
        self.checks = Gauge(
            "inventory_price_checks",
            "Assets by the status of their price check at the last cross-check",
            ("status",), multiprocess_mode="mostrecent", registry=registry,
        )
        self.max_divergence = Gauge(
            "inventory_price_divergence_max_bps",
            "The largest divergence between the two sources among the top 100 assets, in basis points",
            multiprocess_mode="mostrecent", registry=registry,
        )
        self.diverged_checks = Gauge(
            "inventory_price_diverged_checks",
            "Consecutive cross-checks that found a top-20 asset diverged beyond its band (0: agrees)",
            ("asset_id",), multiprocess_mode="mostrecent", registry=registry,
        )
        self.stood_in = Counter(
            "inventory_price_stand_in_total",
            "Prices taken from the second source while CoinGecko failed",
            ("source",), registry=registry,
        )
        self._streak_labels: set[str] = set()

    def source_response(self, path: str, status) -> None:
        # Coin ids in paths would make unbounded labels; keep the endpoint template.
        endpoint = "/coins/{id}/market_chart" if path.endswith("/market_chart") else path
        self.source_calls.labels(endpoint=endpoint, status=str(status)).inc()

    def exchange_response(self, source: str, path: str, status) -> None:
        self.exchange_calls.labels(source=source, endpoint=path, status=str(status)).inc()

    def record_crosscheck(self, report) -> None:
        """One cross-check's findings (jobs/crosscheck.py CrossCheckReport)."""
        self.secondary_up.labels(source=report.source).set(1 if report.ok else 0)
        for status in ("ok", "diverged", "single_source", "secondary_stale"):
            self.checks.labels(status=status).set(report.counts.get(status, 0))
        self.max_divergence.set(float(report.max_divergence_bps or 0))
        # An asset that left the top 20 reads 0, so a stale streak never keeps an alert firing.
        for asset_id in self._streak_labels - set(report.top_streaks):
            self.diverged_checks.labels(asset_id=asset_id).set(0)
        for asset_id, streak in report.top_streaks.items():
            self.diverged_checks.labels(asset_id=asset_id).set(streak)
        self._streak_labels |= set(report.top_streaks)
        if report.stood_in:
            self.stood_in.labels(source=report.source).inc(report.stood_in)

    def record(self, report, breaker_state: str, started_at, oldest_price_at) -> None:
        self.duration.observe(report.duration_seconds)
        self.runs.labels(outcome="success" if report.ok else "failure").inc()
        if report.ok:
            self.last_success.set(started_at.timestamp())
        for result in ("updated", "unchanged", "created"):
            self.assets.labels(result=result).inc(getattr(report, result))
        for reason, count in report.skipped.items():
            self.assets.labels(result=f"skipped:{reason}").inc(count)
        self.breaker_open.set(0 if breaker_state == "closed" else 1)
        if oldest_price_at is not None:
            self.oldest_price.set(oldest_price_at.timestamp())


# -- live stream (issue 13) -----------------------------------------------------
class StreamMetrics:
    """The stream role's metrics: open connections, messages sent, slow clients dropped, commit-to-send delay."""

    def __init__(self, registry: CollectorRegistry | None):
        self.connections = Gauge(
            "inventory_stream_connections", "Open stream connections by kind (sse, websocket)", ("kind",),
            multiprocess_mode="livesum", registry=registry,
        )
        self.messages = Counter(
            "inventory_stream_messages_sent_total", "Stream messages written to clients", ("kind",), registry=registry
        )
        self.dropped = Counter(
            "inventory_stream_dropped_clients_total", "Stream clients dropped, by reason (slow)", ("reason",),
            registry=registry,
        )
        self.delay = Histogram(
            "inventory_stream_delay_seconds",
            "From a feed entry's commit to its messages being queued for this process's clients",
            buckets=(0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10),
            registry=registry,
        )

    def opened(self, kind: str) -> None:
        self.connections.labels(kind=kind).inc()

    def closed(self, kind: str) -> None:
        self.connections.labels(kind=kind).dec()

    def sent(self, kind: str) -> None:
        self.messages.labels(kind=kind).inc()

    def dropped_client(self, reason: str) -> None:
        self.dropped.labels(reason=reason).inc()

    def delivered(self, seconds: float) -> None:
        self.delay.observe(seconds)
