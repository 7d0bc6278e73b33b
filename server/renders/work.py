"""One delivery of one render step: claim it, run it under supervision, record the outcome.

``run_delivery`` is what the Celery task calls; it never raises (the database is the
state, so the message is always acknowledged). The steps (``steps.py`` has the lease
rules every one of them follows):

- prepare: read the MIDI, re-apply the owner's plan, make the soundtrack once, plan the
  segments and publish them;
- segment: draw and encode one range of frames; the segment that completes last (under
  the render row's lock) publishes the join;
- join: concatenate the segments, mux the audio, store the video and its metadata;
- thumbnail: a JPEG still at a third of the video;
- finalize: the render succeeded; charge its files, delete what it no longer needs,
  tell the owner.

Every step is idempotent per (render, attempt): its outputs go to fixed keys that a
re-run overwrites, and what it adds to the database happens in the one transaction that
completes it, so a crash before that commit leaves nothing behind but files a re-run
replaces.
"""

from __future__ import annotations

import logging
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Collection
from contextlib import closing
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from notefall.common.audio import prepare_audio
from notefall.common.errors import SettingsError
from notefall.common.midi import read_song
from notefall.common.pipeline import render_video, require_notes
from notefall.common.progress import CancelToken, ProgressEvent
from notefall.common.settings import RenderSettings, settings_from_mapping
from notefall.common.song import Song
from notefall.common.tier_rules import apply_tier_rules
from notefall.common.tiers import limits_for
from notefall.common.timeline import build_timeline
from notefall.common.video.ffmpeg import probe
from notefall.common.video.process import EncodeProgress, FFmpegJob
from notefall.common.video.segments import join_segments, segment_frame_ranges
from notefall.server.accounts.models import User
from notefall.server.kit.db import after_commit, transaction_scope
from notefall.server.kit.models import utcnow
from notefall.server.kit.settings import Settings
from notefall.server.usage.service import UsageService, charge_file
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from . import events, keys, metrics, steps
from .failures import Kind, classify
from .models import Render, RenderStep
from .notices import notify_failed, notify_finished
from .runtime import Runtime
from .states import STAGE_OF_STEP, RenderStatus, StepName, StepStatus
from .supervision import Supervisor

log = logging.getLogger("notefall.server.renders")

T = TypeVar("T")

# A transaction that meets a busy or briefly unreachable database is tried again this
# many times (SQLite answers "database is locked" under contention; PostgreSQL may be
# failing over) before the step falls back to the ordinary retry path.
DB_ATTEMPTS = 5
THUMBNAIL_WIDTH = 640
CHUNK = 1024 * 1024


class LeaseLost(Exception):
    """The step's lease no longer holds (the render ended, or the step was taken back)."""


# Running a delivery --------------------------------------------------------------------------


@dataclass
class RenderInfo:
    """What a step needs of its render, read when it is claimed (no session kept open)."""

    id: uuid.UUID
    attempt: int
    owner_id: uuid.UUID
    owner_tier: str
    project_name: str
    settings: dict[str, Any]
    input_midi_key: str
    input_audio_key: str | None
    segment_count: int | None
    first_frame: int | None
    last_frame: int | None
    started_at: Any = None


@dataclass
class StepRun:
    rt: Runtime
    lease: steps.Lease
    render: RenderInfo
    cancel: CancelToken
    watch: Supervisor
    workdir: Path
    label: str
    worker: str


def run_delivery(rt: Runtime, ref: steps.StepRef) -> str:
    """Run one delivery of ``ref``; answers what happened (for the worker's log)."""
    try:
        return _run(rt, ref)
    except Exception:
        # Only a broken database or storage during the bookkeeping itself ends up here:
        # the step stays as the database says, and the reconciler publishes it again.
        log.exception(
            "render step %s:%s of %s could not be run", ref.name, ref.index, ref.render_id
        )
        return "error"


