"""create_app(): the one place the Inventory Service is wired."""

from __future__ import annotations

import threading

from flask import Flask
from flask.sessions import SessionInterface
from prometheus_client import CollectorRegistry
from prometheus_flask_exporter import PrometheusMetrics
from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics

from .api.bodies import InventoryRequest, JSONProvider
from .api.converters import AssetIdConverter
from .api.errors import register_error_handlers
from .api.extension import api as rest_api
from .api.extension import per_process
from .api.hooks import install_hooks
from .api.request_id import request_id_or_none
from .api.responses import ResponseCache
from .config import Config
from .stream.wiring import init_stream
from .telemetry.logs import configure_logging
from .telemetry.metrics import HttpMetrics, InventoryMetrics


class NoSessions(SessionInterface):
    """No cookie session: the API has none, and signing an empty one cost every request (BENCHMARKS.md)."""

    def open_session(self, app, request):
        return None  # Flask then uses a NullSession

    def save_session(self, app, session, response) -> None:
        return None


def create_app(config: Config | None = None, *, dynamodb_client=None) -> Flask:
    """Build the app; `config` defaults to the environment, the client to one from Config."""
    config = config or Config.from_env()
    app = Flask("inventory")
    app.request_class = InventoryRequest
    app.url_map.converters["asset_id"] = AssetIdConverter
    app.config.from_mapping(vars(config))
    app.config.update(
        API_TITLE="Inventory Service",
        API_VERSION="1.0.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL="/static/vendor/swagger-ui/",
        OPENAPI_REDOC_PATH="/redoc",
        OPENAPI_REDOC_URL="/static/vendor/redoc/redoc.standalone.js",
        # Writes take a bearer token (writes.BEARER names this scheme per operation).
        API_SPEC_OPTIONS={"components": {"securitySchemes": {"bearerAuth": {
            "type": "http", "scheme": "bearer",
            "description": "A token from `flask --app wsgi create-token` (docs/api.md: Operators).",
        }}}},
    )
    app.json = JSONProvider(app)
    app.session_interface = NoSessions()
    configure_logging(config.LOG_LEVEL, request_id_or_none)

    app.extensions["inventory"] = {
        # Read at build time, not captured: the CLI may point an unconfigured store at DynamoDB Local first.
        "config": config,
        "build_service": lambda: _build_service(
            app.extensions["inventory"]["config"], dynamodb_client, metrics, app.extensions["inventory"].get("patient")
        ),
        "build_responses": lambda: ResponseCache(config, metrics.cache_lookup),
        "build_history": lambda: _build_history(per_process("service")),
        "build_quotes": lambda: _build_quotes(app.extensions["inventory"]["config"], metrics),
        "build_lock": threading.RLock(),
    }

    rest_api.init_app(app)
    from .api.assets import blueprint as assets
    from .api.assets import export, routes, writes  # noqa: F401  (importing them adds their views to assets.blp)
    from .api.categories import routes as categories
    from .api.health import routes as health
    from .api.market import routes as market
    from .api.quotes import routes as quotes
    from .api.recommendations import routes as recommendations
    from .api.reports import routes as reports

    rest_api.register_blueprint(assets.blp)
    rest_api.register_blueprint(health.blp)
    rest_api.register_blueprint(reports.blp)
    rest_api.register_blueprint(recommendations.blp)
    rest_api.register_blueprint(quotes.blp)
    rest_api.register_blueprint(categories.blp)
    rest_api.register_blueprint(market.blp)
    init_stream(app, rest_api, config)
    register_error_handlers(app)

    metrics, http_metrics = _init_metrics(app, config)
    install_hooks(app, config, http_metrics, metrics.rate_limit_storage_error)
    app.extensions["inventory"]["metrics"] = metrics
    health.install_health(app, config, metrics)

    from . import cli

    cli.register(app)
    return app


def _init_metrics(app: Flask, config: Config) -> tuple[InventoryMetrics, HttpMetrics]:
    # The exporter serves /metrics (and sums the workers' files under gunicorn);
    # its per-request metrics are ours (HttpMetrics, observed in the one
    # after-request hook), so it registers no hooks of its own.
    options = dict(export_defaults=False)
    if config.PROMETHEUS_MULTIPROC_DIR:
        # Under gunicorn: every worker writes to the shared directory and /metrics
        # sums them, so a scrape sees all workers whichever one answers.
        exporter = GunicornInternalPrometheusMetrics(app, **options)
    else:
        exporter = PrometheusMetrics(app, registry=CollectorRegistry(), **options)
    # Dashboards fill their `job` variable from it (docs/deploy.md).
    exporter.info("flask_exporter_info", "Information about the Prometheus Flask exporter", version=exporter.version)
    # The HTTP metrics go on the exporter's registry in both modes, as its own defaults did.
    return InventoryMetrics(None if config.PROMETHEUS_MULTIPROC_DIR else exporter.registry), HttpMetrics(exporter.registry)


def _build_service(config: Config, client, metrics, patient: bool = False):
    # Imported here: boto3 loads only in processes that serve requests.
    from .services.catalog import CatalogService
    from .store import Stores, make_client
    from .store.dynamo import instrument
    client = client or make_client(config, patient=bool(patient))
    instrument(client, metrics.dynamodb_call)
    stores = Stores.build(client, config)
    model = _build_model(config, stores, metrics)
    # Every entry this process commits is published to the instance's other workers.
    stores.feed.on_commit = model.committed
    return CatalogService(stores, config, model, on_status_change=metrics.status_change)


def _build_model(config: Config, stores, metrics):
    from .readmodel.model import build_read_model, instance_seq

    return build_read_model(stores, config, instance_seq(config), metrics)


def _build_history(service):
    from .services.history import HistoryService  # imported here for the same reason as the service

    return HistoryService(service, service.stores)


def _build_quotes(config: Config, metrics):
    from .services.quotes import QuoteDesk

    return QuoteDesk(per_process("service"), config, metrics)
