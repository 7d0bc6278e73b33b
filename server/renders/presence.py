"""Which workers are alive, what they are doing, and whether any of them consumes work.

A worker process being alive proves little: workers have been seen running but no longer
consuming after a Redis reconnect (shared/QUEUE-NOTES.md). So two records are kept in
Redis, both written by the workers themselves through Celery signals (this module is in
the worker's task modules, so ``notefall worker`` connects them):

- ``keys.WORKERS``: field ``<hostname>:<pid>`` of each worker's main process -> JSON
  ``{queues, concurrency, busy, seen_at}``, refreshed every PRESENCE_EVERY_SECONDS by a
  thread of that process and removed at shutdown. A worker not seen for
  WORKER_GONE_SECONDS counts as gone (it was killed and could not remove itself).
- ``keys.CONSUMED``: queue -> the Unix time a task from it last finished. ``/readyz``
  fails when queued work waits and nothing has been consumed for a while (beat's periodic
  tasks keep this fresh on a live farm with no renders).

At start a worker also checks that Redis will not silently drop queued messages
(``maxmemory-policy noeviction``, append-only file on) and warns in its log if not.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis
from celery import signals
from notefall.server.kit.settings import Settings, load_settings
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from . import keys
from .models import Render, RenderStep
from .states import ACTIVE, StepStatus
from .steps import worker_name

log = logging.getLogger("notefall.server.renders.presence")

PRESENCE_EVERY_SECONDS = 10.0
WORKER_GONE_SECONDS = 60.0


# Reading (the API, /metrics, /readyz) --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkerPresence:
    name: str
    queues: list[str]
    concurrency: int
    busy: int
    seen_at: float


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def alive_workers(client: redis.Redis, now: float) -> list[WorkerPresence]:
    """Workers seen within WORKER_GONE_SECONDS of ``now`` (Unix time); raises RedisError."""
    found = []
    raw: dict[Any, Any] = client.hgetall(keys.WORKERS)  # type: ignore[assignment]
    for name, value in raw.items():
        try:
            data = json.loads(value)
            worker = WorkerPresence(
                name=_text(name),
                queues=[str(q) for q in data.get("queues", [])],
                concurrency=int(data.get("concurrency", 0)),
                busy=int(data.get("busy", 0)),
                seen_at=float(data["seen_at"]),
            )
        except (ValueError, KeyError, TypeError):
            continue
        if now - worker.seen_at <= WORKER_GONE_SECONDS:
            found.append(worker)
    return sorted(found, key=lambda w: w.name)


def last_consumed(client: redis.Redis) -> dict[str, float]:
    """Queue -> Unix time a worker last finished a task from it; raises RedisError."""
    raw: dict[Any, Any] = client.hgetall(keys.CONSUMED)  # type: ignore[assignment]
    found = {}
    for queue, value in raw.items():
        try:
            found[_text(queue)] = float(value)
        except ValueError:
            continue
    return found


def oldest_waiting_step(session: Session, now: datetime) -> datetime | None:
    """Since when the longest-waiting pending step of an unfinished render has been due
    (published, and its retry delay past), or None when no step waits."""
    due = func.coalesce(RenderStep.not_before, RenderStep.enqueued_at)
    return session.scalar(
        select(func.min(due))
        .join(Render, Render.id == RenderStep.render_id)
        .where(
            RenderStep.status == StepStatus.PENDING.value,
            RenderStep.attempt == Render.attempt,
            Render.status.in_([status.value for status in ACTIVE]),
            RenderStep.enqueued_at.is_not(None),
            or_(RenderStep.not_before.is_(None), RenderStep.not_before <= now),
        )
    )


def consumption_stalled(
    session: Session, client: redis.Redis, settings: Settings, now: datetime
) -> str | None:
    """Why the farm is not consuming, or None when it is (or has nothing to do).

    Not ready = no worker finished any task within NOTEFALL_WORKER_STALE_SECONDS **and**
    some render step has been waiting longer than that. A quiet farm with no work is ready.
    Raises redis.RedisError (the caller reports Redis itself).
    """
    window = settings.worker_stale_seconds
    consumed = last_consumed(client)
    latest = max(consumed.values(), default=None)
    if latest is not None and now.timestamp() - latest <= window:
        return None
    waiting_since = oldest_waiting_step(session, now)
    if waiting_since is None or waiting_since > now - timedelta(seconds=window):
        return None
    waited = int((now - waiting_since).total_seconds())
    if latest is None:
        last = "no worker has finished a task since Redis started"
    else:
        last = f"the last task finished {int(now.timestamp() - latest)} s ago"
    return (
        f"Render work has waited {waited} s and {last}: no worker is consuming. Start "
        "`notefall worker` (or check that the running ones reach NOTEFALL_REDIS_URL and "
        "consume the render queues; restart them after a Redis outage)."
    )


# Checking Redis at worker start --------------------------------------------------------------


def check_redis_durability(client: redis.Redis) -> list[str]:
    """Warnings about a Redis that may lose queued jobs (also logged at WARNING).

    Managed Redis often disables CONFIG; then INFO is tried, and silence is tolerated.
    """
    warnings: list[str] = []
    policy: str | None = None
    try:
        raw: Any = client.config_get("maxmemory-policy")
        policy = _text(raw.get("maxmemory-policy") or raw.get(b"maxmemory-policy") or "") or None
    except redis.RedisError:
        try:
            info: Any = client.info("memory")
            policy = str(info.get("maxmemory_policy") or "") or None
        except redis.RedisError:
            policy = None
    if policy is not None and policy != "noeviction":
        warnings.append(
            f"Redis may evict queued jobs (maxmemory-policy is {policy}); set "
            "maxmemory-policy noeviction (see packaging/redis/redis.conf)"
        )
    try:
        persistence: Any = client.info("persistence")
        if int(persistence.get("aof_enabled", 1)) == 0:
            warnings.append(
                "Redis keeps no append-only file (appendonly no): a restart loses every queued "
                "job until the reconciler republishes them; set appendonly yes and appendfsync "
                "everysec (see packaging/redis/redis.conf)"
            )
    except redis.RedisError:
        pass
    for warning in warnings:
        log.warning(warning)
    return warnings


# Writing (inside worker processes, through Celery signals) -----------------------------------


class _ProcessClient:
    """One Redis client per process: a pool child never reuses its parent's sockets."""

    def __init__(self) -> None:
        self._pid = -1
        self._client: redis.Redis | None = None
        self._lock = threading.Lock()

    def get(self) -> redis.Redis | None:
        with self._lock:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                url = load_settings().redis_url
                self._client = (
                    None
                    if not url
                    else redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
                )
            return self._client


