"""create_app(): the one place the Inventory Service is wired."""

from __future__ import annotations

from flask import Flask
from prometheus_client import CollectorRegistry
from prometheus_flask_exporter import PrometheusMetrics
from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics

from .api.bodies import InventoryRequest, JSONProvider
from .api.converters import AssetIdConverter
from .api.errors import register_error_handlers
from .api.hooks import install_hooks
from .config import Config
from .extensions import api as rest_api
from .logs import configure_logging
from .metrics import InventoryMetrics


def route_template(request) -> str:
    """Metric label for a request: the matched rule, never the raw path."""
    return request.url_rule.rule if request.url_rule else "<unmatched>"


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
    )
    app.json = JSONProvider(app)
    configure_logging(config.LOG_LEVEL)

    app.extensions["inventory"] = {
        "build_service": lambda: _build_service(config, dynamodb_client, metrics),
    }

    rest_api.init_app(app)
    from .api.assets import routes as assets
    from .api.assets import writes  # noqa: F401  (importing it adds the write views to assets.blp)
    from .api.health import routes as health

    rest_api.register_blueprint(assets.blp)
    rest_api.register_blueprint(health.blp)
    register_error_handlers(app)

    # The exporter's hooks first, then ours: see install_hooks for the order.
    metrics = _init_metrics(app, config)
    install_hooks(app, config, metrics.rate_limit_storage_error)

    from . import cli

    cli.register(app)
    return app


def _init_metrics(app: Flask, config: Config):
    options = dict(group_by=route_template, default_labels={}, excluded_paths=["^/static/"])
    if config.PROMETHEUS_MULTIPROC_DIR:
        # Under gunicorn: every worker writes to the shared directory and /metrics
        # sums them, so a scrape sees all workers whichever one answers.
        metrics = GunicornInternalPrometheusMetrics(app, **options)
    else:
        metrics = PrometheusMetrics(app, registry=CollectorRegistry(), **options)
    return InventoryMetrics(None if config.PROMETHEUS_MULTIPROC_DIR else metrics.registry)


def _build_service(config: Config, client, metrics):
    # Imported here: boto3 loads only in processes that serve requests.
    from .service import CatalogService
    from .store import Stores, make_client
    from .store.dynamo import instrument

    client = client or make_client(config)
    instrument(client, metrics.dynamodb_call)
    return CatalogService(Stores.build(client, config), config, on_cache_lookup=metrics.cache_lookup)
