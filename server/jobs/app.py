"""The one Celery app. Its broker and result store are NOTEFALL_REDIS_URL.

At-least-once delivery (see shared/QUEUE-NOTES.md): a task is acknowledged only after it
ran (``acks_late``) and comes back if its worker dies (``reject_on_worker_lost``); a worker
takes one task at a time (prefetch 1) so none sits waiting behind a long one. A task that
is not acknowledged within VISIBILITY_TIMEOUT is delivered again, so every task must finish
well within it: the hard time limit is half of it. Tasks must therefore be idempotent, and
the database, not the broker, is the record of what is done.
"""

from __future__ import annotations

from celery import Celery
from notefall.server.kit.settings import Settings

from .schedule import BEAT_SCHEDULE

DEFAULT_QUEUE = "default"
# Queues a worker consumes when not told otherwise, in the order it empties them.
# Domains with their own queues add them here.
QUEUES: list[str] = [DEFAULT_QUEUE]
# Modules whose tasks a worker (and beat) imports at start; domains add theirs.
TASK_MODULES: list[str] = [
    "notefall.server.jobs.tasks",
    "notefall.server.retention.tasks",
    "notefall.server.profile.tasks",
    "notefall.server.billing.tasks",
    # The render farm's steps (also registers the render queues).
    "notefall.server.renders.tasks",
    # Worker presence and consumption (Celery signals; /readyz and /metrics read them).
    "notefall.server.renders.presence",
    # Beat's reconciler: re-publishes render steps Redis lost.
    "notefall.server.renders.reconcile",
]

VISIBILITY_TIMEOUT_SECONDS = 2 * 60 * 60
TASK_TIME_LIMIT_SECONDS = VISIBILITY_TIMEOUT_SECONDS // 2
TASK_SOFT_TIME_LIMIT_SECONDS = TASK_TIME_LIMIT_SECONDS - 60
# A Redis that is down must not hold a request for long: enqueue answers 503 instead.
PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}

celery_app = Celery("notefall", include=TASK_MODULES)
celery_app.conf.update(
    task_default_queue=DEFAULT_QUEUE,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    # Running tasks go on when Redis drops. Cancelling them (True) kills the whole worker
    # in Celery 5.4: the cancel writes a retry state to the result store, the same Redis
    # that is gone, and that error is "unrecoverable" (tests/server/test_render_chaos.py).
    # A task whose ack is lost with the connection comes back after the visibility
    # timeout, a no-op for an idempotent task (render steps: their lease).
    worker_cancel_long_running_tasks_on_connection_loss=False,
    broker_connection_retry_on_startup=True,
    broker_transport_options={
        "visibility_timeout": VISIBILITY_TIMEOUT_SECONDS,
        "queue_order_strategy": "priority",
    },
    result_backend_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_SECONDS},
    visibility_timeout=VISIBILITY_TIMEOUT_SECONDS,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_time_limit=TASK_TIME_LIMIT_SECONDS,
    task_soft_time_limit=TASK_SOFT_TIME_LIMIT_SECONDS,
    # State lives in the database; a task that wants its return value kept says so.
    task_ignore_result=True,
    result_expires=24 * 60 * 60,
    timezone="UTC",
    enable_utc=True,
    task_publish_retry_policy=PUBLISH_RETRY_POLICY,
    beat_schedule=BEAT_SCHEDULE,
)


def configure(settings: Settings) -> Celery:
    """Point the app at the settings' Redis (a worker, beat or the API calls it once)."""
    celery_app.conf.update(broker_url=settings.redis_url, result_backend=settings.redis_url)
    return celery_app
