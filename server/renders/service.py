"""What users do with renders over HTTP: submit, look, cancel, download. Never commits.

Submitting checks everything a render needs before anything is written (settings, plan,
quota, concurrent renders, storage room), under a lock of the submitter's row so two
requests at once cannot both take the last slot; then it copies the inputs, writes the
render row and its prepare step, and publishes the step only once the transaction commits
(steps.publish_after_commit). A Redis that does not answer never fails a submit: the step
stays pending and the reconciler publishes it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import redis
from notefall.common.engine import get_theme
from notefall.common.errors import InputError, SettingsError
from notefall.common.midi import read_song
from notefall.common.settings import Codec, RenderSettings, settings_from_mapping
from notefall.common.tier_rules import apply_tier_rules, plan_defaults, plan_problems
from notefall.common.tiers import TierLimits, limits_for
from notefall.common.timeline import build_timeline
from notefall.server.accounts.models import User
from notefall.server.kit.db import after_commit
from notefall.server.kit.errors import NotFoundError
from notefall.server.kit.models import utcnow
from notefall.server.kit.settings import Settings
from notefall.server.kit.text import file_size
from notefall.server.profile.deletion import register_account_deleted_hook
from notefall.server.projects.errors import (
    ForbiddenForRoleError,
    InvalidSettingsError,
    UnreadableMidiError,
)
from notefall.server.projects.models import Project
from notefall.server.projects.service import Action, ProjectService
from notefall.server.storage.storage import Storage
from notefall.server.usage import UsageService
from notefall.server.usage.errors import StorageQuotaExceededError
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import events, keys, metrics, steps
from .errors import (
    IdempotencyKeyReusedError,
    InvalidIdempotencyKeyError,
    NotInPlanError,
    ProjectHasNoMidiError,
    RenderExpiredError,
    RenderFinishedError,
    RenderHasNoVideoError,
    RenderNotReadyError,
    RenderQuotaExceededError,
    TooManyConcurrentRendersError,
)
from .models import Render
from .queues import queue_for
from .repository import RenderFilter, RenderRepository
from .states import TERMINAL, RenderStatus, StepName

log = logging.getLogger("notefall.server.renders")

DOWNLOAD_LINK_LIFETIME = timedelta(minutes=15)
CANCEL_FLAG_TTL_SECONDS = 24 * 60 * 60
MAX_IDEMPOTENCY_KEY_LENGTH = 200
CANCELLED_MESSAGE = "You cancelled this render; nothing was charged."
_NOT_FOUND = "You have no render with this id."

# The storage room a render needs is estimated before it runs from the video's pixels per
# second: bits per pixel of each codec at the "standard" preset, scaled per preset, plus
# the audio. Falling notes on a plain background compress far better than film, so these
# are generous upper bounds rather than averages.
BITS_PER_PIXEL = {
    Codec.H264: 0.08,
    Codec.HEVC: 0.06,
    Codec.VP9: 0.06,
    Codec.AV1: 0.05,
    Codec.PRORES: 1.8,
    Codec.PRORES_4444: 2.7,
}
PRESET_SCALE = {"draft": 0.5, "standard": 1.0, "high": 1.5, "master": 2.5}
DEFAULT_AUDIO_KBITS = 192


class Outcome(StrEnum):
    CREATED = "created"  # a new render: 202
    REPLAYED = "replayed"  # the Idempotency-Key's render: 200
    DUPLICATE = "duplicate"  # an equal render already queued, running or kept: 200


@dataclass(frozen=True)
class Submitted:
    render: Render
    outcome: Outcome


@dataclass(frozen=True)
class RenderUsage:
    """This month's renders against the plan, for GET /api/v1/usage."""

    used: int
    limit: int | None
    running: int
    concurrent_limit: int
    resets_at: datetime


def period_of(now: datetime) -> str:
    """The month (UTC) whose quota a render submitted at ``now`` counts against."""
    return now.astimezone(UTC).strftime("%Y-%m")


def next_reset(now: datetime) -> datetime:
    """The first moment of next month, UTC: when the month's quota starts again."""
    now = now.astimezone(UTC)
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


def check_idempotency_key(key: str | None) -> str | None:
    """The key, or ``InvalidIdempotencyKeyError`` unless it is 1–200 visible ASCII characters."""
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH or not all(
        "\x21" <= c <= "\x7e" for c in key
    ):
        raise InvalidIdempotencyKeyError(
            f"An Idempotency-Key is 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} visible ASCII characters "
            "without spaces (a UUID is a good choice); send the request again with such a key, "
            "or without the header."
        )
    return key


