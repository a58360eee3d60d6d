"""Service-specific Prometheus metrics, beside the per-route HTTP metrics of the exporter."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


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

    def cache_lookup(self, cache: str, hit: bool) -> None:
        self.cache_lookups.labels(cache=cache, result="hit" if hit else "miss").inc()
