"""The reconciler: the database says what must run; put back in Redis whatever Redis lost.

Celery on Redis loses messages in several ordinary ways (shared/QUEUE-NOTES.md): a worker
killed while it holds one (it comes back only after the 2-hour visibility timeout), a crash
between BRPOP and the write to ``unacked``, Redis restarted without its last second of
writes, or emptied. The render and step rows are the record of truth, so beat runs this
every NOTEFALL_RECONCILE_EVERY_SECONDS and it, for the current attempt of every queued or
running render:

(a) publishes a new message for a *running* step whose heartbeat is older than
    NOTEFALL_RENDER_STALE_SECONDS (its worker died): the claim accepts a stale running step,
    so the new delivery takes it over and the old holder, should it still live, finds its
    heartbeat refused and stops (steps.py);
(b) publishes again a *pending* step that is due, was published more than
    NOTEFALL_RENDER_REQUEUE_GRACE_SECONDS ago (or never), and whose message is in no render
    queue and in no worker's hands (``unacked``) — a message in ``unacked`` whose step has
    been due longer than NOTEFALL_RENDER_STALE_SECONDS counts as lost: its worker would
    have claimed it by then, so that worker is gone;
(c) adds the missing next step of a render whose steps are all done but which has not
    finished (a worker died between finishing a step and creating the next one);
(d) lists again in Redis the dead renders whose dead-letter entry Redis lost.

Every message it sends is an extra copy at worst: the step's lease makes a duplicate a
no-op, so erring towards publishing is safe, and erring the other way would lose a render.
Runs never overlap (a Redis lock), so two beats by mistake do no harm either.
"""

from __future__ import annotations

import functools
import logging
import secrets
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import redis
from notefall.server.jobs import celery_app, every
from notefall.server.jobs.app import DEFAULT_QUEUE
from notefall.server.jobs.errors import QueueUnavailableError
from notefall.server.kit.db import Database, transaction_scope
from notefall.server.kit.models import utcnow
from notefall.server.kit.settings import Settings
from notefall.server.storage.factory import storage_from_settings
from notefall.server.storage.storage import Storage
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from . import broker, events, keys, queues, steps
from .deadletters import DeadLetterService
from .models import Render, RenderStep
from .runtime import Runtime, runtime
from .states import ACTIVE, RenderStatus, StepName, StepStatus

log = logging.getLogger("notefall.server.renders.reconcile")

RECONCILE_TASK = "notefall.renders.reconcile"
LOCK_KEY = f"{keys.PREFIX}:reconcile-lock"
# Released at the end of a run; the expiry only matters when the run's process dies, and
# then the next run waits at most this long.
LOCK_SECONDS = 60
# Release only our own lock (it may have expired and been taken by another run meanwhile).
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)


@dataclass
class ReconcileReport:
    """What one run did; every list holds ``render_id step:index`` labels."""

    stale: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)
    dead_letters_relisted: int = 0
    # Why a run did nothing or only part of its work ("locked", "broker scan too large").
    skipped: str | None = None
    publish_failures: int = 0

    def counts(self) -> dict[str, int]:
        return {
            "stale": len(self.stale),
            "lost": len(self.lost),
            "next_steps": len(self.next_steps),
            "dead_letters_relisted": self.dead_letters_relisted,
            "publish_failures": self.publish_failures,
        }

    @property
    def republished(self) -> list[str]:
        return [*self.stale, *self.lost, *self.next_steps]


def _label(render_id: uuid.UUID, name: str, index: int) -> str:
    return f"{render_id} {name}:{index}"


@dataclass(frozen=True)
class _Broker:
    """What Redis holds for render steps, or None per part when the scan was too large."""

    queued: set[steps.StepRef] | None
    unacked: dict[steps.StepRef, float | None] | None


def _scan_broker(client: redis.Redis) -> _Broker:
    # Unacked first, then the lists: a message that moves back from a dead worker's hands to
    # a queue in between is then seen in one place or the other, never in neither.
    try:
        held = broker.unacked_deliveries(client)
        unacked: dict[steps.StepRef, float | None] | None = {}
        for task_id, at in held.items():
            ref = steps.step_ref_of_task_id(task_id)
            if ref is not None and unacked is not None:
                unacked[ref] = at
    except broker.ScanTooLarge:
        unacked = None
    try:
        ids = broker.queued_task_ids(client, queues.RENDER_QUEUES.values())
        queued: set[steps.StepRef] | None = {
            ref for ref in map(steps.step_ref_of_task_id, ids) if ref is not None
        }
    except broker.ScanTooLarge:
        queued = None
    return _Broker(queued, unacked)


