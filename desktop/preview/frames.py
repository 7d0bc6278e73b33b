"""Preview frames: drawn by the engine on a worker thread, a little ahead of the clock.

A frame at 1280x720 costs about 2 ms to draw, but when the falling notes reach a part
of the song not drawn yet the engine draws a new strip chunk first (up to ~35 ms on
these machines). On the UI thread that would drop frames; here a dedicated thread
keeps a small ring of finished frames ahead of the clock, and the UI thread only
picks the one for "now" and paints it. When the thread falls behind, it skips ahead
to the clock rather than showing a late picture.

Each frame is interleaved once into its own reused RGB buffer, and a ``QImage`` is a
view over that buffer (no copy); the worker never writes a buffer that is on screen.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
from notefall.common.engine import FrameRenderer
from PySide6.QtGui import QImage

log = logging.getLogger(__name__)

# Display ticks per second the worker renders ahead for.
DISPLAY_RATE = 60
# Frames in the ring: one on screen, one being drawn, the rest ready ahead (~60 ms).
RING_SIZE = 6


class _State(Enum):
    FREE = 0
    DRAWING = 1
    READY = 2
    SHOWN = 3


@dataclass(eq=False, slots=True)
class PreviewFrame:
    """One finished picture: pixels, the QImage over them, and the moment it shows."""

    pixels: np.ndarray  # (H, W, 3|4) uint8, C-contiguous
    image: QImage
    time: float = 0.0  # video seconds
    generation: int = 0  # which renderer drew it (settings/size version)
    request: int = 0  # exact-request number, 0 for frames drawn ahead while playing
    state: _State = field(default=_State.FREE)

    @classmethod
    def allocate(cls, width: int, height: int, channels: int) -> PreviewFrame:
        pixels = np.zeros((height, width, channels), np.uint8)
        fmt = QImage.Format.Format_RGBA8888 if channels == 4 else QImage.Format.Format_RGB888
        image = QImage(pixels.data, width, height, width * channels, fmt)
        return cls(pixels, image)


def draw_into(renderer: FrameRenderer, video_time: float, target: np.ndarray) -> None:
    """Draw ``video_time`` and interleave the engine's planes into ``target`` (one pass)."""
    frame = renderer.render_at(video_time)
    for i, plane in enumerate(frame.planes):
        target[..., i] = plane


