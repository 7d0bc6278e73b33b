"""The profile domain's Celery task (the worker imports this module: see jobs.TASK_MODULES)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from celery import Task
from notefall.server.jobs import celery_app, enqueue, every
from notefall.server.kit.models import utcnow
from notefall.server.kit.settings import load_settings
from notefall.server.storage.factory import storage_from_settings

from .export_job import EXPORT_TASK, BuildOutcome, build_export, stale_pending_exports

# The request enqueues before it commits (so a queue that is down fails the request), and
# a fast worker may look before the row is visible: look again a few times before giving up.
MISSING_RETRIES = 5
MISSING_RETRY_SECONDS = 3


@celery_app.task(name=EXPORT_TASK, bind=True, max_retries=MISSING_RETRIES)
def build_export_task(self: Task, export_id: str) -> str:
    settings = load_settings()
    storage = storage_from_settings(settings, clock=utcnow)
    outcome = build_export(settings, storage, uuid.UUID(export_id), utcnow())
    if outcome is BuildOutcome.MISSING:
        raise self.retry(countdown=MISSING_RETRY_SECONDS)
    return outcome.value


# The database is the truth and the queue only transport: a pending export whose message was
# lost would otherwise stay pending forever, and block the user's next request (one pending
# export at a time). Building is idempotent, so a second message for a live one is harmless.
REQUEUE_AFTER = timedelta(minutes=10)
REQUEUE_EVERY_SECONDS = 5 * 60
REQUEUE_TASK = "notefall.profile.requeue_stale_exports"


@celery_app.task(name=REQUEUE_TASK)
def requeue_stale_exports() -> int:
    settings = load_settings()
    stale = stale_pending_exports(settings, utcnow(), REQUEUE_AFTER)
    for export_id in stale:
        enqueue(settings, EXPORT_TASK, args=[str(export_id)])
    return len(stale)


every(REQUEUE_EVERY_SECONDS, REQUEUE_TASK)
