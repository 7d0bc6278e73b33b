"""``enqueue``: hand a task to the workers, or fail loudly; a request is never lost silently."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import redis
from kombu.exceptions import OperationalError
from notefall.server.kit.settings import Settings

from .app import celery_app
from .errors import QueueUnavailableError

log = logging.getLogger("notefall.server.jobs")
CONNECT_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}


def enqueue(
    settings: Settings,
    task: str,
    args: Sequence[Any] = (),
    kwargs: dict[str, Any] | None = None,
    *,
    queue: str | None = None,
    priority: int | None = None,
    countdown: float | None = None,
    task_id: str | None = None,
    ignore_result: bool = False,
) -> str:
    """Publish ``task`` (its registered name) to ``settings.redis_url``; returns the task id.

    Raises QueueUnavailableError (503 ``queue_unavailable``) when Redis is not configured or
    does not take the message, so the caller's request fails (and its transaction rolls
    back) instead of recording work that no worker will ever see.
    """
    if not settings.redis_url:
        raise QueueUnavailableError(
            "The job queue is not configured (NOTEFALL_REDIS_URL is unset); try again later."
        )
    try:
        # Our own connection to the settings' URL rather than the app's pooled one, so
        # several apps (tests) with different Redis URLs never share a broker by accident.
        with celery_app.connection_for_write(settings.redis_url) as connection:
            # Fails at once when Redis is down; publishing alone would retry for seconds.
            connection.ensure_connection(**CONNECT_RETRY_POLICY)
            result = celery_app.send_task(
                task,
                args=list(args),
                kwargs=kwargs or {},
                queue=queue,
                priority=priority,
                countdown=countdown,
                task_id=task_id,
                connection=connection,
                # True: the publisher does not subscribe to the task's result (Celery does so
                # for every send_task outside a worker, on the result store's own connection,
                # which then fails every publish after a Redis restart), nor is it stored.
                ignore_result=ignore_result,
            )
    except (OperationalError, redis.RedisError, OSError) as exc:
        log.error("could not enqueue %s: %s", task, exc)
        raise QueueUnavailableError(
            "The job queue does not answer, so nothing was started; try again in a minute."
        ) from exc
    return str(result.id)
