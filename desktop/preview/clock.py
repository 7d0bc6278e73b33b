"""The preview's clock: which moment of the video should be on screen now.

Everything is in *video seconds*, the same axis the renders use (``common/timeline.py``):
video time ``v`` shows song time ``timeline.song_time(v)`` (lead-in, start and the
render's ``speed`` are all inside that mapping), and the preview's soundtrack is the
render's own audio stage output, whose sample ``n`` is video time ``n / 48000``
(``common/audio/prepare.py``; a recording's ``audio_offset_ms`` is already applied
there). So picture and sound agree when the audio position *is* the video position;
the preview speed (0.5×–2×) only scales how fast both run.

Without an audio device the clock runs on a monotonic clock. With one, the audio
player's position reports steer it: they arrive coarsely (tens of ms apart) and
jitter, so between reports the clock extrapolates, small disagreements are corrected
gradually (no visible jumps) and large ones (a seek, a stall) are snapped to.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

# Audio and picture further apart than this: jump to the audio at once.
SNAP_SECONDS = 0.12
# Share of a smaller disagreement corrected at each audio report.
SLEW = 0.2


class Tick(StrEnum):
    """What happened to the clock at a ``tick``."""

    RUNNING = "running"
    WRAPPED = "wrapped"  # passed the loop's out point and went back to its in point
    ENDED = "ended"  # reached the end of the video and stopped there


class PlaybackClock:
    """Video position with play/pause, seek, speed, a loop range and audio following.

    ``now`` is the time source in seconds (``time.monotonic`` in the app).
    """

    MIN_SPEED = 0.5
    MAX_SPEED = 2.0

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._duration = 0.0
        self._speed = 1.0
        self._playing = False
        self._anchor_pos = 0.0  # video position at wall time _anchor_wall
        self._anchor_wall = now()
        self._floor = 0.0  # never report less than this while playing (slewing backwards)
        self._loop: tuple[float, float] | None = None

    # State --------------------------------------------------------------------------------
    @property
    def duration(self) -> float:
        return self._duration

    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def loop(self) -> tuple[float, float] | None:
        """The looped range ``(in, out)`` in video seconds, or None."""
        return self._loop

    def position(self) -> float:
        """Video seconds now (not yet wrapped or stopped: ``tick`` does that)."""
        if not self._playing:
            return self._anchor_pos
        p = self._anchor_pos + (self._now() - self._anchor_wall) * self._speed
        # Slewing towards the audio may pull the anchor back a little; the picture must
        # not step backwards for it.
        self._floor = max(p, self._floor)
        return self._floor

    # Commands -----------------------------------------------------------------------------
    def set_duration(self, seconds: float) -> None:
        self._duration = max(0.0, seconds)
        if self._loop is not None:
            self.set_loop(*self._loop)
        if self.position() > self._duration:
            self._set(self._duration)

    def play(self) -> None:
        """Start running; from the loop's in point when outside the loop, from 0 at the end."""
        if self._playing:
            return
        p = self._anchor_pos
        if self._loop is not None and not self._loop[0] <= p < self._loop[1]:
            p = self._loop[0]
        elif p >= self._duration:
            p = 0.0
        self._playing = True
        self._set(p)

    def pause(self) -> None:
        if not self._playing:
            return
        p = min(self.position(), self._duration)
        self._playing = False
        self._set(p)

    def seek(self, seconds: float) -> float:
        """Jump to ``seconds`` (clamped to the video); returns where the clock now is."""
        p = min(max(0.0, seconds), self._duration)
        self._set(p)
        return p

    def set_speed(self, speed: float) -> float:
        """Preview speed (0.5–2×, clamped); keeps the current position."""
        s = min(max(float(speed), self.MIN_SPEED), self.MAX_SPEED)
        self._set(self.position())
        self._speed = s
        return s

    def set_loop(self, start: float | None, end: float | None = None) -> None:
        """Loop ``[start, end)``; ``end=None`` loops to the end; ``start=None`` clears the loop.

        A range shorter than 50 ms (or outside the video) is refused as no loop at all.
        """
        if start is None:
            self._loop = None
            return
        a = min(max(0.0, start), self._duration)
        b = self._duration if end is None else min(max(0.0, end), self._duration)
        if b < a:
            a, b = b, a
        self._loop = (a, b) if b - a >= 0.05 else None

    def tick(self) -> tuple[float, Tick]:
        """Advance: wrap at the loop's out point, stop at the end. Returns (position, what)."""
        p = self.position()
        if not self._playing:
            return p, Tick.RUNNING
        if self._loop is not None:
            a, b = self._loop
            if p >= b:
                p = a + (p - a) % (b - a) if p - b < b - a else a
                self._set(p)
                return p, Tick.WRAPPED
        if p >= self._duration:
            self._playing = False
            self._set(self._duration)
            return self._duration, Tick.ENDED
        return p, Tick.RUNNING

    def follow_audio(self, audio_seconds: float) -> None:
        """Steer towards the audio player's reported position (video seconds)."""
        if not self._playing:
            return
        now = self._now()
        expected = self._anchor_pos + (now - self._anchor_wall) * self._speed
        error = audio_seconds - expected
        if abs(error) > SNAP_SECONDS:
            self._set(audio_seconds)
        else:
            self._anchor_pos += error * SLEW

    def _set(self, position: float) -> None:
        self._anchor_pos = position
        self._anchor_wall = self._now()
        self._floor = position