def _acquire(client: redis.Redis) -> str | None:
    token = secrets.token_hex(16)
    return token if client.set(LOCK_KEY, token, nx=True, px=LOCK_SECONDS * 1000) else None


def _release(client: redis.Redis, token: str) -> None:
    try:
        client.eval(_RELEASE, 1, LOCK_KEY, token)
    except redis.RedisError:
        log.warning("reconcile lock not released; it expires in %d s", LOCK_SECONDS)


# Deciding ----------------------------------------------------------------------------------


def _is_stale(step: RenderStep, settings: Settings, found: _Broker, now: datetime) -> bool:
    """(a): a running step whose holder stopped sending heartbeats."""
    stale = now - timedelta(seconds=settings.render_stale_seconds)
    if step.heartbeat_at is not None and step.heartbeat_at >= stale:
        return False
    ref = steps.ref_of(step)
    if found.queued is not None and ref in found.queued:
        return False  # the copy we sent earlier is waiting for a worker
    # Sent a copy within the stale window: give a worker that time to take it.
    return step.enqueued_at is None or step.enqueued_at < stale


def _is_lost(step: RenderStep, settings: Settings, found: _Broker, now: datetime) -> bool:
    """(b): a pending, due step that no message in Redis names."""
    if found.queued is None or found.unacked is None:
        return False
    if step.not_before is not None and step.not_before > now:
        return False
    grace = now - timedelta(seconds=settings.render_requeue_grace_seconds)
    if step.enqueued_at is not None and step.enqueued_at >= grace:
        return False
    ref = steps.ref_of(step)
    if ref in found.queued:
        return False
    if ref in found.unacked:
        # A worker holds it; a live one would have claimed a due step by now.
        times = [t for t in (step.enqueued_at, step.not_before) if t is not None]
        held_since = now - timedelta(seconds=settings.render_stale_seconds)
        return not times or max(times) < held_since
    return True


def next_step_of(render: Render, attempt_steps: list[RenderStep]) -> tuple[StepName, int] | None:
    """The step a render whose steps are all finished still lacks, if any: the chain
    prepare → segments → join → thumbnail → finalize with one link missing."""
    by_name: dict[str, list[RenderStep]] = defaultdict(list)
    for step in attempt_steps:
        by_name[step.name].append(step)
    if not by_name[StepName.PREPARE]:
        return StepName.PREPARE, 0
    segments = by_name[StepName.SEGMENT]
    if not segments or len(segments) < (render.segment_count or 0):
        # Prepare creates every segment in the transaction that finishes it, so a render
        # cannot be here; nothing safe to add without the frame plan.
        return None
    if not by_name[StepName.JOIN]:
        return StepName.JOIN, 0
    if not by_name[StepName.THUMBNAIL]:
        return StepName.THUMBNAIL, 0
    if not by_name[StepName.FINALIZE]:
        return StepName.FINALIZE, 0
    return None


# Acting --------------------------------------------------------------------------------------


def _republish(
    database: Database,
    settings: Settings,
    client: redis.Redis | None,
    step_id: uuid.UUID,
    still: Callable[[RenderStep], bool],
    now: datetime,
    report: ReconcileReport,
    into: list[str],
) -> None:
    """Publish a new message for the step if ``still(step)`` holds under the render's lock
    (a worker may have claimed or finished it since the scan)."""
    with transaction_scope(database) as session:
        step = session.get(RenderStep, step_id)
        if step is None:
            return
        steps.lock_render(session, step.render_id)
        render = session.get(Render, step.render_id)
        session.refresh(step)
        if (
            render is None
            or render.attempt != step.attempt
            or RenderStatus(render.status) not in ACTIVE
        ):
            return
        if not still(step):
            return
        step.enqueued_at = now
        label = _label(render.id, step.name, step.index)
        lost_worker = step.status == StepStatus.RUNNING.value and step.worker
        session.flush()
        session.expunge(render)
        session.expunge(step)
    _publish(settings, render, step, label, report, into)
    if lost_worker and client is not None:
        # Shown to the user watching: without it a render looks stuck for a minute.
        name = f"segment {step.index + 1}" if step.name == StepName.SEGMENT else step.name
        events.publish(
            client, render.id, "log", status=render.status, stage=render.stage,
            percent=render.percent,
            message=f"The worker running {name} stopped answering; another one takes it over.",
            fields={"worker": str(lost_worker), "step": f"{step.name}:{step.index}"},
        )  # fmt: skip


