"""Every name the render farm uses in Redis and in storage, in one place."""

from __future__ import annotations

import uuid

# Redis ------------------------------------------------------------------------------------

PREFIX = "notefall:render"
# A list of JSON entries {render_id, step, reason, at}: what operators inspect and requeue.
DEAD_LETTERS = "notefall:dead-letters"
# Hash: worker name -> JSON {pid, queues, busy, seen_at}; each worker refreshes its own.
WORKERS = "notefall:workers"
# Unix time a worker last finished a task from each queue (proves consumption for /readyz).
CONSUMED = "notefall:consumed"
# Counters and histogram buckets for /metrics, shared by every process on every machine.
METRICS = "notefall:metrics"


def events(render_id: uuid.UUID | str) -> str:
    """The render's Redis Stream of progress and state events."""
    return f"{PREFIX}:{render_id}:events"


def cancel_flag(render_id: uuid.UUID | str) -> str:
    """Set by the API on cancel; running steps poll it (the database is checked too)."""
    return f"{PREFIX}:{render_id}:cancel"


def progress_throttle(render_id: uuid.UUID | str) -> str:
    """Held for a moment by the step that just published the render's progress, so all
    its steps together send a few events a second (renders/progress.py)."""
    return f"{PREFIX}:{render_id}:progress-throttle"


def progress_percent(render_id: uuid.UUID | str) -> str:
    """The percent of the render's latest progress event: events only move forward."""
    return f"{PREFIX}:{render_id}:progress-percent"


def deliveries(task_id: str) -> str:
    """INCR per delivery of one message (Redis keeps no delivery count of its own)."""
    return f"{PREFIX}:deliveries:{task_id}"


# Storage ----------------------------------------------------------------------------------


def render_folder(render_id: uuid.UUID | str) -> str:
    return f"renders/{render_id}/"


def input_midi(render_id: uuid.UUID | str) -> str:
    return f"renders/{render_id}/input.mid"


def input_audio(render_id: uuid.UUID | str) -> str:
    return f"renders/{render_id}/input-audio"


def work_folder(render_id: uuid.UUID | str, attempt: int) -> str:
    """Intermediate files of one attempt (audio, segments): deleted when the render ends."""
    return f"renders/{render_id}/work-{attempt}/"


def prepared_audio(render_id: uuid.UUID | str, attempt: int) -> str:
    return f"{work_folder(render_id, attempt)}audio.wav"


def segment(render_id: uuid.UUID | str, attempt: int, index: int, ext: str) -> str:
    return f"{work_folder(render_id, attempt)}segment-{index:05d}.{ext}"


def output(render_id: uuid.UUID | str, ext: str) -> str:
    return f"renders/{render_id}/video.{ext}"


def thumbnail(render_id: uuid.UUID | str) -> str:
    return f"renders/{render_id}/thumbnail.jpg"
