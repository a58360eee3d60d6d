"""Settings checked before the service or a CLI command starts: a bad one is one line naming it, never a traceback."""

from __future__ import annotations

import os
from collections.abc import Mapping

from .config import Config
from .services.tokens import merged_tokens, parse_tokens


def checked_config(environ: Mapping[str, str] | None = None) -> Config:
    """Config from the environment with every value the service parses at start already parsed.

    :raises ValueError: one line naming the variable (and the token entry) at fault.
    """
    config = Config.from_env(environ)
    tokens = merged_tokens(config.API_TOKENS, config.API_TOKENS_FILE) if config.API_TOKENS_FILE else config.API_TOKENS
    parse_tokens(tokens)
    # Imported here: the health rules are a service.
    from .services.health import WatchedAssets

    WatchedAssets.parse(config.HEALTH_TOP_ASSETS)
    return config


def exit_if_misconfigured(environ: Mapping[str, str] | None = None) -> None:
    """Stop the process with one line on stderr (exit status 1) when a setting is malformed.

    Called by wsgi.py (so every `flask --app wsgi` command and every worker) and
    by gunicorn's master before it forks a worker: without it a bad API_TOKENS
    was a traceback per worker and "Worker failed to boot".
    """
    try:
        checked_config(os.environ if environ is None else environ)
    except ValueError as exc:
        raise SystemExit(f"inventory: bad setting: {exc}") from None