def _run(rt: Runtime, ref: steps.StepRef) -> str:
    worker = steps.worker_name()
    claimed = _in_transaction(rt, lambda session: _claim(session, rt, ref, worker))
    if claimed is None:
        _clean_up_if_ended(rt, ref.render_id, ref.attempt)
        return "skipped"
    lease, info, started = claimed
    label = step_label(lease, info.segment_count)
    if started:
        events.publish(
            rt.redis, lease.render_id, "state", status=RenderStatus.RUNNING.value,
            stage=STAGE_OF_STEP[lease.name], percent=0.0, message="Your render has started.",
        )  # fmt: skip
    if steps.over_delivery_limit(rt.settings, lease):
        return _send_to_dead_letters(rt, lease, label)
    _log_event(rt, lease, worker, f"{label} started on {worker}")
    cancel = CancelToken()
    watch = Supervisor(rt, lease, cancel)
    try:
        with watch, tempfile.TemporaryDirectory(prefix="notefall-step-") as workdir:
            run = StepRun(rt, lease, info, cancel, watch, Path(workdir), label, worker)
            IMPLEMENTATIONS[lease.name](run)
    except LeaseLost:
        _log_event(rt, lease, worker, f"{label} stopped on {worker}: {_why_ended(rt, lease)}")
        _clean_up_if_ended(rt, lease.render_id, lease.attempt)
        return "lost"
    except Exception as error:
        return _failed(rt, lease, worker, label, error, watch.reason)
    if lease.name is not StepName.FINALIZE:  # finalize logs it before the render's last event
        _log_event(rt, lease, worker, f"{label} finished on {worker}")
    return "done"


def step_label(lease: steps.Lease | steps.StepRef, segment_count: int | None) -> str:
    if lease.name is StepName.SEGMENT:
        return f"segment {lease.index + 1} of {segment_count or '?'}"
    return lease.name.value


def _log_event(rt: Runtime, lease: steps.Lease, worker: str, message: str, **extra: str) -> None:
    fields = {
        "worker": worker,
        "step": f"{lease.name.value}:{lease.index}",
        "deliveries": str(lease.deliveries),
        **extra,
    }
    events.publish(
        rt.redis, lease.render_id, "log", status=RenderStatus.RUNNING.value,
        stage=STAGE_OF_STEP[lease.name], message=message, fields=fields,
    )  # fmt: skip


def _claim(
    session: Session, rt: Runtime, ref: steps.StepRef, worker: str
) -> tuple[steps.Lease, RenderInfo, bool] | None:
    steps.lock_render(session, ref.render_id)
    now = utcnow()
    lease = steps.claim(session, rt.settings, ref, worker=worker, now=now)
    if lease is None:
        return None
    render = session.get(Render, ref.render_id)
    assert render is not None  # claim found it, under its lock
    owner = session.get(User, render.owner_id)
    step = session.get(RenderStep, lease.step_id)
    assert step is not None
    info = RenderInfo(
        id=render.id,
        attempt=render.attempt,
        owner_id=render.owner_id,
        owner_tier=owner.tier if owner is not None else render.tier,
        project_name=render.project_name,
        settings=dict(render.settings),
        input_midi_key=render.input_midi_key,
        input_audio_key=render.input_audio_key,
        segment_count=render.segment_count,
        first_frame=step.first_frame,
        last_frame=step.last_frame,
        started_at=render.started_at,
    )
    return lease, info, render.started_at == now


def _in_transaction(rt: Runtime, work: Callable[[Session], T]) -> T:
    """``work`` in its own transaction, tried again when the database is busy."""
    delay = 0.1
    for attempt in range(1, DB_ATTEMPTS + 1):
        try:
            with transaction_scope(rt.database) as session:
                return work(session)
        except OperationalError:
            if attempt == DB_ATTEMPTS:
                raise
            log.warning("database busy or unreachable; trying again in %.1f s", delay)
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


def _finish(
    run: StepRun,
    then: Callable[[Session, Render], object] | None = None,
    *,
    lock_owner: bool = False,
) -> None:
    """Complete the step and, in the same transaction, record what comes next."""
    output_key = _segment_key(run) if run.lease.name is StepName.SEGMENT else None
    owner_id = run.render.owner_id if lock_owner else None
    run.cancel.raise_if_cancelled()
    _in_transaction(
        run.rt, lambda session: complete_step(session, run.lease, output_key, then, owner_id)
    )


