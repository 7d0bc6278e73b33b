"""The dead-letter queue: renders whose steps were delivered too many times.

The database is the record (renders with status ``dead``); the Redis list
``keys.DEAD_LETTERS`` holds an entry per dead render with the reason (the step and the last
error) for operators. Listing reads both and puts back into Redis any dead render missing
there (a Redis that lost its data, or a push that failed after the commit).

An operator then either **requeues** a render (it starts over as a new attempt: the steps
of the old attempt can no longer run, see steps.py) or **discards** it (it stays dead, its
entry leaves the list and its intermediate files are deleted). A discarded render keeps
its ``discarded_at`` time, so listing does not put it back.

Never commits: the request's (or the command's) transaction does; Redis and storage are
touched after the commit.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from typing import Any

import redis
from notefall.server.kit.db import after_commit
from notefall.server.kit.errors import NotFoundError, ProblemError
from notefall.server.kit.models import utcnow
from notefall.server.kit.settings import Settings
from notefall.server.storage.storage import Storage
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import events, keys, steps
from .models import Render
from .states import RenderStatus, StepName

log = logging.getLogger("notefall.server.renders.deadletters")


class NotDeadLetterError(ProblemError):
    status = HTTPStatus.CONFLICT
    code = "not_a_dead_letter"
    title = "Not in the dead-letter queue"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    render_id: uuid.UUID
    owner_id: uuid.UUID
    project_name: str
    queue: str
    attempt: int
    step: str | None
    reason: str
    error_code: str | None
    died_at: datetime | None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entries(client: redis.Redis) -> list[tuple[str, dict[str, Any]]]:
    """(raw entry, parsed) of every entry in the Redis list; raises RedisError."""
    raw: list[Any] = client.lrange(keys.DEAD_LETTERS, 0, -1)  # type: ignore[assignment]
    found = []
    for item in raw:
        text = _text(item)
        try:
            parsed = json.loads(text)
        except ValueError:
            continue
        if isinstance(parsed, dict) and "render_id" in parsed:
            found.append((text, parsed))
    return found


def _unlist(client: redis.Redis, render_id: uuid.UUID) -> None:
    """Remove every entry of the render from the Redis list (best effort)."""
    try:
        for text, parsed in _entries(client):
            if parsed.get("render_id") == str(render_id):
                client.lrem(keys.DEAD_LETTERS, 0, text)
    except redis.RedisError as error:
        log.warning("dead letter of render %s not removed from Redis: %s", render_id, error)


class DeadLetterService:
    def __init__(
        self,
        session: Session,
        settings: Settings,
        client: redis.Redis | None,
        storage: Storage,
        now: datetime,
    ) -> None:
        self.session = session
        self.settings = settings
        self.client = client
        self.storage = storage
        self.now = now

    def list(self) -> list[DeadLetter]:
        """Dead renders not discarded, oldest death first, with the reason Redis holds."""
        renders = self.session.scalars(
            select(Render)
            .where(Render.status == RenderStatus.DEAD.value)
            .order_by(Render.finished_at, Render.id)
        ).all()
        renders = [render for render in renders if render.discarded_at is None]
        listed: dict[str, dict[str, Any]] = {}
        redis_answers = self.client is not None
        if self.client is not None:
            try:
                for _text_entry, parsed in _entries(self.client):
                    listed[str(parsed["render_id"])] = parsed
            except redis.RedisError as error:
                log.warning("dead letters read from the database only: %s", error)
                redis_answers = False
        letters = []
        for render in renders:
            entry = listed.get(str(render.id))
            if entry is None:
                entry = self._relist(render) if redis_answers else {}
            letters.append(
                DeadLetter(
                    render_id=render.id,
                    owner_id=render.owner_id,
                    project_name=render.project_name,
                    queue=render.queue,
                    attempt=render.attempt,
                    step=entry.get("step"),
                    reason=str(entry.get("reason") or render.error_message or ""),
                    error_code=render.error_code,
                    died_at=render.finished_at,
                )
            )
        return letters

    def _relist(self, render: Render) -> dict[str, Any]:
        """Put a dead render the Redis list lost back into it."""
        reason = "listed again from the database (its Redis entry was missing)"
        entry = steps.dead_letter_entry(render, None, reason, render.finished_at or self.now)
        assert self.client is not None
        try:
            self.client.rpush(keys.DEAD_LETTERS, entry)
        except redis.RedisError as error:
            log.warning("dead letter of render %s not listed again: %s", render.id, error)
        parsed: dict[str, Any] = json.loads(entry)
        return parsed

    def _dead(self, render_id: uuid.UUID) -> Render:
        render = self.session.get(Render, render_id, with_for_update=True)
        if render is None:
            raise NotFoundError(
                "There is no render with this id; list the dead letters to see their ids."
            )
        if render.status != RenderStatus.DEAD.value or render.discarded_at is not None:
            state = "discarded" if render.discarded_at is not None else render.status
            raise NotDeadLetterError(
                f"This render is {state}, not waiting in the dead-letter queue; only the "
                "renders the dead-letter list shows can be requeued or discarded."
            )
        return render

    def requeue(self, render_id: uuid.UUID) -> Render:
        """Start the render over as a new attempt, from its prepare step."""
        render = self._dead(render_id)
        old_attempt = render.attempt
        render.attempt = old_attempt + 1
        render.status = RenderStatus.QUEUED.value
        render.stage = None
        render.percent = 0.0
        render.eta_seconds = None
        render.error_code = None
        render.error_message = None
        render.finished_at = None
        # The new attempt's time and ETA start now, not when the first one did.
        render.started_at = None
        render.heartbeat_at = None
        render.frame_count = None
        render.segment_count = None
        render.segments_done = 0
        step = steps.add_step(self.session, render, StepName.PREPARE)
        steps.publish_after_commit(self.session, self.settings, render, step, now=self.now)
        client, storage = self.client, self.storage

        def tidy() -> None:
            if client is not None:
                _unlist(client, render_id)
                # Progress events only move forward: the new attempt starts again from 0.
                with contextlib.suppress(redis.RedisError):
                    client.delete(
                        keys.progress_percent(render_id), keys.progress_throttle(render_id)
                    )
                events.publish(
                    client,
                    render_id,
                    "state",
                    status=RenderStatus.QUEUED.value,
                    percent=0.0,
                    message="An operator queued this render again; it starts over.",
                )
            _delete_work(storage, render_id, up_to_attempt=old_attempt)

        after_commit(self.session, tidy)
        return render

    def discard(self, render_id: uuid.UUID) -> Render:
        """Keep the render dead, take it off the list and delete its intermediate files."""
        render = self._dead(render_id)
        render.discarded_at = utcnow()
        attempt, client, storage = render.attempt, self.client, self.storage

        def tidy() -> None:
            if client is not None:
                _unlist(client, render_id)
            _delete_work(storage, render_id, up_to_attempt=attempt)

        after_commit(self.session, tidy)
        return render


def relist_missing(session: Session, client: redis.Redis) -> int:
    """Put every dead (not discarded) render missing from the Redis list back into it;
    returns how many (the reconciler calls this). Raises redis.RedisError."""
    listed = {str(parsed.get("render_id")) for _text_entry, parsed in _entries(client)}
    missing = [
        render
        for render in session.scalars(
            select(Render).where(Render.status == RenderStatus.DEAD.value)
        ).all()
        if render.discarded_at is None and str(render.id) not in listed
    ]
    reason = "listed again from the database (its Redis entry was missing)"
    for render in missing:
        entry = steps.dead_letter_entry(render, None, reason, render.finished_at or utcnow())
        client.rpush(keys.DEAD_LETTERS, entry)
    return len(missing)


def _delete_work(storage: Storage, render_id: uuid.UUID, *, up_to_attempt: int) -> None:
    """Delete the work folders (audio, segments) of attempts 1..up_to_attempt."""
    for attempt in range(1, up_to_attempt + 1):
        try:
            for key in list(storage.keys(keys.work_folder(render_id, attempt).rstrip("/"))):
                storage.delete(key)
        except (OSError, ProblemError):
            # The files are unreachable now; they are only waste, not a wrong result.
            log.warning("work files of render %s attempt %s not deleted", render_id, attempt)
