from . import writes  # noqa: F401  (registers the write views on blp)
from .routes import blp

__all__ = ["blp"]