def complete_step(
    session: Session,
    lease: steps.Lease,
    output_key: str | None = None,
    then: Callable[[Session, Render], object] | None = None,
    owner_id: uuid.UUID | None = None,
) -> None:
    """Lock the render, complete the step (``LeaseLost`` when the lease no longer holds
    it), then ``then(session, render)`` in the same transaction.

    ``owner_id``: lock the owner's row before the render's, as the API's cancel does, for
    a ``then`` that charges storage (which locks the owner): the other order could
    deadlock with a cancel on PostgreSQL (SQLite has one writer and needs no row lock).
    """
    if owner_id is not None and session.get_bind().dialect.name != "sqlite":
        session.execute(select(User.id).where(User.id == owner_id).with_for_update())
    steps.lock_render(session, lease.render_id)
    if steps.complete(session, lease, output_key=output_key) is None:
        raise LeaseLost()
    render = session.get(Render, lease.render_id)
    assert render is not None
    if then is not None:
        then(session, render)


# Failures ------------------------------------------------------------------------------------


def _why_ended(rt: Runtime, lease: steps.Lease) -> str:
    status = _status_of(rt, lease.render_id)
    if status is RenderStatus.CANCELLED:
        return "its render was cancelled"
    return "its render ended" if status is not RenderStatus.RUNNING else "its lease was lost"


def _failed(
    rt: Runtime,
    lease: steps.Lease,
    worker: str,
    label: str,
    error: Exception,
    cancel_reason: str | None,
) -> str:
    failure = classify(error)
    # Once the step was told to stop, whatever it raises is that stop: killing FFmpeg can
    # surface as a broken pipe or "FFmpeg stopped" before the engine sees the cancel.
    if failure.kind is Kind.CANCELLED or cancel_reason is not None:
        status = _status_of(rt, lease.render_id)
        if cancel_reason == "cancel flag" or status is RenderStatus.CANCELLED:
            why = "its render was cancelled"
        elif status is not None and status is not RenderStatus.RUNNING:
            why = f"its render is {status.value}"
        else:
            why = "another worker took it over"
        _log_event(rt, lease, worker, f"{label} stopped on {worker}: {why}")
        _clean_up_if_ended(rt, lease.render_id, lease.attempt)
        return "cancelled"
    if failure.kind is Kind.PERMANENT:
        return _fail_render(rt, lease, worker, label, failure.code, failure.message)
    if failure.expected:
        log.warning("%s of render %s failed: %s", label, lease.render_id, failure.message)
    else:
        log.error("%s of render %s failed", label, lease.render_id, exc_info=error)
    delay = steps.retry_delay(rt.settings, lease.deliveries, random.random())

    released = {"yes": False}

    def announce() -> None:
        if released["yes"]:
            _log_event(
                rt, lease, worker,
                f"{label} failed on {worker}: {failure.message}, retrying in {delay:.1f} s",
                retry_in=f"{delay:.4f}",
            )  # fmt: skip

    def release(session: Session) -> bool:
        # Registered before release_for_retry registers the retry's message (after-commit
        # actions run in order): the log says "failed" before another worker can say
        # "started" for the same step.
        after_commit(session, announce)
        steps.lock_render(session, lease.render_id)
        step = steps.release_for_retry(session, rt.settings, lease, failure.message, delay)
        released["yes"] = step is not None
        return released["yes"]

    if not _in_transaction(rt, release):
        _log_event(rt, lease, worker, f"{label} stopped on {worker}: {_why_ended(rt, lease)}")
        _clean_up_if_ended(rt, lease.render_id, lease.attempt)
        return "lost"
    metrics.record_retry(rt.redis)
    return "retry"


def _fail_render(
    rt: Runtime, lease: steps.Lease, worker: str, label: str, code: str, message: str
) -> str:
    def fail(session: Session) -> bool:
        steps.lock_render(session, lease.render_id)
        render = steps.fail_render(
            session, lease.render_id, lease.attempt, RenderStatus.FAILED, code, message
        )
        if render is None:
            return False
        notify_failed(session, rt.settings, render)
        return True

    ended_now = _in_transaction(rt, fail)
    _log_event(rt, lease, worker, f"{label} failed on {worker}: {message}")
    if ended_now:
        events.publish(
            rt.redis, lease.render_id, "state", status=RenderStatus.FAILED.value,
            message=message, error_code=code,
        )  # fmt: skip
        metrics.record_outcome(rt.redis, RenderStatus.FAILED.value)
    _clean_up_if_ended(rt, lease.render_id, lease.attempt)
    return "failed"