def estimated_output_bytes(settings: RenderSettings, video_seconds: float) -> int:
    """How much storage the finished video is expected to take (see BITS_PER_PIXEL)."""
    width, height = settings.size
    bits_per_second = (
        width
        * height
        * settings.fps
        * BITS_PER_PIXEL[settings.video_codec]
        * PRESET_SCALE[settings.preset.value]
    )
    if not settings.no_audio:
        bits_per_second += (settings.audio_bitrate or DEFAULT_AUDIO_KBITS) * 1000
    return math.ceil(bits_per_second * video_seconds / 8)


def render_usage(session: Session, user: User, now: datetime) -> RenderUsage:
    limits = limits_for(user.tier)
    renders = RenderRepository(session)
    return RenderUsage(
        used=renders.count_counted(user.id, period_of(now)),
        limit=limits.renders_per_month,
        running=renders.count_active(user.id),
        concurrent_limit=limits.concurrent_renders,
        resets_at=next_reset(now),
    )


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def fingerprint_of(midi_sha256: str, audio_sha256: str | None, settings: dict[str, Any]) -> str:
    """Equal for renders that would produce the same video: song, recording, settings."""
    return _sha256(f"{midi_sha256}\n{audio_sha256 or ''}\n{_canonical(settings)}")


def _checked_settings(mapping: dict[str, Any]) -> RenderSettings:
    """As the projects domain validates settings: the schema, the theme, and no file paths."""
    try:
        settings = settings_from_mapping(mapping)
        get_theme(settings.theme)  # the schema takes any name; the engine does not
    except SettingsError as error:
        raise InvalidSettingsError(error.message) from None
    if paths := settings.input_paths():
        raise InvalidSettingsError(
            f"{', '.join(sorted(paths))}: files on the server cannot be named in settings; "
            "leave the field out."
        )
    return settings


@dataclass(frozen=True)
class _Plan:
    """What a submit will write, worked out before any lock is taken."""

    project: Project
    settings: RenderSettings
    settings_json: dict[str, Any]
    fingerprint: str
    audio_key: str | None
    audio_sha256: str | None
    estimated_bytes: int


