"""The mapping between video time and song time, and the global frame grid.

Frame ``i`` of a render is shown at video time ``i / fps``. Segments rendered by
different workers are ranges of this one grid, so joining them reproduces the
one-pass render exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import SettingsError
from .settings import RenderSettings
from .song import Song


@dataclass(frozen=True, slots=True)
class Timeline:
    fps: int
    speed: float  # song seconds per video second
    song_from: float  # song time at the hit line at video time ``lead_in``
    song_to: float
    lead_in: float  # video seconds before song_from reaches the keys
    tail: float  # video seconds after song_to

    @property
    def duration(self) -> float:
        """Video seconds."""
        return self.lead_in + (self.song_to - self.song_from) / self.speed + self.tail

    @property
    def frame_count(self) -> int:
        return max(1, math.ceil(self.duration * self.fps - 1e-6))

    def video_time(self, frame: int) -> float:
        return frame / self.fps

    def song_time(self, video_time: float) -> float:
        return self.song_from + (video_time - self.lead_in) * self.speed

    def song_time_of_frame(self, frame: int) -> float:
        return self.song_time(frame / self.fps)

    def video_time_of_song(self, song_time: float) -> float:
        return self.lead_in + (song_time - self.song_from) / self.speed

    def frame_range_for(self, video_start: float, video_end: float) -> tuple[int, int]:
        """Frames whose timestamps fall in [video_start, video_end)."""
        a = max(0, math.ceil(video_start * self.fps - 1e-9))
        b = min(self.frame_count, math.ceil(video_end * self.fps - 1e-9))
        return a, max(a, b)


def build_timeline(song: Song, settings: RenderSettings) -> Timeline:
    """Trim leading silence unless the user chose a start; add lead-in and tail."""
    first = float(song.notes["start"].min()) if song.note_count else 0.0
    last = song.duration
    if settings.start is not None:
        if settings.start >= last:
            raise SettingsError(
                f"start {settings.start:g} s is after the song ends ({last:.1f} s)."
            )
        song_from, lead_in = settings.start, 0.0
    else:
        song_from, lead_in = max(0.0, first), settings.lead_in
    if settings.end is not None and settings.end < last:
        song_to, tail = settings.end, 0.0
    else:
        # No end, or one past the music: stop where the music stops, with the tail.
        song_to, tail = max(last, song_from), settings.tail
    if song_to <= song_from and tail == 0 and lead_in == 0:
        song_to = song_from + 1.0 / settings.fps
    return Timeline(
        fps=settings.fps,
        speed=settings.speed,
        song_from=song_from,
        song_to=song_to,
        lead_in=lead_in,
        tail=tail,
    )
