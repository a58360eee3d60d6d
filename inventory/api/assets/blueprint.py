"""The assets blueprint, shared by its view modules (reads, writes, export), each registering on it."""

from ..bodies import Blueprint

blp = Blueprint(
    "assets", __name__, url_prefix="/inventory/assets", description="The asset catalog and live prices"
)
