"""One progress interface for every stage of a render, and a cancel token.

The CLI progress bar, the Celery task and the desktop app all implement
``ProgressCallback``; the pipeline calls it through a ``ProgressTracker`` that
adds the ETA and throttles calls.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from .errors import RenderCancelled


class Stage(StrEnum):
    PARSING = "parsing"
    SYNTHESIZING_AUDIO = "synthesizing audio"
    RENDERING = "rendering"
    ENCODING = "encoding"
    MUXING = "muxing"
    UPLOADING = "uploading"


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    stage: Stage
    percent: float  # 0..100 within the stage
    eta_seconds: float | None  # for the stage; None until it can be estimated
    overall_percent: float  # 0..100 over the whole job
    message: str = ""


ProgressCallback = Callable[[ProgressEvent], None]


class CancelToken:
    """Thread-safe cancel flag; ``raise_if_cancelled`` is called about once a frame."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise RenderCancelled("The render was cancelled.")


# Rough share of wall time per stage, so one overall percentage can be shown.
_STAGE_WEIGHTS: dict[Stage, float] = {
    Stage.PARSING: 0.01,
    Stage.SYNTHESIZING_AUDIO: 0.04,
    Stage.RENDERING: 0.90,
    Stage.ENCODING: 0.0,  # encoding overlaps rendering; reported together
    Stage.MUXING: 0.05,
    Stage.UPLOADING: 0.0,
}


class ProgressTracker:
    """Adds ETA and overall percent to raw stage progress and rate-limits callbacks."""

    def __init__(
        self,
        callback: ProgressCallback | None,
        *,
        stages: tuple[Stage, ...] = (
            Stage.PARSING,
            Stage.SYNTHESIZING_AUDIO,
            Stage.RENDERING,
            Stage.MUXING,
        ),
        min_interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._callback = callback
        self._clock = clock
        self._min_interval = min_interval
        total = sum(_STAGE_WEIGHTS[s] for s in stages) or 1.0
        self._offsets: dict[Stage, tuple[float, float]] = {}
        acc = 0.0
        for s in stages:
            w = _STAGE_WEIGHTS[s] / total
            self._offsets[s] = (acc, w)
            acc += w
        self._stage: Stage | None = None
        self._stage_started = 0.0
        self._last_emit = -1e9

    def update(
        self, stage: Stage, fraction: float, message: str = "", *, force: bool = False
    ) -> None:
        if self._callback is None:
            return
        now = self._clock()
        if stage != self._stage:
            self._stage = stage
            self._stage_started = now
            force = True
        fraction = min(max(fraction, 0.0), 1.0)
        if not force and fraction < 1.0 and now - self._last_emit < self._min_interval:
            return
        self._last_emit = now
        elapsed = now - self._stage_started
        eta: float | None = None
        if fraction >= 1.0:
            eta = 0.0
        elif fraction > 0.02 and elapsed > 0.2:
            eta = elapsed * (1.0 - fraction) / fraction
        offset, weight = self._offsets.get(stage, (0.0, 0.0))
        overall = 100.0 * min(1.0, offset + weight * fraction)
        self._callback(ProgressEvent(stage, 100.0 * fraction, eta, overall, message))
