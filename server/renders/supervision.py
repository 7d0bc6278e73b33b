"""The thread that watches over a running step: heartbeats, cancel and progress.

Every NOTEFALL_RENDER_HEARTBEAT_SECONDS it refreshes the step's lease (with how far the
step got) in its own short transaction, and four times as often it looks at the render's
Redis cancel flag. A lost lease (the render was cancelled or ended, or the step was taken
back as stale) or a set flag cancels the step's ``CancelToken``: the engine raises
``RenderCancelled`` at the next frame and FFmpeg's whole process group is killed.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from types import TracebackType

import redis
from notefall.common.progress import CancelToken
from notefall.server.kit.db import transaction_scope
from notefall.server.kit.models import utcnow
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from . import events, keys, steps
from .models import Render, RenderStep
from .progress import eta_seconds, may_publish, overall_percent
from .runtime import Runtime
from .states import STAGE_OF_STEP, RenderStatus, StepName, StepStatus

log = logging.getLogger("notefall.server.renders")


class Supervisor:
    """``with Supervisor(runtime, lease, cancel) as watch:`` around a step's work; the step
    sets ``watch.fraction`` (0..1) as it goes."""

    def __init__(self, rt: Runtime, lease: steps.Lease, cancel: CancelToken) -> None:
        self.rt = rt
        self.lease = lease
        self.cancel = cancel
        self.fraction = 0.0
        # Why the token was cancelled ("cancel flag", "lease lost"), for the log.
        self.reason: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"notefall-step-{lease.name}-{lease.index}", daemon=True
        )
        self._segment_fractions: dict[int, float] = {}
        self._started_at: datetime | None = None
        self._percent = 0.0
        self._published = -1.0
        # When the database last took a heartbeat (the claim counts as one).
        self._last_heartbeat = time.monotonic()

    def __enter__(self) -> Supervisor:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        beat = self.rt.settings.render_heartbeat_seconds
        next_beat = time.monotonic() + beat
        while not self._stop.wait(beat / 4):
            if self._cancel_flag_set():
                self._cancel("cancel flag")
                return
            if time.monotonic() >= next_beat:
                next_beat = time.monotonic() + beat
                if not self._heartbeat():
                    self._cancel("lease lost")
                    return
            else:
                self._publish_progress()

    def _cancel(self, reason: str) -> None:
        self.reason = reason
        self.cancel.cancel()

    def _cancel_flag_set(self) -> bool:
        try:
            return bool(self.rt.redis.exists(keys.cancel_flag(self.lease.render_id)))
        except redis.RedisError:
            return False  # the database heartbeat still sees a cancelled render

    def _heartbeat(self) -> bool:
        """Refresh the lease and the render's progress; False when the lease is lost."""
        now = utcnow()
        try:
            with transaction_scope(self.rt.database) as session:
                # The render row first, like the API's cancel: never step, then render.
                steps.lock_render(session, self.lease.render_id)
                if not steps.heartbeat(session, self.lease, fraction=self.fraction, now=now):
                    return False
                if self.lease.name is StepName.SEGMENT:
                    rows = session.execute(
                        select(RenderStep.index, RenderStep.fraction, RenderStep.status).where(
                            RenderStep.render_id == self.lease.render_id,
                            RenderStep.attempt == self.lease.attempt,
                            RenderStep.name == StepName.SEGMENT.value,
                        )
                    ).all()
                    self._segment_fractions = {
                        row.index: 1.0 if row.status == StepStatus.DONE.value else row.fraction
                        for row in rows
                    }
                self._started_at = session.scalar(
                    select(Render.started_at).where(Render.id == self.lease.render_id)
                )
            percent = self._overall()
            eta = eta_seconds(self._started_at, now, percent)
            # Its own transaction: on PostgreSQL a second UPDATE of the render row in the
            # heartbeat's transaction would re-check the owner foreign key and could
            # deadlock with a cancel holding the owner's row. Percent only moves forward
            # (a retried segment starts over from 0).
            with transaction_scope(self.rt.database) as session:
                session.execute(
                    update(Render)
                    .where(
                        Render.id == self.lease.render_id,
                        Render.attempt == self.lease.attempt,
                        Render.status == RenderStatus.RUNNING.value,
                        Render.percent < percent,
                    )
                    .values(percent=percent, eta_seconds=eta)
                    .execution_options(synchronize_session=False)
                )
        except SQLAlchemyError as error:
            # The database may be back by the next beat. If it is not back before half the
            # stale limit, another worker may soon take the step over (the reconciler sees
            # no heartbeat), and this holder could not learn it: stop now rather than run
            # the same step twice at once.
            silent = time.monotonic() - self._last_heartbeat
            log.warning("heartbeat of %s:%s failed: %s", self.lease.name, self.lease.index, error)
            return silent < self.rt.settings.render_stale_seconds / 2
        self._last_heartbeat = time.monotonic()
        self._publish_progress()
        return True

    def _overall(self) -> float:
        fractions = dict(self._segment_fractions)
        if self.lease.name is StepName.SEGMENT:
            fractions[self.lease.index] = self.fraction
        percent = overall_percent(self.lease.name, self.fraction, fractions.values())
        self._percent = max(self._percent, percent)
        return self._percent

    def _publish_progress(self) -> None:
        if self.lease.name is StepName.SEGMENT and not self._segment_fractions:
            return  # the other segments' progress is known from the first heartbeat on
        percent = self._overall()
        if percent <= self._published or not may_publish(
            self.rt.redis, self.lease.render_id, percent
        ):
            return
        self._published = percent
        events.publish(
            self.rt.redis,
            self.lease.render_id,
            "progress",
            status=RenderStatus.RUNNING.value,
            stage=STAGE_OF_STEP[self.lease.name],
            percent=percent,
            eta_seconds=eta_seconds(self._started_at, utcnow(), percent),
        )
