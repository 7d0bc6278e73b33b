"""What a worker process keeps between tasks: settings, the database, storage and Redis.

Built once per process on first use (after the fork, so no connection is shared between
pool children), instead of per task.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import redis
from notefall.server.kit.db import Database
from notefall.server.kit.models import utcnow
from notefall.server.kit.settings import Settings, load_settings
from notefall.server.storage.factory import storage_from_settings
from notefall.server.storage.storage import Storage


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    database: Database
    storage: Storage
    redis: redis.Redis


def build_runtime(settings: Settings) -> Runtime:
    if not settings.redis_url:
        raise RuntimeError("NOTEFALL_REDIS_URL is unset: workers need the Redis they consume")
    return Runtime(
        settings=settings,
        database=Database(settings.database_url),
        storage=storage_from_settings(settings, clock=utcnow),
        redis=redis.Redis.from_url(
            settings.redis_url, socket_timeout=5, socket_connect_timeout=5, health_check_interval=30
        ),
    )


@functools.cache
def runtime() -> Runtime:
    """This process's runtime, from the environment (NOTEFALL_*)."""
    return build_runtime(load_settings())