def _publish(
    settings: Settings,
    render: Render,
    step: RenderStep,
    label: str,
    report: ReconcileReport,
    into: list[str],
) -> None:
    try:
        steps.publish_now(settings, render, step)
    except QueueUnavailableError:
        # enqueued_at moved on, so the next run tries again after the grace period.
        report.publish_failures += 1
        log.warning("reconcile: could not publish %s (Redis does not answer)", label)
        return
    into.append(label)


def _add_next_step(
    database: Database,
    settings: Settings,
    render_id: uuid.UUID,
    now: datetime,
    report: ReconcileReport,
) -> None:
    with transaction_scope(database) as session:
        steps.lock_render(session, render_id)
        render = session.get(Render, render_id)
        if render is None or RenderStatus(render.status) not in ACTIVE:
            return
        attempt_steps = _attempt_steps(session, render)
        if any(s.status in (StepStatus.PENDING, StepStatus.RUNNING) for s in attempt_steps):
            return  # a worker moved it on since the scan
        missing = next_step_of(render, attempt_steps)
        if missing is None:
            log.warning(
                "reconcile: render %s has no unfinished step and none is missing", render_id
            )
            return
        step = steps.add_step(session, render, missing[0], missing[1])
        step.enqueued_at = now
        label = _label(render.id, step.name, step.index)
        session.flush()
        session.expunge(render)
        session.expunge(step)
    _publish(settings, render, step, label, report, report.next_steps)


def _attempt_steps(session: Session, render: Render) -> list[RenderStep]:
    return list(
        session.scalars(
            select(RenderStep).where(
                RenderStep.render_id == render.id, RenderStep.attempt == render.attempt
            )
        )
    )


def _relist_dead_letters(parts: _Parts, now: datetime) -> int:
    """(d): listing the dead letters puts back in Redis every dead render missing there
    (deadletters.py); the count is how much the list grew."""
    before = int(parts.redis.llen(keys.DEAD_LETTERS))  # type: ignore[arg-type]
    with transaction_scope(parts.database) as session:
        DeadLetterService(session, parts.settings, parts.redis, parts.storage, now).list()
    return max(0, int(parts.redis.llen(keys.DEAD_LETTERS)) - before)  # type: ignore[arg-type]


# The run --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Parts:
    settings: Settings
    database: Database
    redis: redis.Redis
    storage: Storage


def _parts(runtime_or_settings: Runtime | Settings) -> tuple[_Parts, bool]:
    """The runtime's own connections, or new ones (closed after the run) from settings."""
    if isinstance(runtime_or_settings, Runtime):
        r = runtime_or_settings
        return _Parts(r.settings, r.database, r.redis, r.storage), False
    settings = runtime_or_settings
    if not settings.redis_url:
        raise RuntimeError("NOTEFALL_REDIS_URL is unset: the reconciler needs the Redis it repairs")
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=10, socket_connect_timeout=5)
    storage = storage_from_settings(settings, clock=utcnow)
    return _Parts(settings, Database(settings.database_url), client, storage), True


def reconcile(
    runtime_or_settings: Runtime | Settings, now: datetime | None = None
) -> ReconcileReport:
    """One run (see the module's docstring). Raises redis.RedisError when Redis does not
    answer at all: there is nothing to repair into, and beat tries again next time."""
    parts, owned = _parts(runtime_or_settings)
    try:
        return _run(parts, now or utcnow())
    finally:
        if owned:
            parts.database.dispose()
            parts.redis.close()


