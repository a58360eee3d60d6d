"""The one place settings are read from the environment, each parsed before anything starts:
a bad one is one line naming it, never a traceback."""

from __future__ import annotations

from collections.abc import Mapping

from .config import Config
from .services.tokens import merged_tokens, parse_tokens


def load_config(environ: Mapping[str, str] | None = None) -> Config:
    """This process's Config, from the environment, with every value the service parses at start
    already parsed (tokens, watched assets). Every entry point calls it once: wsgi.py, gunicorn's
    master, the refresher process, the CLI's token commands.

    :raises ValueError: one line naming the variable (and the token entry) at fault.
    """
    config = Config.from_env(environ)
    tokens = merged_tokens(config.API_TOKENS, config.API_TOKENS_FILE) if config.API_TOKENS_FILE else config.API_TOKENS
    parse_tokens(tokens)
    # Imported here: the health rules are a service.
    from .services.health import WatchedAssets

    WatchedAssets.parse(config.HEALTH_TOP_ASSETS)
    if config.CROSSCHECK_ENABLED and config.CROSSCHECK_INTERVAL_SECONDS < 1:
        raise ValueError("CROSSCHECK_INTERVAL_SECONDS: must be 1 or more while CROSSCHECK_ENABLED is on")
    return config


def load_config_or_exit(environ: Mapping[str, str] | None = None) -> Config:
    """load_config, or stop the process with one line on stderr (exit status 1) when a setting is malformed.

    Called by wsgi.py (so every `flask --app wsgi` command and every worker) and
    by gunicorn's master before it forks a worker: without it a bad API_TOKENS
    was a traceback per worker and "Worker failed to boot".
    """
    try:
        return load_config(environ)
    except ValueError as exc:
        raise SystemExit(f"inventory: bad setting: {exc}") from None