class FrameProducer:
    """The render-ahead thread and its ring of frames.

    UI-thread API: ``set_renderer``, ``request`` (one exact moment: seeks, scrubbing,
    paused changes), ``follow`` (playing: position and speed at each tick), ``stop``
    (paused), ``take`` (the frame to show now) and ``close``. ``on_ready`` is called
    from the worker thread after each frame; it must only post to the UI thread (emit a
    signal).
    """

    def __init__(self, on_ready: Callable[[], None]) -> None:
        self._on_ready = on_ready
        self._cond = threading.Condition()
        self._renderer: FrameRenderer | None = None
        self._duration = 0.0
        self._generation = 0
        self._ring: list[PreviewFrame] = []
        self._shown: PreviewFrame | None = None
        self._pending: tuple[float, int] | None = None  # (time, request number)
        self._requests = 0
        self._playing = False
        self._anchor = (0.0, 0.0, 1.0)  # (position, monotonic, speed) of the last follow
        self._next = 0.0  # next ahead time to draw
        self._closed = False
        # For the benchmark: ahead frames skipped because drawing fell behind, frames drawn,
        # and the CPU time this thread spent drawing them.
        self.dropped = 0
        self.drawn = 0
        self.draw_cpu = 0.0
        self._thread = threading.Thread(target=self._run, name="notefall-preview", daemon=True)
        self._thread.start()

    # UI thread --------------------------------------------------------------------------
    def set_renderer(self, renderer: FrameRenderer) -> int:
        """Use a new renderer (settings or size changed); the frame on screen stays."""
        w, h = renderer.layout.width, renderer.layout.height
        channels = 4 if renderer.format.has_alpha else 3
        with self._cond:
            self._generation += 1
            self._renderer = renderer
            self._duration = renderer.timeline.duration
            self._ring = [PreviewFrame.allocate(w, h, channels) for _ in range(RING_SIZE)]
            self._next = self._anchor[0]
            self._cond.notify_all()
            return self._generation

    def reset(self) -> None:
        """Forget the renderer and every frame not on screen (another song is coming)."""
        with self._cond:
            self._generation += 1
            self._renderer = None
            self._ring = []
            self._pending = None
            self._playing = False

    @property
    def generation(self) -> int:
        return self._generation

    def request(self, video_time: float) -> int:
        """Draw this exact moment next (newer requests replace older pending ones)."""
        with self._cond:
            self._requests += 1
            self._pending = (video_time, self._requests)
            self._cond.notify_all()
            return self._requests

    def follow(self, position: float, speed: float, *, restart: bool = False) -> None:
        """Playing: keep drawing ahead of ``position``; ``restart`` after a seek or wrap."""
        with self._cond:
            self._anchor = (position, time.monotonic(), speed)
            if restart or not self._playing:
                self._playing = True
                self._next = position
                for f in self._ring:
                    if f.state == _State.READY:
                        f.state = _State.FREE
            self._cond.notify_all()

    def stop(self, position: float) -> None:
        """Paused: no more drawing ahead."""
        with self._cond:
            self._playing = False
            self._anchor = (position, time.monotonic(), 0.0)
            for f in self._ring:
                if f.state == _State.READY and f.request == 0:
                    f.state = _State.FREE

    def take(self, position: float) -> PreviewFrame | None:
        """The frame to put on screen for ``position``, or None to keep the current one.

        A newer exact request wins; else, while playing, the latest ahead frame not in the
        future. Frames passed over are freed (dropped): the picture keeps up with the clock.
        """
        with self._cond:
            gen = self._generation
            ready = [f for f in self._ring if f.state == _State.READY and f.generation == gen]
            if not ready:
                return None
            exact = [f for f in ready if f.request]
            if exact:
                best = max(exact, key=lambda f: f.request)
                stale = [f for f in exact if f.request < best.request]
            elif not self._playing:
                return None  # paused: only exact moments are shown
            else:
                half = self._anchor[2] / DISPLAY_RATE / 2
                due = [f for f in ready if f.time <= position + half]
                if not due:
                    return None
                best = max(due, key=lambda f: f.time)
                stale = [f for f in due if f is not best]
            for f in stale:
                f.state = _State.FREE
            if self._shown is not None and self._shown.state == _State.SHOWN:
                self._shown.state = _State.FREE
            best.state = _State.SHOWN
            self._shown = best
            self._cond.notify_all()
            return best

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=5)

    # Worker thread ----------------------------------------------------------------------
    def _next_job(self) -> tuple[FrameRenderer, PreviewFrame, float, int, int] | None:
        """Under the lock: what to draw next, or None to wait."""
        renderer = self._renderer
        if renderer is None:
            return None
        free = next((f for f in self._ring if f.state == _State.FREE), None)
        if self._pending is not None:
            if free is None:  # an exact request may take the oldest frame drawn ahead
                ahead = [f for f in self._ring if f.state == _State.READY]
                if not ahead:
                    return None
                free = min(ahead, key=lambda f: (f.request, f.time))
            t, number = self._pending
            self._pending = None
            return renderer, free, t, number, self._generation
        if not self._playing or free is None:
            return None
        pos, wall, speed = self._anchor
        now = pos + (time.monotonic() - wall) * speed
        step = speed / DISPLAY_RATE
        if self._next < now:  # fell behind: skip to the clock instead of drawing the past
            if self._next > pos:
                self.dropped += int((now - self._next) / step)
            self._next = now + step / 2
        if self._next > now + step * (RING_SIZE - 1) or self._next > self._duration + step:
            return None  # far enough ahead (or past the end): wait for the clock
        t = self._next
        self._next += step
        return renderer, free, t, 0, self._generation

    def _run(self) -> None:
        while True:
            with self._cond:
                job = None
                while not self._closed and (job := self._next_job()) is None:
                    # Woken by any command; while playing, the timeout re-checks "far
                    # enough ahead" as the clock moves on.
                    self._cond.wait(timeout=0.004 if self._playing else None)
                if self._closed or job is None:
                    return
                renderer, frame, t, number, gen = job
                frame.state = _State.DRAWING
            clamped = min(max(t, 0.0), renderer.timeline.duration)
            cpu = time.thread_time()
            try:
                draw_into(renderer, clamped, frame.pixels)
            except Exception:  # a drawing bug must not kill the preview thread silently
                log.exception("Preview frame at %.3f s failed", t)
                with self._cond:
                    frame.state = _State.FREE
                continue
            with self._cond:
                self.drawn += 1
                self.draw_cpu += time.thread_time() - cpu
                if gen != self._generation:
                    continue  # settings changed while drawing: this ring is gone
                if number == 0 and not self._playing:
                    frame.state = _State.FREE  # drawn ahead, but playback stopped meanwhile
                    continue
                frame.time, frame.request, frame.generation = clamped, number, gen
                frame.state = _State.READY
            try:
                self._on_ready()
            except (RuntimeError, TypeError):  # the pane is gone (deleted, or Python exiting)
                return
