"""The price source: the CoinGecko client and the one conversion of its rows into assets."""

from __future__ import annotations

from ..config import Config
from .client import CircuitBreaker, CoinGeckoClient


def client_from_config(config: Config, on_response=None) -> CoinGeckoClient:
    """Build the CoinGecko client from Config (one per process that refreshes)."""
    return CoinGeckoClient(
        config.COINGECKO_API_URL,
        config.COINGECKO_API_KEY,
        read_timeout=config.COINGECKO_TIMEOUT_SECONDS,
        retries=config.COINGECKO_RETRIES,
        calls_per_minute=config.COINGECKO_CALLS_PER_MINUTE,
        breaker=CircuitBreaker(config.COINGECKO_BREAKER_THRESHOLD, config.COINGECKO_BREAKER_COOLDOWN_SECONDS,
                               initial_pause=config.COINGECKO_BREAKER_INITIAL_PAUSE_SECONDS),
        on_response=on_response,
    )
