"""``notefall serve``: migrate the database to head, then run the API with uvicorn."""

from __future__ import annotations

import signal
from types import FrameType

import uvicorn
from notefall.common.errors import InputError
from notefall.server.kit.app import create_app
from notefall.server.kit.settings import Environment
from notefall.server.migrations import upgrade_to_head
from notefall.server.stack import embedded_redis, settings_or_input_error


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
        uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
    finally:
        if redis:
            redis.stop()