class RenderService:
    def __init__(
        self,
        session: Session,
        storage: Storage,
        settings: Settings,
        redis_client: redis.Redis | None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.session = session
        self.storage = storage
        self.settings = settings
        self.redis = redis_client
        self.clock = clock
        self.renders = RenderRepository(session)
        self.projects = ProjectService(session, storage, settings.max_midi_bytes)
        self.usage = UsageService(session)

    @property
    def upgrade_url(self) -> str:
        return f"{self.settings.public_url}/billing"

    # Submitting ----------------------------------------------------------------------------

    def submit(
        self,
        user: User,
        project_id: uuid.UUID,
        request_settings: dict[str, Any] | None,
        idempotency_key: str | None = None,
    ) -> Submitted:
        key = check_idempotency_key(idempotency_key)
        request_sha256 = _sha256(
            _canonical({"project_id": str(project_id), "settings": request_settings or {}})
        )
        if key is not None and (replay := self._replay(user, key, request_sha256)) is not None:
            return replay
        plan = self._plan(user, project_id, request_settings or {})
        now = self.clock()
        self._lock_owner(user)
        # Under the lock: what a concurrent submit of the same owner wrote is visible now.
        if key is not None and (replay := self._replay(user, key, request_sha256)) is not None:
            return replay
        duplicate = self.renders.equal_render(user.id, plan.project.id, plan.fingerprint, now)
        if duplicate is not None:
            return Submitted(duplicate, Outcome.DUPLICATE)
        limits = limits_for(user.tier)
        self._check_quota(user, limits, now)
        self._check_concurrency(user, limits)
        self._check_storage(user, limits, plan.estimated_bytes)
        render_id = uuid.uuid4()
        render = Render(
            id=render_id,
            owner_id=user.id,
            project_id=plan.project.id,
            project_name=plan.project.name,
            status=RenderStatus.QUEUED.value,
            percent=0.0,
            tier=str(limits.tier),
            queue=queue_for(limits.tier),
            settings=plan.settings_json,
            fingerprint=plan.fingerprint,
            midi_sha256=plan.project.midi_sha256,
            audio_sha256=plan.audio_sha256,
            input_midi_key=keys.input_midi(render_id),
            input_audio_key=keys.input_audio(render_id) if plan.audio_key else None,
            idempotency_key=key,
            request_sha256=request_sha256 if key is not None else None,
            period=period_of(now),
            attempt=1,
            segments_done=0,
        )
        copies = self._copy_inputs(plan, render)
        try:
            with self.session.begin_nested():
                self.renders.add(render)
        except IntegrityError:
            # The same new Idempotency-Key in two requests at once: the unique constraint
            # lets one row in; the other request answers with it.
            self._delete_quietly(copies)
            winner = self.renders.by_idempotency_key(user.id, key) if key else None
            if winner is not None:
                return self._replayed(winner, request_sha256)
            if self.session.get(Project, plan.project.id, populate_existing=True) is None:
                # Its owner deleted the project while this request was checking it.
                raise NotFoundError("You have no project with this id.") from None
            raise
        step = steps.add_step(self.session, render, StepName.PREPARE)
        steps.publish_after_commit(self.session, self.settings, render, step, now=now)
        self._publish_after_commit(render, "Queued; a worker will start it shortly.")
        return Submitted(render, Outcome.CREATED)

    def _replay(self, user: User, key: str, request_sha256: str) -> Submitted | None:
        render = self.renders.by_idempotency_key(user.id, key)
        return None if render is None else self._replayed(render, request_sha256)

    def _replayed(self, render: Render, request_sha256: str) -> Submitted:
        if render.request_sha256 != request_sha256:
            raise IdempotencyKeyReusedError(
                f"This Idempotency-Key was first used for another request (render "
                f"{render.id}); use a new key for a different project or settings."
            )
        return Submitted(render, Outcome.REPLAYED)

    def _plan(self, user: User, project_id: uuid.UUID, overrides: dict[str, Any]) -> _Plan:
        project = self._renderable_project(user, project_id)
        if project.midi_key is None or project.midi_sha256 is None:
            raise ProjectHasNoMidiError(
                f"The project {project.name!r} has no MIDI file yet; upload one "
                f"(PUT /api/v1/projects/{project.id}/midi), then submit the render again."
            )
        _checked_settings(overrides)  # the request's own fields: unknown ones and paths
        limits = limits_for(user.tier)
        given = {**project.settings, **overrides}
        # What the user left unset takes the best the plan renders, so a Free user's first
        # render is not refused for a 1080p default they never asked for.
        settings = _checked_settings({**plan_defaults(given, limits), **given})
        try:
            song = read_song(self.storage.get(project.midi_key))
        except InputError as error:
            raise UnreadableMidiError(error) from None
        try:
            video_seconds = build_timeline(song, settings).duration
        except SettingsError as error:
            raise InvalidSettingsError(error.message) from None
        problems = plan_problems(settings, limits, video_seconds)
        if problems:
            raise NotInPlanError(problems[0].code, problems[0].message, self.upgrade_url)
        settings = apply_tier_rules(settings, limits, video_seconds)
        settings_json = settings.model_dump(mode="json")
        # The project's recording is the render's sound unless the settings ask for silence.
        use_audio = project.audio_key is not None and not settings.no_audio
        audio_sha256 = project.audio_sha256 if use_audio else None
        return _Plan(
            project=project,
            settings=settings,
            settings_json=settings_json,
            fingerprint=fingerprint_of(project.midi_sha256, audio_sha256, settings_json),
            audio_key=project.audio_key if use_audio else None,
            audio_sha256=audio_sha256,
            estimated_bytes=estimated_output_bytes(settings, video_seconds),
        )

    def _renderable_project(self, user: User, project_id: uuid.UUID) -> Project:
        """The project, if ``user`` may render it: its owner or an editor. Anyone else gets
        the projects domain's own answers (404 as for a missing project; 403 to a viewer)."""
        try:
            return self.projects.access(user, project_id, Action.EDIT)
        except ForbiddenForRoleError:
            raise ForbiddenForRoleError(
                "As a viewer of this project you cannot render it; ask its owner to make you "
                "an editor."
            ) from None

    def _lock_owner(self, user: User) -> None:
        """Hold the submitter's row until the transaction ends, so the counts read next stay
        true (the UsageService._lock way). SQLite has no row locks, but every transaction
        there holds the single writer's lock from its BEGIN IMMEDIATE (kit/db.py)."""
        if self.session.get_bind().dialect.name != "sqlite":
            self.session.execute(select(User.id).where(User.id == user.id).with_for_update())

    def _check_quota(self, user: User, limits: TierLimits, now: datetime) -> None:
        if limits.renders_per_month is None:
            return
        used = self.renders.count_counted(user.id, period_of(now))
        if used >= limits.renders_per_month:
            resets_at = next_reset(now)
            raise RenderQuotaExceededError(
                f"You have used {used} of the {limits.renders_per_month} renders your "
                f"{limits.title} plan includes this month; the quota starts again on "
                f"{resets_at:%B} 1. Failed and cancelled renders do not count. Upgrade your "
                f"plan to render more now: {self.upgrade_url}",
                self.upgrade_url,
                limit=limits.renders_per_month,
                used=used,
                resets_at=resets_at.isoformat(),
            )

    def _check_concurrency(self, user: User, limits: TierLimits) -> None:
        running = self.renders.count_active(user.id)
        if running >= limits.concurrent_renders:
            plural = "render" if limits.concurrent_renders == 1 else "renders"
            raise TooManyConcurrentRendersError(
                f"You have {running} {plural} queued or running, the most your {limits.title} "
                f"plan runs at once ({limits.concurrent_renders}); wait for one to finish or "
                f"cancel one (POST /api/v1/renders/<render id>/cancel), or upgrade your plan: "
                f"{self.upgrade_url}",
                self.upgrade_url,
                limit=limits.concurrent_renders,
                running=running,
            )

    def _check_storage(self, user: User, limits: TierLimits, estimated: int) -> None:
        used = self.usage.stored_bytes(user.id)
        if used + estimated > limits.storage_quota_bytes:
            error = StorageQuotaExceededError(
                f"This render's video needs about {file_size(estimated)} (estimated from its "
                f"resolution, frame rate, preset and length), and you use {file_size(used)} of "
                f"the {file_size(limits.storage_quota_bytes)} your {limits.title} plan "
                "includes. Delete renders, projects or files you no longer need, render a "
                f"shorter or smaller video, or upgrade your plan: {self.upgrade_url}"
            )
            error.members = {
                "upgrade_url": self.upgrade_url,
                "limit": limits.storage_quota_bytes,
                "used": used,
                "needed": estimated,
            }
            raise error

    def _copy_inputs(self, plan: _Plan, render: Render) -> list[str]:
        """Copies of the project's files, so later uploads do not change this render; deleted
        again if the transaction that names them rolls back."""
        copied: list[str] = []

        def on_rollback(_session: Session) -> None:
            # Only a rollback of the database transaction fires this (a committed one ends
            # without it), so the copies go exactly when no row will ever name them.
            self._delete_quietly(copied)

        event.listen(self.session, "after_rollback", on_rollback)
        assert plan.project.midi_key is not None
        copied.append(render.input_midi_key)
        self.storage.copy(plan.project.midi_key, render.input_midi_key)
        if plan.audio_key is not None and render.input_audio_key is not None:
            copied.append(render.input_audio_key)
            self.storage.copy(plan.audio_key, render.input_audio_key)
        return copied

    def _delete_quietly(self, files: list[str]) -> None:
        for key in files:
            try:
                self.storage.delete(key)
            except Exception:  # a leftover copy is harmless: no row names it
                log.warning("could not delete %s after a submit that did not happen", key)

    def _publish_after_commit(self, render: Render, message: str) -> None:
        client, render_id = self.redis, render.id
        status, stage, code = render.status, render.stage, render.error_code
        percent = render.percent
        if client is None:
            return
        after_commit(
            self.session,
            lambda: events.publish(
                client,
                render_id,
                "state",
                status=status,
                stage=stage,
                percent=percent,
                message=message,
                error_code=code,
            ),
        )

    # Reading -------------------------------------------------------------------------------

    def get(self, user: User, render_id: uuid.UUID) -> Render:
        """One of ``user``'s renders; anyone else's is answered like a missing one."""
        render = self.renders.get(render_id)
        if render is None or render.owner_id != user.id:
            raise NotFoundError(_NOT_FOUND)
        return render

    def page_of(
        self, user: User, where: RenderFilter, limit: int, offset: int
    ) -> tuple[list[Render], int]:
        return self.renders.page_of(where, limit, offset, owner_id=user.id)

    def project_history(
        self, user: User, project_id: uuid.UUID, where: RenderFilter, limit: int, offset: int
    ) -> tuple[list[Render], int]:
        """The project's renders: everyone's for its owner, your own for a collaborator."""
        project = self.projects.access(user, project_id, Action.READ)
        where = RenderFilter(project_id=project.id, statuses=where.statuses)
        owner_id = None if project.owner_id == user.id else user.id
        return self.renders.page_of(where, limit, offset, owner_id=owner_id)

    def usage_of(self, user: User) -> RenderUsage:
        return render_usage(self.session, user, self.clock())

    # Cancelling ----------------------------------------------------------------------------

    def cancel(self, user: User, render_id: uuid.UUID) -> Render:
        """Queued or running: cancelled now, and the running steps told through Redis."""
        render = self.get(user, render_id)
        # The writer's lock first (on SQLite a transaction that read cannot start writing
        # while a worker writes), then the row, locked and read afresh: a worker may have
        # just finished it.
        self._lock_owner(user)
        self.session.get(Render, render.id, with_for_update=True, populate_existing=True)
        status = RenderStatus(render.status)
        if status is RenderStatus.CANCELLED:
            return render
        if status in TERMINAL:
            raise RenderFinishedError(
                f"This render already {_ENDED[status]}, so there is nothing to cancel; "
                + (
                    "download it or delete what you no longer need."
                    if status is RenderStatus.SUCCEEDED
                    else "submit it again if you still want the video."
                )
            )
        now = self.clock()
        ended = steps.fail_render(
            self.session,
            render.id,
            render.attempt,
            RenderStatus.CANCELLED,
            "cancelled",
            CANCELLED_MESSAGE,
            now=now,
        )
        if ended is None:  # cannot happen: the row is locked above and not terminal
            raise RenderFinishedError("This render has already ended; there is nothing to cancel.")
        render.cancel_requested_at = now
        self.session.flush()
        client, flag = self.redis, keys.cancel_flag(render.id)

        def raise_flag() -> None:
            if client is None:
                return
            metrics.record_outcome(client, "cancelled")  # best-effort, never raises
            try:
                client.set(flag, "1", ex=CANCEL_FLAG_TTL_SECONDS)
            except redis.RedisError:
                # Running steps also see the row cancelled at their next heartbeat.
                log.warning("cancel flag of render %s not set: Redis does not answer", render_id)

        after_commit(self.session, raise_flag)
        self._publish_after_commit(render, CANCELLED_MESSAGE)
        return render

    # Files ---------------------------------------------------------------------------------

    def download_url(self, user: User, render_id: uuid.UUID) -> str:
        render = self.get(user, render_id)
        key = self._kept_file(render, render.output_key, "video")
        extension = render.format or key.rsplit(".", 1)[-1]
        return self.storage.signed_url(
            key, DOWNLOAD_LINK_LIFETIME, f"{render.project_name}.{extension}"
        )

    def thumbnail_url(self, user: User, render_id: uuid.UUID) -> str:
        render = self.get(user, render_id)
        key = self._kept_file(render, render.thumbnail_key, "thumbnail")
        return self.storage.signed_url(key, DOWNLOAD_LINK_LIFETIME)

    def _kept_file(self, render: Render, key: str | None, what: str) -> str:
        status = RenderStatus(render.status)
        if status in (RenderStatus.QUEUED, RenderStatus.RUNNING):
            raise RenderNotReadyError(
                f"This render is {status} ({render.percent:.0f}% done); its {what} is ready "
                "once it has succeeded. Watch it at "
                f"/api/v1/renders/{render.id}/events or ask again later."
            )
        if status is not RenderStatus.SUCCEEDED:
            raise RenderHasNoVideoError(
                f"This render {_ENDED[status]}, so it has no {what}; submit it again "
                "(POST /api/v1/renders)."
            )
        expired = render.expires_at is not None and render.expires_at <= self.clock()
        if expired:
            raise RenderExpiredError(
                f"The {what} of this render was deleted on {render.expires_at:%Y-%m-%d}, when "
                "your plan's retention ended; submit the render again (POST /api/v1/renders) "
                "to make it anew."
            )
        if key is None or not self.storage.exists(key):
            # Not the plan's retention: the file is missing (a storage fault, an operator).
            raise RenderExpiredError(
                f"The {what} of this render is no longer stored; submit the render again "
                "(POST /api/v1/renders) to make it anew, and tell us if this keeps happening."
            )
        return key


_ENDED = {
    RenderStatus.SUCCEEDED: "succeeded",
    RenderStatus.FAILED: "failed",
    RenderStatus.CANCELLED: "was cancelled",
    RenderStatus.DEAD: "failed again and again and was set aside",
}


def render_files(session: Session, _settings: Settings, user: User) -> Iterable[str]:
    """Every file of ``user``'s renders the rows know of: inputs, video, thumbnail and the
    work files of unfinished attempts (deleted with the account)."""
    renders = RenderRepository(session)
    owned = renders.owned_by(user.id)
    files: list[str] = []
    for render in owned:
        files += [
            key
            for key in (
                render.input_midi_key,
                render.input_audio_key,
                render.output_key,
                render.thumbnail_key,
            )
            if key
        ]
        files += [keys.prepared_audio(render.id, a) for a in range(1, render.attempt + 1)]
    files += renders.step_output_keys([render.id for render in owned])
    return list(dict.fromkeys(files))


register_account_deleted_hook(render_files)
