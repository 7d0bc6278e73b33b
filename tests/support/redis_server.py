"""A real Redis for tests: one ``redis-server`` per test process, nothing kept on disk."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from notefall.server.kit.redis_server import RedisServer


@contextmanager
def running_redis(folder: Path, executable: Path | None = None) -> Iterator[RedisServer]:
    with RedisServer(folder, persistent=False, executable=executable) as server:
        yield server


def flush(url: str) -> None:
    """Empty the database ``url`` names, so each test starts clean."""
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def task_result(redis_url: str, task_id: str, timeout: float = 30) -> object:
    """Wait for a Celery task's return value in the result store at ``redis_url``.

    A backend of its own: Celery caches ``celery_app.backend`` per thread, so after one test
    configured it, another test's Redis would not be asked.
    """
    from celery.backends.redis import RedisBackend
    from celery.result import AsyncResult
    from notefall.server.jobs import celery_app

    backend = RedisBackend(app=celery_app, url=redis_url)
    try:
        return AsyncResult(task_id, app=celery_app, backend=backend).get(timeout=timeout)
    finally:
        backend.client.close()
