"""The billing domain's Celery tasks (the worker imports this module: see jobs.TASK_MODULES).

- ``notefall.billing.process_event``: one stored webhook event, exactly once (the event
  row's status commits with its effects), retried with backoff when Stripe or the database
  fails.
- ``notefall.billing.cancel_subscription``: cancel in Stripe the subscription of a deleted
  account.
- ``notefall.billing.reconcile`` (every RECONCILE_EVERY_SECONDS): the database is the truth
  and the queue only transport, so events still pending a while after they arrived (a lost
  message) are queued again, and so are cancellations Stripe has not confirmed.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import redis
from celery import Task
from notefall.server.jobs import celery_app, enqueue, every
from notefall.server.kit.db import Database, transaction_scope
from notefall.server.kit.mail import mailer_for
from notefall.server.kit.models import utcnow
from notefall.server.kit.settings import Settings, load_settings

from .repository import BillingRepository
from .webhooks import CANCEL_TASK, MAX_ATTEMPTS, cancel_requested, process_event

PROCESS_TASK = "notefall.billing.process_event"
RECONCILE_TASK = "notefall.billing.reconcile"
RECONCILE_EVERY_SECONDS = 60
# An event still pending this long after it arrived lost its message (or waits a retry).
REQUEUE_AFTER = timedelta(seconds=60)
RETRY_BASE_SECONDS = 2
RETRY_CAP_SECONDS = 300

_databases: dict[str, Database] = {}


def _database(settings: Settings) -> Database:
    # One engine per worker process (and URL), not one per task.
    if settings.database_url not in _databases:
        _databases[settings.database_url] = Database(settings.database_url)
    return _databases[settings.database_url]


_redis_clients: dict[str, redis.Redis] = {}


def _redis(settings: Settings) -> redis.Redis | None:
    if not settings.redis_url:
        return None
    if settings.redis_url not in _redis_clients:
        _redis_clients[settings.redis_url] = redis.Redis.from_url(settings.redis_url)
    return _redis_clients[settings.redis_url]


@celery_app.task(name=PROCESS_TASK, bind=True, max_retries=MAX_ATTEMPTS)
def process_event_task(self: Task, event_id: str) -> str:
    settings = load_settings()
    try:
        return process_event(
            _database(settings),
            settings,
            uuid.UUID(event_id),
            utcnow,
            mailer=mailer_for(settings),
            redis_client=_redis(settings),
        )
    except Exception as exc:
        delay = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2**self.request.retries)
        raise self.retry(exc=exc, countdown=delay) from exc


@celery_app.task(name=CANCEL_TASK, bind=True, max_retries=5)
def cancel_subscription_task(self: Task, subscription_id: str) -> str:
    settings = load_settings()
    try:
        return cancel_requested(
            _database(settings), settings, subscription_id, utcnow(), mailer=mailer_for(settings)
        )
    except Exception as exc:
        raise self.retry(exc=exc, countdown=min(300, 5 * 2**self.request.retries)) from exc


def reconcile(settings: Settings, now: datetime, requeue_after: timedelta = REQUEUE_AFTER) -> int:
    """Queue again what the broker lost; returns how many messages were sent."""
    with transaction_scope(_database(settings)) as session:
        repository = BillingRepository(session)
        stale = repository.pending_events_before(now - requeue_after, MAX_ATTEMPTS)
        cancels = repository.subscriptions_to_cancel()
    for event_id in stale:
        enqueue(settings, PROCESS_TASK, args=[str(event_id)])
    for subscription_id in cancels:
        enqueue(settings, CANCEL_TASK, args=[subscription_id])
    return len(stale) + len(cancels)


@celery_app.task(name=RECONCILE_TASK)
def reconcile_task() -> int:
    return reconcile(load_settings(), utcnow())


every(RECONCILE_EVERY_SECONDS, RECONCILE_TASK)
