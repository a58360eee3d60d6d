"""create_app(): the one place the Inventory Service is wired."""

from __future__ import annotations

from flask import Flask
from flask.sessions import SessionInterface
from prometheus_client import CollectorRegistry
from prometheus_flask_exporter import PrometheusMetrics
from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics

from .api.bodies import InventoryRequest, JSONProvider
from .api.converters import AssetIdConverter
from .api.errors import register_error_handlers
from .api.extension import AppState, Services
from .api.extension import api as rest_api
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
    if config is None:
        from .settings import load_config  # the one reader of the environment

        config = load_config()
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
        # Writes take a bearer token (api/assets/preconditions.BEARER names this scheme per operation).
        API_SPEC_OPTIONS={"components": {"securitySchemes": {"bearerAuth": {
            "type": "http", "scheme": "bearer",
            "description": "A token from `flask --app wsgi create-token` (docs/api.md: Operators).",
        }}}},
    )
    app.json = JSONProvider(app)
    app.session_interface = NoSessions()
    configure_logging(config.LOG_LEVEL, request_id_or_none)

    state = AppState(config, lambda built: _build_services(built, dynamodb_client))
    app.extensions["inventory"] = state

    rest_api.init_app(app)
    from .api.assets import blueprint as assets
    from .api.assets import bulk, export, routes, writes  # noqa: F401  (importing them adds their views to assets.blp)
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
    state.metrics = metrics
    health.install_health(app, state)

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


def _build_services(state: AppState, client) -> Services:
    """This process's Services (AppState calls it once per process, on first use)."""
    # Imported here: boto3 loads only in processes that serve requests.
    from .readmodel.model import build_read_model, instance_seq
    from .services.admin import CatalogAdmin
    from .services.catalog import CatalogService
    from .services.categories import CategoryBoards, CategoryService
    from .services.health import HealthService
    from .services.history import HistoryService
    from .services.probe import build_probe
    from .services.quotes import QuoteDesk
    from .services.writes import CatalogWrites
    from .store import Stores, make_client
    from .store.dynamo import instrument
    from .stream.wiring import build_hub

    # Read now, not at create_app: the CLI may point an unconfigured store at DynamoDB Local first.
    config, metrics = state.config, state.metrics
    client = client or make_client(config, patient=state.patient)
    instrument(client, metrics.dynamodb_call)
    stores = Stores.build(client, config)
    model = build_read_model(stores, config, instance_seq(config), metrics)
    # Every entry this process commits is published to the instance's other workers.
    stores.feed.on_commit = model.committed
    catalog = CatalogService(stores, config, model)
    # The probe holds a lock and, once used, a connection: one per process too.
    probe = build_probe(config, on_result=metrics.source_probe, on_response=metrics.source_response)
    return Services(
        catalog=catalog,
        writes=CatalogWrites(catalog, on_status_change=metrics.status_change),
        admin=CatalogAdmin(catalog),
        history=HistoryService(catalog, stores),
        quotes=QuoteDesk(catalog, config, metrics),
        categories=CategoryService(catalog, CategoryBoards()),
        responses=ResponseCache(config, metrics.cache_lookup),
        probe=probe,
        health=HealthService(catalog, probe, state.watched),
        # The API role serves no streams (STREAM_MAX_CONNECTIONS=0, gunicorn.conf.py).
        hub=build_hub(config, model) if config.STREAM_MAX_CONNECTIONS else None,
    )
