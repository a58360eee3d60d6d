"""The smorest Api, and the app's typed state: its config, metrics and this process's Services."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import current_app
from flask_smorest import Api

from .converters import AssetIdConverter, asset_id_parameter
from .errors import ErrorSchema

if TYPE_CHECKING:  # names only: the services are built by the app factory
    from ..config import Config
    from ..services.admin import CatalogAdmin
    from ..services.catalog import CatalogService
    from ..services.categories import CategoryService
    from ..services.health import HealthService, WatchedAssets
    from ..services.history import HistoryService
    from ..services.probe import SourceProbe
    from ..services.quotes import QuoteDesk
    from ..services.writes import CatalogWrites
    from ..stream.hub import Hub
    from ..telemetry.metrics import InventoryMetrics
    from .responses import ResponseCache


class InventoryApi(Api):
    # errors.register_error_handlers renders every error; this documents the shape.
    ERROR_SCHEMA = ErrorSchema


api = InventoryApi()
# Documents <asset_id:...> path parameters; create_app adds the converter to each app's url_map.
api.register_converter(AssetIdConverter, asset_id_parameter)


@dataclass
class Services:
    """What this worker process's views and commands use, built together on first use after fork."""

    catalog: CatalogService  # reads
    writes: CatalogWrites  # the operator's writes
    admin: CatalogAdmin  # migrate, seed, backfill (the CLI)
    history: HistoryService
    quotes: QuoteDesk
    categories: CategoryService
    responses: ResponseCache
    probe: SourceProbe
    health: HealthService
    hub: Hub | None  # the live stream's, in a process that serves streams


class AppState:
    """What `create_app` puts on the app (`app.extensions["inventory"]`): the config, the
    metrics, the health settings, and this process's Services.

    The Services are built per process, on first use: boto3 clients are not fork-safe, and
    caches with their locks and threads belong to one process, so each worker builds its own
    rather than inheriting the master's.
    """

    def __init__(self, config: Config, build: Callable[[AppState], Services]):
        self.config = config
        self.metrics: InventoryMetrics | None = None  # set once the exporter is installed
        self.watched: WatchedAssets | None = None  # HEALTH_TOP_ASSETS, parsed at start
        # The CLI's: a command may wait longer on the store, and may use this checkout's store.
        self.patient = False
        self.development_store: str | None = None
        self.from_run_file = False
        self._build = build
        self._lock = threading.RLock()
        self._pid: int | None = None
        self._services: Services | None = None

    def services(self) -> Services:
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    self._services = self._build(self)
                    self._pid = os.getpid()
        return self._services

    @property
    def built(self) -> bool:
        """Whether this process has built its Services (the CLI may not repoint the store after)."""
        return self._pid == os.getpid()


def state() -> AppState:
    """The app's AppState (the current app's)."""
    return current_app.extensions["inventory"]


def services() -> Services:
    """This process's Services (built on first use after fork)."""
    return state().services()
