"""Steps and their leases: how any worker on any machine takes a unit of work safely.

The rules every task follows (and the reconciler relies on):

- A step runs only while its delivery holds the step's ``lease`` (``claim``). A claim
  succeeds for a pending step, or for a running one whose heartbeat is older than
  NOTEFALL_RENDER_STALE_SECONDS (its worker died). So a duplicate message, a message
  redelivered after the visibility timeout, or a second copy published by the reconciler
  finds the step taken and does nothing: no step is produced twice at the same time.
- The holder calls ``heartbeat`` every NOTEFALL_RENDER_HEARTBEAT_SECONDS; when it answers
  False the lease is lost (taken back as stale, or the render was cancelled or ended) and
  the holder stops at once, without writing anything.
- A step is finished with ``complete`` (only by its lease holder), or handed back for a
  retry with ``release_for_retry``; a permanent error fails the render (``fail_render``);
  too many deliveries send it to the dead letters (``claim`` does that itself).
- Messages are published only after the transaction that made the step pending commits
  (``publish_after_commit``); if Redis does not take them, the step stays pending and the
  reconciler publishes it after NOTEFALL_RENDER_REQUEUE_GRACE_SECONDS.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis
from notefall.server.jobs import enqueue
from notefall.server.jobs.errors import QueueUnavailableError
from notefall.server.kit.db import after_commit
from notefall.server.kit.models import utcnow
from notefall.server.kit.settings import Settings
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from . import keys
from .models import Render, RenderStep
from .states import STAGE_OF_STEP, TERMINAL, RenderStatus, StepName, StepStatus

log = logging.getLogger("notefall.server.renders")

# The Celery task that runs a step (server/renders/tasks.py registers it).
STEP_TASK = "notefall.renders.run_step"


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def task_id_for(step: RenderStep) -> str:
    """A message id that names its step (the reconciler reads it back from the broker);
    the random tail keeps republished copies distinct."""
    return f"render.{step.render_id}.{step.attempt}.{step.name}.{step.index}.{secrets.token_hex(4)}"


@dataclass(frozen=True, slots=True)
class StepRef:
    render_id: uuid.UUID
    attempt: int
    name: StepName
    index: int

    def as_args(self) -> list[Any]:
        return [str(self.render_id), self.attempt, self.name.value, self.index]


def step_ref_of_task_id(task_id: str) -> StepRef | None:
    """The step a message id names, or None for a message that is not a render step."""
    parts = task_id.split(".")
    if len(parts) != 6 or parts[0] != "render":
        return None
    try:
        return StepRef(uuid.UUID(parts[1]), int(parts[2]), StepName(parts[3]), int(parts[4]))
    except ValueError:
        return None


def ref_of(step: RenderStep) -> StepRef:
    return StepRef(step.render_id, step.attempt, StepName(step.name), step.index)


# Creating and publishing ---------------------------------------------------------------------


def add_step(
    session: Session,
    render: Render,
    name: StepName,
    index: int = 0,
    *,
    first_frame: int | None = None,
    last_frame: int | None = None,
) -> RenderStep:
    """A pending step of the render's current attempt (flushed, so it has its id)."""
    step = RenderStep(
        render_id=render.id,
        attempt=render.attempt,
        name=name.value,
        index=index,
        first_frame=first_frame,
        last_frame=last_frame,
        status=StepStatus.PENDING.value,
        deliveries=0,
        fraction=0.0,
    )
    session.add(step)
    session.flush()
    return step


def publish_after_commit(
    session: Session,
    settings: Settings,
    render: Render,
    step: RenderStep,
    *,
    countdown: float | None = None,
    now: datetime | None = None,
) -> None:
    """Mark ``step`` as published now and send its message once ``session`` commits.

    A message that Redis does not take is only logged: the step stays pending and the
    reconciler publishes it again, so the caller's work (a submit) still succeeds.
    """
    step.enqueued_at = now or utcnow()
    ref, queue, task_id = ref_of(step), render.queue, task_id_for(step)
    priority = None  # one queue per plan already orders the work (queues.py)

    def send() -> None:
        try:
            enqueue(
                settings,
                STEP_TASK,
                args=ref.as_args(),
                queue=queue,
                priority=priority,
                countdown=countdown,
                task_id=task_id,
                ignore_result=True,  # the step's row is its result
            )
        except QueueUnavailableError:
            log.warning("step %s not published (the reconciler will): queue unavailable", task_id)

    after_commit(session, send)


def publish_now(settings: Settings, render: Render, step: RenderStep) -> str:
    """Publish a step's message at once (the reconciler, which commits first); raises
    QueueUnavailableError when Redis does not take it."""
    task_id = task_id_for(step)
    enqueue(
        settings,
        STEP_TASK,
        args=ref_of(step).as_args(),
        queue=render.queue,
        task_id=task_id,
        ignore_result=True,  # the step's row is its result
    )
    return task_id