def _send_to_dead_letters(rt: Runtime, lease: steps.Lease, label: str) -> str:
    ref = steps.StepRef(lease.render_id, lease.attempt, lease.name, lease.index)

    def bury(session: Session) -> tuple[str, str] | None:
        steps.lock_render(session, lease.render_id)
        step = session.get(RenderStep, lease.step_id)
        last_error = (step.error if step is not None else None) or "no error recorded"
        reason = f"{label} was delivered {lease.deliveries} times; last error: {last_error}"
        render = steps.send_to_dead_letters(
            session, rt.redis, lease.render_id, lease.attempt, ref, reason
        )
        if render is None:
            return None
        notify_failed(session, rt.settings, render)
        return render.error_code or "render_dead", render.error_message or ""

    ended = _in_transaction(rt, bury)
    if ended is not None:
        code, message = ended
        events.publish(
            rt.redis, lease.render_id, "state", status=RenderStatus.DEAD.value,
            message=message, error_code=code,
        )  # fmt: skip
        metrics.record_outcome(rt.redis, RenderStatus.DEAD.value)
    _clean_up_if_ended(rt, lease.render_id, lease.attempt)
    return "dead"


def _status_of(rt: Runtime, render_id: uuid.UUID) -> RenderStatus | None:
    try:
        with transaction_scope(rt.database) as session:
            status = session.scalar(select(Render.status).where(Render.id == render_id))
    except Exception:
        return None
    return None if status is None else RenderStatus(status)


def _clean_up_if_ended(rt: Runtime, render_id: uuid.UUID, attempt: int) -> None:
    """Delete what a render that ended (or an attempt that was replaced) left in storage
    beyond its video and thumbnail. Every step that stops for that reason calls it after its own last
    write, so whichever stops last leaves storage clean.

    Cancelled and failed renders lose everything, their input copies included (they cannot
    be run again); a dead render keeps its inputs, because an operator may requeue it.
    """
    try:
        with transaction_scope(rt.database) as session:
            render = session.get(Render, render_id)
            status = None if render is None else RenderStatus(render.status)
            current = None if render is None else render.attempt
        if render is not None and current != attempt:
            _delete_folder(rt, keys.work_folder(render_id, attempt))
            return
        if status is None or status in (RenderStatus.CANCELLED, RenderStatus.FAILED):
            _delete_folder(rt, keys.render_folder(render_id))
        elif status is RenderStatus.SUCCEEDED:
            # A late copy of a step (its holder was presumed lost) may write after finalize
            # cleaned up: keep only the video and the thumbnail.
            assert render is not None
            _delete_folder(
                rt, keys.render_folder(render_id), keep={render.output_key, render.thumbnail_key}
            )
        elif status is RenderStatus.DEAD:
            keep = {keys.input_midi(render_id), keys.input_audio(render_id)}
            _delete_folder(rt, keys.render_folder(render_id), keep=keep)
    except Exception:
        # Files left behind cost storage, not correctness; the next step that stops (or
        # the reconciler's next message for this render) tries again.
        log.warning("clean-up of render %s failed", render_id, exc_info=True)


def _delete_folder(rt: Runtime, folder: str, keep: Collection[str | None] = ()) -> None:
    """Delete every file under ``folder`` except those in ``keep``."""
    for key in list(rt.storage.keys(folder.rstrip("/"))):
        if key not in keep:
            rt.storage.delete(key)


# Helpers for the steps -----------------------------------------------------------------------


def _download(rt: Runtime, key: str, path: Path) -> Path:
    with closing(rt.storage.open(key)) as source, path.open("wb") as target:
        shutil.copyfileobj(source, target, CHUNK)
    return path


def _upload(rt: Runtime, path: Path, key: str) -> None:
    with path.open("rb") as source:
        rt.storage.put(key, source)


