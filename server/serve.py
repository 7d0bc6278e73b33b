"""``notefall serve``: migrate the database to head, then run the API with uvicorn."""

from __future__ import annotations

import logging
import re
import signal
from types import FrameType

import uvicorn
from notefall.common.errors import InputError
from notefall.server.kit.app import create_app
from notefall.server.kit.settings import Environment
from notefall.server.migrations import upgrade_to_head
from notefall.server.stack import embedded_redis, settings_or_input_error


class RedactTokens(logging.Filter):
    """Browsers cannot set headers on a WebSocket, so its access token may come in the
    query string (``?access_token=``); it must not reach the access log with the path."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _TOKEN_IN_QUERY.sub(r"\1[redacted]", a) if isinstance(a, str) else a
                for a in record.args
            )
        return True


_TOKEN_IN_QUERY = re.compile(r"((?:^|[?&])access_token=)[^&\s]*")


def _stop(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def serve(host: str, port: int, *, migrate: bool = True) -> None:
    settings = settings_or_input_error()
    if not settings.redis_url and settings.environment is Environment.PRODUCTION:
        raise InputError(
            "NOTEFALL_REDIS_URL must name your Redis in production (redis://host:port/db); "
            "the embedded one is for development only",
            code="invalid_settings",
        )
    # SIGINT/SIGTERM end the process through `finally` (so the embedded Redis stops), both
    # before uvicorn runs and after it: uvicorn re-raises the signal that stopped it once it
    # has shut down, and this handler is the one it restores.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, _stop)
    redis = None
    if not settings.redis_url:
        # Development: a Redis of our own in DATA_DIR/redis, so sign-in limits and the
        # queue work; jobs wait there until a worker (`notefall stack` runs them) takes them.
        redis = embedded_redis(settings)
        settings = settings.model_copy(update={"redis_url": redis.url})
        print(f"No NOTEFALL_REDIS_URL: started an embedded Redis at {redis.url}", flush=True)
    try:
        if migrate:
            # Idempotent; a laptop stack then needs no separate step. Several replicas starting
            # at once against PostgreSQL should migrate once beforehand and pass --no-migrate.
            upgrade_to_head(settings.database_url)
        # HTTP requests go to uvicorn.access, WebSocket handshakes to uvicorn.error.
        for name in ("uvicorn.access", "uvicorn.error"):
            logging.getLogger(name).addFilter(RedactTokens())
        uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
    finally:
        if redis:
            redis.stop()