# Lock order ----------------------------------------------------------------------------------


def lock_render(session: Session, render_id: uuid.UUID) -> None:
    """Take the render row's lock as a transaction's first statement.

    Lock order: the owner's user row (when the transaction needs it: charging storage),
    then the render row, then its steps — the order of the API's cancel (``fail_render``
    after locking the owner). A worker transaction that updated a step first and the
    render second (``heartbeat`` alone does) could deadlock with it on PostgreSQL.

    PostgreSQL: ``SELECT ... FOR UPDATE``, not a dummy UPDATE: a row this transaction has
    already updated makes PostgreSQL re-check the owner foreign key on the next UPDATE of
    it, which waits for a cancel that holds the owner's row — a deadlock. SQLite: a write,
    so the transaction takes the database's write lock up front (waiting for it) instead of
    reading first and failing to upgrade when another writer committed in between.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(
            update(Render)
            .where(Render.id == render_id)
            .values(attempt=Render.attempt, updated_at=Render.updated_at)
            .execution_options(synchronize_session=False)
        )
    else:
        session.execute(select(Render.id).where(Render.id == render_id).with_for_update())


# Leases ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lease:
    """Held by one delivery of one step."""

    step_id: uuid.UUID
    render_id: uuid.UUID
    attempt: int
    name: StepName
    index: int
    token: str
    deliveries: int


def claim(
    session: Session,
    settings: Settings,
    ref: StepRef,
    *,
    worker: str | None = None,
    now: datetime | None = None,
) -> Lease | None:
    """Take the step for this delivery, or None when it is not ours to run (done, held by a
    live delivery, of an older attempt, not due yet, or its render has ended).

    Counts the delivery. The caller checks ``lease.deliveries`` against the limit (see
    ``over_delivery_limit``). Commits nothing itself.
    """
    now = now or utcnow()
    render = session.get(Render, ref.render_id, with_for_update=True)
    if render is None or render.attempt != ref.attempt or RenderStatus(render.status) in TERMINAL:
        return None
    stale = now - timedelta(seconds=settings.render_stale_seconds)
    token = secrets.token_hex(16)
    result = session.execute(
        update(RenderStep)
        .where(
            RenderStep.render_id == ref.render_id,
            RenderStep.attempt == ref.attempt,
            RenderStep.name == ref.name.value,
            RenderStep.index == ref.index,
            (RenderStep.status == StepStatus.PENDING.value)
            | ((RenderStep.status == StepStatus.RUNNING.value) & (RenderStep.heartbeat_at < stale)),
            (RenderStep.not_before.is_(None)) | (RenderStep.not_before <= now),
        )
        .values(
            status=StepStatus.RUNNING.value,
            lease=token,
            worker=(worker or worker_name())[:200],
            heartbeat_at=now,
            started_at=func.coalesce(RenderStep.started_at, now),
            deliveries=RenderStep.deliveries + 1,
            not_before=None,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    step = session.scalars(
        select(RenderStep).where(
            RenderStep.render_id == ref.render_id,
            RenderStep.attempt == ref.attempt,
            RenderStep.name == ref.name.value,
            RenderStep.index == ref.index,
        )
    ).one()
    session.refresh(step)
    if render.status == RenderStatus.QUEUED.value:
        render.status = RenderStatus.RUNNING.value
        render.started_at = render.started_at or now
    render.stage = STAGE_OF_STEP[ref.name]
    render.heartbeat_at = now
    return Lease(step.id, render.id, ref.attempt, ref.name, ref.index, token, step.deliveries)


def over_delivery_limit(settings: Settings, lease: Lease) -> bool:
    return lease.deliveries > settings.render_max_deliveries


def heartbeat(
    session: Session, lease: Lease, *, fraction: float | None = None, now: datetime | None = None
) -> bool:
    """Refresh the lease; False when it is lost or the render has ended (stop at once)."""
    now = now or utcnow()
    values: dict[str, Any] = {"heartbeat_at": now}
    if fraction is not None:
        values["fraction"] = min(max(fraction, 0.0), 1.0)
    result = session.execute(
        update(RenderStep)
        .where(
            RenderStep.id == lease.step_id,
            RenderStep.lease == lease.token,
            RenderStep.status == StepStatus.RUNNING.value,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    status = session.execute(
        update(Render)
        .where(Render.id == lease.render_id, Render.attempt == lease.attempt)
        .values(heartbeat_at=now)
        .returning(Render.status)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    return status is not None and RenderStatus(status) not in TERMINAL


def holds(session: Session, lease: Lease, *, for_update: bool = False) -> RenderStep | None:
    """The step, if ``lease`` still holds it and its render is still going."""
    query = select(RenderStep).where(
        RenderStep.id == lease.step_id,
        RenderStep.lease == lease.token,
        RenderStep.status == StepStatus.RUNNING.value,
    )
    if for_update:
        query = query.with_for_update()
    step = session.scalars(query).one_or_none()
    if step is None:
        return None
    render = session.get(Render, lease.render_id)
    if render is None or render.attempt != lease.attempt or RenderStatus(render.status) in TERMINAL:
        return None
    return step


def complete(
    session: Session, lease: Lease, *, output_key: str | None = None, now: datetime | None = None
) -> RenderStep | None:
    """Mark the step done; None (and nothing written) when the lease no longer holds it."""
    step = holds(session, lease, for_update=True)
    if step is None:
        return None
    step.status = StepStatus.DONE.value
    step.finished_at = now or utcnow()
    step.fraction = 1.0
    step.lease = None
    step.error = None
    if output_key is not None:
        step.output_key = output_key
    session.flush()
    return step


def retry_delay(settings: Settings, deliveries: int, jitter: float) -> float:
    """Exponential backoff with full jitter on top of the base: ``jitter`` is in [0, 1)."""
    exponent = max(0, deliveries - 1)
    delay = min(settings.render_retry_cap_seconds, settings.render_retry_base_seconds * 2**exponent)
    # Half fixed, half random: delays still grow, and retries of many renders spread out.
    return delay / 2 + delay / 2 * jitter


def release_for_retry(
    session: Session,
    settings: Settings,
    lease: Lease,
    error: str,
    delay: float,
    *,
    now: datetime | None = None,
) -> RenderStep | None:
    """Hand the step back for another delivery after ``delay`` seconds and publish that
    delivery (with a countdown) after commit. None when the lease no longer holds it."""
    now = now or utcnow()
    step = holds(session, lease, for_update=True)
    if step is None:
        return None
    render = session.get(Render, lease.render_id)
    assert render is not None
    step.status = StepStatus.PENDING.value
    step.lease = None
    step.error = error[:1000]
    step.not_before = now + timedelta(seconds=delay)
    session.flush()
    publish_after_commit(session, settings, render, step, countdown=delay, now=now)
    return step


def fail_render(
    session: Session,
    render_id: uuid.UUID,
    attempt: int,
    status: RenderStatus,
    code: str,
    message: str,
    *,
    now: datetime | None = None,
) -> Render | None:
    """End the render as ``status`` (failed, dead or cancelled) unless it already ended;
    its unfinished steps are marked failed so nothing picks them up again."""
    assert status in TERMINAL and status is not RenderStatus.SUCCEEDED
    now = now or utcnow()
    render = session.get(Render, render_id, with_for_update=True)
    if render is None or render.attempt != attempt or RenderStatus(render.status) in TERMINAL:
        return None
    render.status = status.value
    render.error_code = code[:60]
    render.error_message = message[:1000]
    render.finished_at = now
    render.eta_seconds = None
    session.execute(
        update(RenderStep)
        .where(
            RenderStep.render_id == render_id,
            RenderStep.status.in_([StepStatus.PENDING.value, StepStatus.RUNNING.value]),
        )
        .values(status=StepStatus.FAILED.value, lease=None)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    return render


def dead_letter_entry(render: Render, step: StepRef | None, reason: str, now: datetime) -> str:
    return json.dumps(
        {
            "render_id": str(render.id),
            "attempt": render.attempt,
            "step": None if step is None else f"{step.name.value}:{step.index}",
            "reason": reason,
            "at": now.isoformat(),
        }
    )


def send_to_dead_letters(
    session: Session,
    client: redis.Redis,
    render_id: uuid.UUID,
    attempt: int,
    step: StepRef | None,
    reason: str,
    *,
    now: datetime | None = None,
) -> Render | None:
    """The render is dead (database) and listed for operators (Redis, after commit)."""
    now = now or utcnow()
    render = fail_render(
        session,
        render_id,
        attempt,
        RenderStatus.DEAD,
        "render_dead",
        "This render failed again and again, so it was set aside for our operators to "
        "look at; nothing was charged. Try again later, or contact support with its id.",
        now=now,
    )
    if render is None:
        return None
    entry = dead_letter_entry(render, step, reason, now)

    def push() -> None:
        try:
            client.rpush(keys.DEAD_LETTERS, entry)
        except redis.RedisError:
            # The database row is the record; the list is rebuilt from it (deadletters.py).
            log.warning("dead letter for render %s not listed in Redis", render_id)

    after_commit(session, push)
    return render
