"""The life of a render and of each of its steps, in the database (the record of truth)."""

from __future__ import annotations

from enum import StrEnum


class RenderStatus(StrEnum):
    QUEUED = "queued"  # written, its prepare step waiting for a worker
    RUNNING = "running"  # some step has started; ``stage`` says which
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # a permanent error (bad MIDI, unsupported setting): retrying cannot help
    CANCELLED = "cancelled"
    DEAD = "dead"  # a step was delivered too many times; waits in the dead-letter queue


TERMINAL = frozenset(
    {RenderStatus.SUCCEEDED, RenderStatus.FAILED, RenderStatus.CANCELLED, RenderStatus.DEAD}
)
# Renders that take a slot of the plan's concurrent renders.
ACTIVE = frozenset({RenderStatus.QUEUED, RenderStatus.RUNNING})
# Renders that count against the month's quota: reserved at submit, kept when it succeeds,
# given back when it fails, is cancelled or dies.
COUNTED = frozenset({RenderStatus.QUEUED, RenderStatus.RUNNING, RenderStatus.SUCCEEDED})


class StepName(StrEnum):
    """A render is a chain of steps; ``segment`` runs N times in parallel (``index``)."""

    PREPARE = "prepare"  # parse and validate the MIDI, synthesize the audio, plan segments
    SEGMENT = "segment"  # draw and encode one range of frames
    JOIN = "join"  # concatenate the segments and mux the audio
    THUMBNAIL = "thumbnail"  # a still of the finished video
    FINALIZE = "finalize"  # record the output, charge the storage, tell the user


# The render's ``stage`` while a step of each kind runs (shown to users).
STAGE_OF_STEP = {
    StepName.PREPARE: "preparing",
    StepName.SEGMENT: "rendering",
    StepName.JOIN: "joining",
    StepName.THUMBNAIL: "thumbnail",
    StepName.FINALIZE: "finalizing",
}


class StepStatus(StrEnum):
    PENDING = "pending"  # its message is (or should be) in the queue
    RUNNING = "running"  # a delivery holds its lease and sends heartbeats
    DONE = "done"
    FAILED = "failed"