def cloud_settings(data: dict[str, Any]) -> RenderSettings:
    """The stored settings as the engine takes them on a worker: no paths on this machine.

    The recording comes from the render's input copy, never from a path in the settings;
    SoundFonts and background images are files on the user's computer, which the cloud
    does not have.
    """
    settings = settings_from_mapping({**data, "audio": None})
    if settings.soundfont or settings.background_image:
        raise SettingsError(
            "Custom SoundFonts and background images are not available for cloud renders; "
            "remove them from the settings and render again, or render on your computer.",
            code="unsupported_setting",
        )
    return settings


def _song(run: StepRun) -> Song:
    data = run.rt.storage.get(run.render.input_midi_key)
    song = read_song(data, name=run.render.project_name)
    require_notes(song)
    return song


def _segment_key(run: StepRun) -> str:
    fmt = str(run.render.settings.get("format", "mp4"))
    return keys.segment(run.render.id, run.render.attempt, run.lease.index, fmt)


def _publish(session: Session, run: StepRun, render: Render, step: RenderStep) -> None:
    steps.publish_after_commit(session, run.rt.settings, render, step)


def _engine_progress(run: StepRun, start: float, share: float) -> Callable[[ProgressEvent], None]:
    def on_progress(event: ProgressEvent) -> None:
        run.watch.fraction = start + share * event.overall_percent / 100.0

    return on_progress


# The steps -----------------------------------------------------------------------------------


def prepare(run: StepRun) -> None:
    song = _song(run)
    run.watch.fraction = 0.05
    requested = cloud_settings(run.render.settings)
    timeline = build_timeline(song, requested)
    # The owner's plan as it is now, whatever the row says: a hand-edited row or a client
    # that skipped the API still gets its plan's watermark and caps.
    settings = apply_tier_rules(requested, limits_for(run.render.owner_tier), timeline.duration)
    audio_settings = settings
    if run.render.input_audio_key and not settings.no_audio and not settings.soundfont:
        recording = _download(run.rt, run.render.input_audio_key, run.workdir / "recording")
        audio_settings = settings.model_copy(update={"audio": str(recording)})
    run.watch.fraction = 0.1
    wav = prepare_audio(
        song, audio_settings, timeline, run.workdir / "audio", cancel=run.cancel,
        on_progress=lambda f: setattr(run.watch, "fraction", 0.1 + 0.8 * f),
    )  # fmt: skip
    if wav is not None:
        _upload(run.rt, wav, keys.prepared_audio(run.render.id, run.render.attempt))
    ranges = segment_frame_ranges(
        timeline.frame_count, settings.fps, run.rt.settings.render_segment_seconds
    )

    def plan(session: Session, render: Render) -> None:
        # What every later step renders: the plan applied here, once.
        render.settings = settings.model_dump(mode="json")
        render.frame_count = timeline.frame_count
        render.segment_count = len(ranges)
        render.segments_done = 0
        existing = set(
            session.scalars(
                select(RenderStep.index).where(
                    RenderStep.render_id == render.id,
                    RenderStep.attempt == render.attempt,
                    RenderStep.name == StepName.SEGMENT.value,
                )
            )
        )
        for index, (first, last) in enumerate(ranges):
            if index in existing:
                continue
            step = steps.add_step(
                session, render, StepName.SEGMENT, index, first_frame=first, last_frame=last
            )
            _publish(session, run, render, step)

    _finish(run, plan)


def segment(run: StepRun) -> None:
    first, last = run.render.first_frame, run.render.last_frame
    assert first is not None and last is not None  # prepare gives every segment its frames
    settings = cloud_settings(run.render.settings)
    data = run.rt.storage.get(run.render.input_midi_key)
    output = run.workdir / f"segment.{settings.format.value}"
    render_video(
        data, output, settings, progress=_engine_progress(run, 0.0, 0.95), cancel=run.cancel,
        frames=(first, last), name=run.render.project_name,
    )  # fmt: skip
    run.cancel.raise_if_cancelled()
    _upload(run.rt, output, _segment_key(run))

    _finish(run, lambda session, render: add_join_if_last(session, run.rt.settings, render))


