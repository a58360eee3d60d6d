"""The price sources: CoinGecko (the primary), the exchange that cross-checks it, and the one conversion of
CoinGecko rows into assets."""

from __future__ import annotations

from ..config import Config
from .client import CircuitBreaker, CoinGeckoClient
from .exchange import BinanceClient


def client_from_config(config: Config, on_response=None) -> CoinGeckoClient:
    """Build the CoinGecko client from Config (one per process that refreshes)."""
    return CoinGeckoClient(
        config.COINGECKO_API_URL,
        config.COINGECKO_API_KEY,
        read_timeout=config.COINGECKO_TIMEOUT_SECONDS,
        retries=config.COINGECKO_RETRIES,
        calls_per_minute=config.COINGECKO_CALLS_PER_MINUTE,
        breaker=_breaker(config),
        on_response=on_response,
    )


def _breaker(config: Config) -> CircuitBreaker:
    # Each source has its own breaker, paced by the same settings.
    return CircuitBreaker(config.COINGECKO_BREAKER_THRESHOLD, config.COINGECKO_BREAKER_COOLDOWN_SECONDS,
                          initial_pause=config.COINGECKO_BREAKER_INITIAL_PAUSE_SECONDS)


def exchange_from_config(config: Config, on_response=None) -> BinanceClient:
    """The second source's client (Binance's API shape, at BINANCE_API_URL), with its own breaker and budget."""
    return BinanceClient(
        config.BINANCE_API_URL,
        read_timeout=config.BINANCE_TIMEOUT_SECONDS,
        retries=config.BINANCE_RETRIES,
        calls_per_minute=config.BINANCE_CALLS_PER_MINUTE,
        breaker=_breaker(config),
        on_response=on_response,
    )
