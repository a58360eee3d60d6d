"""The Inventory Service. `create_app` (in inventory/app.py) is the one place things are wired.

It is imported lazily so that the inner layers (`inventory.domain`, `inventory.store`)
load without Flask, and the API schemas without boto3.
"""


def __getattr__(name):
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(name)


__all__ = ["create_app"]
