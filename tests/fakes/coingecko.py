"""The local CoinGecko fake now lives in the package (`make demo` runs it); tests import it from here too."""

from inventory.devtools.coingecko import FakeCoinGecko, generate_catalog  # noqa: F401