_redis = _ProcessClient()


class Presence:
    """The worker main process's record in keys.WORKERS, refreshed by a daemon thread."""

    def __init__(
        self,
        client: redis.Redis,
        name: str,
        queues: list[str],
        concurrency: int,
        busy: Any,
    ) -> None:
        self.client = client
        self.name = name
        self.queues = queues
        self.concurrency = concurrency
        self.busy = busy  # a callable: tasks running now
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="notefall-presence", daemon=True)

    def record(self) -> None:
        entry = {
            "queues": self.queues,
            "concurrency": self.concurrency,
            "busy": int(self.busy()),
            "seen_at": time.time(),
            "pid": os.getpid(),
        }
        try:
            self.client.hset(keys.WORKERS, self.name, json.dumps(entry))
        except redis.RedisError as error:
            log.debug("worker presence not recorded: %s", error)

    def start(self) -> None:
        self.record()
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.wait(PRESENCE_EVERY_SECONDS):
            self.record()

    def stop(self) -> None:
        self.stopped.set()
        try:
            self.client.hdel(keys.WORKERS, self.name)
        except redis.RedisError as error:
            log.debug("worker presence not removed: %s", error)


_presence: dict[str, Presence] = {}


def _running_tasks() -> int:
    # The main process's own record of requests handed to pool children and not finished:
    # right even when a child is killed mid-task (a counter kept by the children would leak).
    from celery.worker import state

    return len(state.active_requests)


@signals.worker_ready.connect
def _on_worker_ready(sender: Any = None, **_: Any) -> None:
    client = _redis.get()
    if client is None:
        return
    check_redis_durability(client)
    try:
        queues = sorted(sender.app.amqp.queues.consume_from.keys())
    except AttributeError:
        queues = []
    concurrency = int(getattr(getattr(sender, "controller", None), "concurrency", 0) or 0)
    presence = Presence(client, worker_name(), queues, concurrency, _running_tasks)
    _presence["current"] = presence
    presence.start()


@signals.worker_shutdown.connect
def _on_worker_shutdown(**_: Any) -> None:
    presence = _presence.pop("current", None)
    if presence is not None:
        presence.stop()


@signals.task_postrun.connect
def _on_task_postrun(task: Any = None, **_: Any) -> None:
    """A task finished (in a pool child): the queue it came from is being consumed."""
    client = _redis.get()
    if client is None:
        return
    delivery = getattr(getattr(task, "request", None), "delivery_info", None) or {}
    queue = delivery.get("routing_key") or delivery.get("exchange") or "default"
    try:
        client.hset(keys.CONSUMED, str(queue), f"{time.time():.3f}")
    except redis.RedisError as error:
        log.debug("consumption of %s not recorded: %s", queue, error)