def _run(parts: _Parts, now: datetime) -> ReconcileReport:
    report = ReconcileReport()
    token = _acquire(parts.redis)
    if token is None:
        report.skipped = "locked"
        log.info("reconcile: another run holds the lock; skipped")
        return report
    try:
        found = _scan_broker(parts.redis)
        if found.queued is None or found.unacked is None:
            report.skipped = "broker scan too large"
            log.warning(
                "reconcile: more than %d messages in Redis; lost messages are not looked for "
                "in this run (stale steps still are)",
                broker.DEFAULT_LIMIT,
            )
        _reconcile_steps(parts, found, now, report)
        report.dead_letters_relisted = _relist_dead_letters(parts, now)
    finally:
        _release(parts.redis, token)
    if report.republished or report.dead_letters_relisted or report.publish_failures:
        log.info(
            "reconcile: %s; stale %s; lost %s; next steps %s",
            report.counts(),
            report.stale,
            report.lost,
            report.next_steps,
        )
    else:
        log.info("reconcile: nothing to repair")
    return report


def _reconcile_steps(parts: _Parts, found: _Broker, now: datetime, report: ReconcileReport) -> None:
    settings = parts.settings
    stale_ids: list[uuid.UUID] = []
    lost_ids: list[uuid.UUID] = []
    without_work: list[uuid.UUID] = []
    grace = now - timedelta(seconds=settings.render_requeue_grace_seconds)
    with transaction_scope(parts.database) as session:
        rows = session.execute(
            select(Render, RenderStep)
            .join(
                RenderStep,
                (RenderStep.render_id == Render.id) & (RenderStep.attempt == Render.attempt),
                isouter=True,
            )
            .where(Render.status.in_([s.value for s in ACTIVE]))
        ).all()
        unfinished: dict[uuid.UUID, bool] = {}
        last_change: dict[uuid.UUID, datetime | None] = {}
        for render, step in rows:
            unfinished.setdefault(render.id, False)
            last_change.setdefault(render.id, render.created_at)
            if step is None:
                continue
            if step.status == StepStatus.RUNNING:
                unfinished[render.id] = True
                if _is_stale(step, settings, found, now):
                    stale_ids.append(step.id)
            elif step.status == StepStatus.PENDING:
                unfinished[render.id] = True
                if _is_lost(step, settings, found, now):
                    lost_ids.append(step.id)
            elif step.finished_at is not None:
                previous = last_change[render.id]
                if previous is None or step.finished_at > previous:
                    last_change[render.id] = step.finished_at
        for render_id, busy in unfinished.items():
            changed = last_change[render_id]
            # Give the worker that finished the last step the grace period to add the next.
            if not busy and (changed is None or changed < grace):
                without_work.append(render_id)

    def still_stale(step: RenderStep) -> bool:
        return step.status == StepStatus.RUNNING and _is_stale(step, settings, found, now)

    def still_lost(step: RenderStep) -> bool:
        return step.status == StepStatus.PENDING and _is_lost(step, settings, found, now)

    actions: list[Callable[[], None]] = [
        *(
            functools.partial(
                _republish,
                parts.database,
                settings,
                parts.redis,
                i,
                still_stale,
                now,
                report,
                report.stale,
            )
            for i in stale_ids
        ),
        *(
            functools.partial(
                _republish,
                parts.database,
                settings,
                None,
                i,
                still_lost,
                now,
                report,
                report.lost,
            )
            for i in lost_ids
        ),
        *(
            functools.partial(_add_next_step, parts.database, settings, i, now, report)
            for i in without_work
        ),
    ]
    for action in actions:
        try:
            action()
        except OperationalError as exc:
            # A busy database: this one waits for the next run, the others go ahead.
            log.warning("reconcile: database busy, one repair left for the next run: %s", exc)


# The periodic task ---------------------------------------------------------------------------


@celery_app.task(name=RECONCILE_TASK)
def reconcile_task() -> dict[str, int]:
    """Beat's entry point: one run with this worker's runtime (the counts go to the log)."""
    # The process's runtime, built on first use (after the fork).
    report = reconcile(runtime())
    return report.counts()


# The default interval; `notefall beat` applies NOTEFALL_RECONCILE_EVERY_SECONDS at start.
every(
    Settings.model_fields["reconcile_every_seconds"].default,
    RECONCILE_TASK,
    queue=DEFAULT_QUEUE,
)
