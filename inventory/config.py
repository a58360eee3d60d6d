"""Service configuration: one frozen Config, read from the environment in one place."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {raw!r}")


@dataclass(frozen=True)
class Config:
    """Every setting the service reads; field names are the environment variable names."""

    # DynamoDB
    AWS_REGION: str = "us-west-2"
    DYNAMODB_TABLE_NAME: str = "order-processor-table"
    DYNAMODB_ENDPOINT_URL: str | None = None
    # Bounds on every request a web worker makes: a frozen store costs a request at most
    # connect + read timeout, once (no retry in botocore), and then a 503 with Retry-After.
    # The refresher's jobs wait longer (store/dynamo.py, make_client(patient=True)).
    DYNAMODB_CONNECT_TIMEOUT: float = 0.5
    DYNAMODB_READ_TIMEOUT: float = 1.0
    DYNAMODB_MAX_ATTEMPTS: int = 1
    # Transactions in flight at once during bulk writes (refresh, seed).
    DYNAMODB_WRITE_CONCURRENCY: int = 4

    # Price source
    COINGECKO_API_URL: str = "https://api.coingecko.com/api/v3"
    COINGECKO_API_KEY: str | None = None
    COINGECKO_TIMEOUT_SECONDS: float = 10.0
    COINGECKO_RETRIES: int = 3
    COINGECKO_CALLS_PER_MINUTE: int = 30
    COINGECKO_BREAKER_THRESHOLD: int = 3
    # The breaker's first pause, doubled while failures continue, up to the cooldown.
    COINGECKO_BREAKER_INITIAL_PAUSE_SECONDS: float = 5.0
    COINGECKO_BREAKER_COOLDOWN_SECONDS: float = 120.0
    PRICE_MAX_AGE_SECONDS: int = 300
    PRICE_REFRESH_INTERVAL_SECONDS: int = 60
    PRICE_REFRESH_PAGES: int = 1
    PRICE_HISTORY_DAYS: int = 30
    # Whether gunicorn's master runs the refresher (off: prices come from elsewhere).
    PRICE_REFRESH_ENABLED: bool = True
    # Instances share one refresher through a lease item; a dead holder is
    # replaced once its lease expires.
    REFRESH_LEASE_SECONDS: int = 30
    INSTANCE_ID: str = ""  # empty: hostname-pid-random

    # Cross-checked prices (issue 22; docs/configuration.md "Cross-checked prices"): every
    # CROSSCHECK_INTERVAL_SECONDS the lease holder compares each mapped asset's price with
    # the exchange's (one call for every pair, weight 4 of Binance's 6,000/minute); a second
    # price older than CROSSCHECK_MAX_AGE_SECONDS is not compared (secondary_stale). Pairs are
    # mapped from CoinGecko's tickers of CROSSCHECK_EXCHANGE every CROSSCHECK_PAIRS_HOURS.
    CROSSCHECK_ENABLED: bool = True
    CROSSCHECK_INTERVAL_SECONDS: int = 60
    CROSSCHECK_MAX_AGE_SECONDS: int = 180
    CROSSCHECK_EXCHANGE: str = "binance"
    CROSSCHECK_PAIRS_HOURS: float = 24.0
    BINANCE_API_URL: str = "https://api.binance.com"
    BINANCE_TIMEOUT_SECONDS: float = 5.0
    BINANCE_RETRIES: int = 2
    # The client's own ceiling: 6 calls (weight 24) a minute is 0.4% of Binance's published 6,000.
    BINANCE_CALLS_PER_MINUTE: int = 6

    # Categories (issue 12): CoinGecko category membership, refreshed by the
    # price lease's holder every CATEGORY_REFRESH_HOURS (0: never); at most
    # CATEGORY_MAX_PAGES pages of 250 per CoinGecko category a run.
    CATEGORY_REFRESH_HOURS: float = 12.0
    CATEGORY_MAX_PAGES: int = 4

    # HTTP behaviour
    # Signs list/search cursors so a tampered cursor is rejected; set it in production
    # so cursors stay valid across instances and restarts.
    SECRET_KEY: str = "dev-only-cursor-signing-key"
    MAX_CONTENT_LENGTH: int = 1024 * 1024

    # Caches (per worker process); see docs/design.md "Read model and caching" for the contract.
    CACHE_TTL_SECONDS: float = 5.0
    CACHE_STALE_GRACE_SECONDS: float = 30.0
    CACHE_MAX_ASSETS: int = 20_000
    CACHE_MAX_PAGES: int = 500
    # Response cache sizing (issue 11, worker RSS): each endpoint's cache is also
    # bounded by the bytes of its rendered bodies (the detail cache as a whole,
    # each page cache on its own), so a full walk of a 10,000-asset catalog
    # cannot pin tens of MB of bodies per worker.
    CACHE_MAX_ASSET_BYTES: int = 16 * 1024 * 1024
    CACHE_MAX_PAGE_BYTES: int = 4 * 1024 * 1024

    # Access control: JSON list of {"name", "scopes": [...], "hash"} from
    # `flask create-token`; tokens themselves are never configured.
    API_TOKENS: str = "[]"
    # A file holding more such entries, read at start (`create-token --write` appends
    # to it); `make run` uses .local/tokens.json.
    API_TOKENS_FILE: str | None = None
    REQUIRE_AUTH_FOR_READS: bool = False

    # Hardening
    RATE_LIMIT_READS: str = "1200/minute"
    RATE_LIMIT_WRITES: str = "120/minute"
    RATE_LIMIT_STORAGE_URI: str = "memory://"
    # Proxies in front of the service that append to X-Forwarded-For (the gateway,
    # a load balancer): the client address is the entry this many from the right.
    # 0: the header is never believed, and anonymous reads are not rate limited.
    TRUSTED_PROXY_HOPS: int = 0
    # Worker processes of this instance; with RATE_LIMIT_STORAGE_URI=memory:// each
    # enforces its share of a limit. gunicorn.conf.py exports the number it starts.
    WEB_CONCURRENCY: int = 1
    CORS_ORIGINS: str = ""  # comma-separated exact origins; empty = no CORS

    # History and recommendations (daily candles, day reports, similar assets):
    # how often the refresher looks for finished days to roll up, how many past
    # days it looks at (their points must still exist: at most PRICE_HISTORY_DAYS),
    # the daily closes recommendations correlate, and the peers kept per asset.
    CANDLE_ROLLUP_INTERVAL_SECONDS: int = 3600
    CANDLE_CATCHUP_DAYS: int = 3
    RECOMMEND_WINDOW_DAYS: int = 30
    RECOMMEND_TOP_K: int = 10
    # Profiles for at most this many assets (best ranked): the run scores every pair.
    RECOMMEND_MAX_ASSETS: int = 1000
    # Health (operations): the assets /health/detailed watches, and its live check
    # of the price source. A count (the N best-ranked assets) or comma-separated ids.
    HEALTH_TOP_ASSETS: str = "10"
    # One ping per worker per this many seconds at most, however often health is asked.
    HEALTH_SOURCE_PING_CACHE_SECONDS: float = 10.0
    HEALTH_SOURCE_PING_TIMEOUT_SECONDS: float = 2.0
    # Quotes, valuations and operator-priced assets (docs/api.md "Quotes and valuations",
    # "Operator-created assets").
    # Comma-separated HMAC-SHA256 keys: the first signs quotes, every one verifies
    # (rotation). Unset: a fixed dev key against a local DynamoDB, no quotes on AWS.
    QUOTE_SIGNING_KEY: str | None = None
    QUOTE_TTL_SECONDS: int = 30
    # The staleness bound of an imported asset without a CoinGecko id, unless it sets its own.
    OPERATOR_PRICE_MAX_AGE_SECONDS: int = 86400
    # Market data: filters, cursors, overview and movers (domain/search.py, domain/market.py).
    # How long a cursor walk's ordering is kept, so its pages follow it while prices move.
    CURSOR_SNAPSHOT_SECONDS: int = 120
    # Movers leave out assets below these (USD), so dust does not dominate; overridable per request.
    MOVERS_MIN_MARKET_CAP: int = 10_000_000
    MOVERS_MIN_VOLUME_24H: int = 1_000_000
    # Live stream (issue 13): the feed, its pollers and the stream role's pool.
    # How long feed entries are kept: what a resume can replay (older: a fresh snapshot).
    STREAM_FEED_RETENTION_SECONDS: int = 3600
    # How often each process's read model asks the table for new feed entries (one Query
    # each time): a change reaches every worker within this. 0: no poller, every read
    # catches up itself (tests, the CLI).
    STREAM_POLL_SECONDS: float = 0.5
    # A seq handed out but neither written nor voided this long is skipped (its writer died).
    STREAM_GAP_GRACE_SECONDS: float = 30.0
    # A visible heartbeat (SSE `event: heartbeat`, WebSocket {"type": "heartbeat"}) carrying
    # the client's position: it knows how current it is, and a stall after two missed beats.
    STREAM_HEARTBEAT_SECONDS: float = 5.0
    # Open streams per process; beyond it SSE answers 503 + Retry-After, WebSocket closes 1013.
    STREAM_MAX_CONNECTIONS: int = 500
    # Open streams per token name, or per client address when TRUSTED_PROXY_HOPS > 0 says
    # which address is the client's. Anonymous streams behind a gateway all come from its
    # one address, so without trusted hops they share only the process's capacity.
    STREAM_MAX_PER_CLIENT: int = 50
    # Where the stream role answers, for the API role's 307 on a stream or board request
    # (unset: 421 naming STREAM_BIND). Without a host (http://:8012) the request's host is kept.
    STREAM_PUBLIC_URL: str | None = None
    # Messages queued for one client; a client that falls this far behind is dropped.
    STREAM_CLIENT_QUEUE: int = 1000

    LOG_LEVEL: str = "INFO"
    # Set by gunicorn.conf.py: where worker processes share their metric values.
    PROMETHEUS_MULTIPROC_DIR: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Config":
        """Build a Config from environment variables, converting each to its field's type.

        :raises ValueError: when a variable cannot be converted.
        """
        environ = os.environ if environ is None else environ
        values = {}
        for field in fields(cls):
            raw = environ.get(field.name)
            if raw is None:
                continue
            values[field.name] = _convert(field.name, field.type, raw)
        return cls(**values)

    def replace(self, **changes) -> "Config":
        return dataclasses.replace(self, **changes)


DEFAULT_DYNAMODB_LOCAL_PORT = 8000


def dynamodb_local_endpoint(environ: Mapping[str, str]) -> str:
    """Where `make run` starts DynamoDB Local: DYNAMODB_LOCAL_PORT (8000) on loopback."""
    return f"http://localhost:{environ.get('DYNAMODB_LOCAL_PORT') or DEFAULT_DYNAMODB_LOCAL_PORT}"


def development_store(environ: Mapping[str, str], credentials_found: bool, running: str | None = None) -> str | None:
    """The DynamoDB Local endpoint to use when nothing points at a store, else None (use what is configured).

    Only when no endpoint is set, USE_REAL_AWS is off and boto3 finds no
    credentials: AWS would refuse every call then, so a working deployment
    never changes, while a new checkout reaches the store `make run` started:
    `running` (the endpoint this checkout's running `make run` recorded), else
    the one on DYNAMODB_LOCAL_PORT.
    """
    if environ.get("DYNAMODB_ENDPOINT_URL") or credentials_found:
        return None
    if (environ.get("USE_REAL_AWS") or "").strip().lower() in {"1", "true", "yes", "on"}:
        return None
    if running and not environ.get("DYNAMODB_LOCAL_PORT"):
        return running
    return dynamodb_local_endpoint(environ)


def _convert(name: str, type_name: str, raw: str):
    try:
        if type_name == "int":
            return int(raw)
        if type_name == "float":
            return float(raw)
        if type_name == "bool":
            return _parse_bool(raw)
        if type_name == "str | None":
            return raw or None
        return raw
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from exc