def add_join_if_last(session: Session, settings: Settings, render: Render) -> RenderStep | None:
    """Called by each segment in the transaction that completes it, under the render row's
    lock (``steps.lock_render``, taken first): of two segments that finish at the same moment,
    the second waits for the first one's commit and then counts it. The one that finds
    every segment done adds and publishes the join (once: it looks for one first, and the
    unique constraint on the step's name backs that up)."""
    done = session.scalar(
        select(func.count())
        .select_from(RenderStep)
        .where(
            RenderStep.render_id == render.id,
            RenderStep.attempt == render.attempt,
            RenderStep.name == StepName.SEGMENT.value,
            RenderStep.status == StepStatus.DONE.value,
        )
    )
    render.segments_done = int(done or 0)
    if render.segments_done < (render.segment_count or 0):
        return None
    joined = session.scalar(
        select(RenderStep.id).where(
            RenderStep.render_id == render.id,
            RenderStep.attempt == render.attempt,
            RenderStep.name == StepName.JOIN.value,
        )
    )
    if joined is not None:
        return None
    step = steps.add_step(session, render, StepName.JOIN)
    steps.publish_after_commit(session, settings, render, step)
    return step


@dataclass(frozen=True)
class OutputFacts:
    key: str
    bytes: int
    duration: float
    codec: str | None
    width: int
    height: int
    fps: int
    format: str


def join(run: StepRun) -> None:
    settings = cloud_settings(run.render.settings)
    fmt = settings.format.value
    with transaction_scope(run.rt.database) as session:
        rows = session.execute(
            select(RenderStep.index, RenderStep.output_key, RenderStep.first_frame,
                   RenderStep.last_frame)
            .where(
                RenderStep.render_id == run.render.id,
                RenderStep.attempt == run.render.attempt,
                RenderStep.name == StepName.SEGMENT.value,
            )
            .order_by(RenderStep.index)
        ).all()  # fmt: skip
    paths, counts = [], []
    for n, row in enumerate(rows):
        key = row.output_key or keys.segment(run.render.id, run.render.attempt, row.index, fmt)
        paths.append(_download(run.rt, key, run.workdir / f"segment-{row.index:05d}.{fmt}"))
        counts.append(int(row.last_frame) - int(row.first_frame))
        run.watch.fraction = 0.3 * (n + 1) / len(rows)
    audio = None
    if not settings.no_audio:
        audio_key = keys.prepared_audio(run.render.id, run.render.attempt)
        audio = _download(run.rt, audio_key, run.workdir / "audio.wav")
    output = run.workdir / f"video.{fmt}"

    def on_join(event: EncodeProgress) -> None:
        run.watch.fraction = 0.3 + 0.5 * event.fraction

    join_segments(
        paths, output, settings, audio, cancel=run.cancel, frame_counts=counts, progress=on_join
    )
    info = probe(output)
    frames = sum(counts)
    facts = OutputFacts(
        key=keys.output(run.render.id, fmt),
        bytes=output.stat().st_size,
        duration=info.duration if info.duration is not None else frames / settings.fps,
        codec=info.video_codec,
        width=info.width,
        height=info.height,
        fps=round(info.fps) if info.fps else settings.fps,
        format=fmt,
    )
    run.cancel.raise_if_cancelled()
    _upload(run.rt, output, facts.key)

    def record(session: Session, render: Render) -> None:
        render.output_key = facts.key
        render.output_bytes = facts.bytes
        render.output_duration = facts.duration
        render.output_codec = facts.codec
        render.width, render.height, render.fps = facts.width, facts.height, facts.fps
        render.format = facts.format
        thumbnail_step = session.scalar(
            select(RenderStep).where(
                RenderStep.render_id == render.id,
                RenderStep.attempt == render.attempt,
                RenderStep.name == StepName.THUMBNAIL.value,
            )
        )
        if thumbnail_step is None:
            _publish(session, run, render, steps.add_step(session, render, StepName.THUMBNAIL))

    _finish(run, record)


