"""Unbound extension objects and the per-process accessors views use."""

from __future__ import annotations

import os

from flask import current_app
from flask_smorest import Api

from .converters import AssetIdConverter, asset_id_parameter
from .errors import ErrorSchema


class InventoryApi(Api):
    # errors.register_error_handlers renders every error; this documents the shape.
    ERROR_SCHEMA = ErrorSchema


api = InventoryApi()
# Documents <asset_id:...> path parameters; create_app adds the converter to each app's url_map.
api.register_converter(AssetIdConverter, asset_id_parameter)


def per_process(name: str):
    """This process's `name` object, built by `create_app`'s `build_<name>` on first use after fork.

    boto3 clients are not fork-safe, and caches with their locks and threads
    belong to one process, so each worker builds its own rather than
    inheriting the master's.
    """
    state = current_app.extensions["inventory"]
    pid = os.getpid()
    if state.get("pid") != pid:
        state["objects"] = {}
        state["pid"] = pid
    objects = state["objects"]
    if name not in objects:
        with state["build_lock"]:
            if name not in objects:
                objects[name] = state["build_" + name]()
    return objects[name]


def get_service():
    """The CatalogService of this worker process, built on first use after fork."""
    return per_process("service")


def get_history():
    """This worker's HistoryService (candles, daily reports, recommendations)."""
    return per_process("history")
def get_metrics():
    """The app's InventoryMetrics (operation counters the views observe)."""
    return current_app.extensions["inventory"]["metrics"]
