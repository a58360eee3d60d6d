"""init_stream(app): the stream's blueprints (one line in create_app); build_hub: a process's Hub."""

from __future__ import annotations

from ..config import Config


def build_hub(config: Config, model):
    from .hub import Hub

    return Hub(
        model,
        max_age_seconds=config.PRICE_MAX_AGE_SECONDS,
        retention_seconds=config.STREAM_FEED_RETENTION_SECONDS,
        poll_seconds=config.STREAM_POLL_SECONDS,
        max_connections=config.STREAM_MAX_CONNECTIONS,
        max_per_client=config.STREAM_MAX_PER_CLIENT,
        queue_size=config.STREAM_CLIENT_QUEUE,
        metrics=_metrics(config),
    )


def _metrics(config: Config):
    # Under gunicorn the values go to the shared multiprocess directory (summed by /metrics);
    # a single process (tests) keeps none, so apps built one after another never clash.
    if not config.PROMETHEUS_MULTIPROC_DIR:
        return None
    from ..telemetry.metrics import StreamMetrics

    return StreamMetrics(None)


def init_stream(app, api, config: Config) -> None:
    """Register the stream views (each process's Hub is built with its Services: `build_hub`)."""
    from .schemas import StreamMessageSchema
    from .views import blp

    api.register_blueprint(blp)
    from .socket import sock, ws_blp

    # Heartbeats: a ping every interval; a client whose pong does not come back is dropped.
    app.config.setdefault("SOCK_SERVER_OPTIONS", {"ping_interval": config.STREAM_HEARTBEAT_SECONDS})
    app.register_blueprint(ws_blp)
    sock.init_app(app)
    # The messages travel inside SSE `data:` lines and WebSocket frames: documented as a component.
    api.spec.components.schema("StreamMessage", schema=StreamMessageSchema)