def thumbnail(run: StepRun) -> None:
    with transaction_scope(run.rt.database) as session:
        render = session.get(Render, run.render.id)
        assert render is not None and render.output_key is not None  # join recorded it
        video_key, duration = render.output_key, render.output_duration or 0.0
    video = _download(run.rt, video_key, run.workdir / f"video{Path(video_key).suffix}")
    run.watch.fraction = 0.4
    still = run.workdir / "thumbnail.jpg"
    # A third of the way in: past any lead-in, with notes on screen.
    # FFmpegJob rather than a plain run: a cancel kills it like any other FFmpeg of a step.
    FFmpegJob(
        ["-ss", f"{duration / 3:.3f}", "-i", str(video), "-frames:v", "1",
         "-vf", f"scale='min({THUMBNAIL_WIDTH},iw)':-2", "-q:v", "3"],
        still,
        cancel=run.cancel,
    ).wait()  # fmt: skip
    key = keys.thumbnail(run.render.id)
    run.cancel.raise_if_cancelled()
    _upload(run.rt, still, key)

    def record(session: Session, render: Render) -> None:
        render.thumbnail_key = key
        finalize_step = session.scalar(
            select(RenderStep).where(
                RenderStep.render_id == render.id,
                RenderStep.attempt == render.attempt,
                RenderStep.name == StepName.FINALIZE.value,
            )
        )
        if finalize_step is None:
            _publish(session, run, render, steps.add_step(session, render, StepName.FINALIZE))

    _finish(run, record)


def finalize(run: StepRun) -> None:
    rt = run.rt
    with transaction_scope(rt.database) as session:
        render = session.get(Render, run.render.id)
        assert render is not None and render.output_key is not None
        files = [render.output_key] + ([render.thumbnail_key] if render.thumbnail_key else [])
    sizes = {key: rt.storage.size(key) for key in files}
    outcome: dict[str, Any] = {}

    def succeed(session: Session, render: Render) -> None:
        now = utcnow()
        owner = session.get(User, render.owner_id)
        assert owner is not None  # the render's row cascades with its owner
        limits = limits_for(owner.tier)
        render.status = RenderStatus.SUCCEEDED.value
        render.stage = None
        render.percent = 100.0
        render.eta_seconds = 0.0
        render.finished_at = now
        render.expires_at = now + timedelta(days=limits.retention_days)
        # The work is done and the video exists: it is kept and counted even when it takes
        # the owner past the quota (submit checked room for its estimate); new uploads and
        # renders are then refused until the owner frees room.
        for key, size in sizes.items():
            charge_file(session, owner, key, size, "render", allow_over_quota=True)
        used = UsageService(session).stored_bytes(owner.id)
        outcome["over_quota"] = used > limits.storage_quota_bytes
        outcome["seconds"] = (now - (render.started_at or render.created_at)).total_seconds()
        outcome["resolution"] = str(render.settings.get("resolution", "unknown"))
        notify_finished(session, rt.settings, render)
        after_commit(session, lambda: _delete_after_success(rt, render.id, render.attempt))

    _finish(run, succeed, lock_owner=True)
    _log_event(rt, run.lease, run.worker, f"{run.label} finished on {run.worker}")
    if outcome.get("over_quota"):
        log.warning("render %s finished past its owner's storage quota", run.render.id)
    events.publish(
        rt.redis, run.render.id, "state", status=RenderStatus.SUCCEEDED.value, percent=100.0,
        eta_seconds=0.0,
        message="Your video is ready."
        + (" It takes you past your storage quota: delete files you no longer need."
           if outcome.get("over_quota") else ""),
    )  # fmt: skip
    metrics.record_outcome(rt.redis, RenderStatus.SUCCEEDED.value)
    metrics.observe_render_seconds(rt.redis, outcome["resolution"], outcome["seconds"])


def _delete_after_success(rt: Runtime, render_id: uuid.UUID, attempt: int) -> None:
    """The intermediate files and the input copies: the video is all that stays."""
    _delete_folder(rt, keys.work_folder(render_id, attempt))
    rt.storage.delete(keys.input_midi(render_id))
    rt.storage.delete(keys.input_audio(render_id))


IMPLEMENTATIONS: dict[StepName, Callable[[StepRun], None]] = {
    StepName.PREPARE: prepare,
    StepName.SEGMENT: segment,
    StepName.JOIN: join,
    StepName.THUMBNAIL: thumbnail,
    StepName.FINALIZE: finalize,
}
