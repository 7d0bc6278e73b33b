"""The Song model: everything the engine and the synthesizer need from a MIDI file.

Times are absolute seconds, already resolved through the whole tempo map. Notes,
pedal spans and controller events are NumPy structured arrays rather than Python
objects, so a dense file with a million notes costs tens of megabytes, not gigabytes,
and the engine can query them vectorised.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# One row per note, sorted by (start, pitch). ``end`` is the key release;
# ``sound_end`` is when the note stops sounding (later than ``end`` while the
# sustain pedal holds it).
NOTE_DTYPE = np.dtype(
    [
        ("start", "f8"),
        ("end", "f8"),
        ("sound_end", "f8"),
        ("pitch", "u1"),
        ("velocity", "u1"),
        ("channel", "u1"),
        ("track", "u2"),
    ]
)

# Sustain pedal (CC64 >= 64) held from ``start`` to ``end`` on ``channel``.
PEDAL_DTYPE = np.dtype([("start", "f8"), ("end", "f8"), ("channel", "u1")])

# Everything the synthesizer needs besides notes, in time order.
#   kind 0 = program change (a = program, b = bank),
#   kind 1 = control change (a = controller, b = value),
#   kind 2 = pitch bend (a = 0, b = value 0..16383, centre 8192).
CONTROL_DTYPE = np.dtype(
    [("time", "f8"), ("channel", "u1"), ("kind", "u1"), ("a", "i2"), ("b", "i2")]
)
CONTROL_PROGRAM = 0
CONTROL_CC = 1
CONTROL_PITCHBEND = 2

DRUM_CHANNEL = 9  # MIDI channel 10, zero-based


@dataclass(frozen=True, slots=True)
class TrackInfo:
    index: int
    name: str
    instrument: str  # instrument-name meta event, or the General MIDI name of its first program
    program: int  # first program change seen on the track (0 when none)
    channels: tuple[int, ...]
    note_count: int

    @property
    def is_drums(self) -> bool:
        return bool(self.channels) and all(c == DRUM_CHANNEL for c in self.channels)


@dataclass(frozen=True, slots=True)
class TempoChange:
    time: float  # seconds
    bpm: float


@dataclass(frozen=True, slots=True)
class TimeSignature:
    time: float
    numerator: int
    denominator: int


@dataclass(slots=True)
class Song:
    notes: np.ndarray  # NOTE_DTYPE, sorted by start then pitch
    pedals: np.ndarray = field(default_factory=lambda: np.zeros(0, PEDAL_DTYPE))
    controls: np.ndarray = field(default_factory=lambda: np.zeros(0, CONTROL_DTYPE))
    tracks: tuple[TrackInfo, ...] = ()
    tempo_changes: tuple[TempoChange, ...] = ()
    time_signatures: tuple[TimeSignature, ...] = ()
    title: str = ""
    midi_type: int = 1
    # Seconds; at least the last note's sound_end (a trailing meta event can extend it).
    duration: float = 0.0
    warnings: tuple[str, ...] = ()

    @property
    def note_count(self) -> int:
        return int(self.notes.shape[0])

    @property
    def pitch_range(self) -> tuple[int, int] | None:
        """Lowest and highest pitch over the non-drum notes, or None if there are none."""
        pitched = self.notes[self.notes["channel"] != DRUM_CHANNEL]
        if pitched.shape[0] == 0:
            return None
        return int(pitched["pitch"].min()), int(pitched["pitch"].max())

    def pitched_notes(self) -> np.ndarray:
        return self.notes[self.notes["channel"] != DRUM_CHANNEL]

    def beat_times(self, until: float | None = None) -> np.ndarray:
        """Times of beats (quarter notes scaled by the time signature) up to ``until``."""
        end = self.duration if until is None else until
        changes = self.tempo_changes or (TempoChange(0.0, 120.0),)
        times: list[float] = []
        for i, tc in enumerate(changes):
            seg_end = changes[i + 1].time if i + 1 < len(changes) else end
            step = 60.0 / max(tc.bpm, 1e-3)
            t = tc.time
            while t < seg_end - 1e-9 and t <= end:
                times.append(t)
                t += step
                if len(times) > 200_000:  # a day at 120 bpm is 172,800 beats
                    return np.asarray(times)
        return np.asarray(times)


def empty_notes(n: int = 0) -> np.ndarray:
    return np.zeros(n, NOTE_DTYPE)


NOTE_NAMES_SHARP = ("C", "C♯", "D", "D♯", "E", "F", "F♯", "G", "G♯", "A", "A♯", "B")
NOTE_NAMES_ASCII = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def note_name(pitch: int, *, octave: bool = True, ascii_only: bool = False) -> str:
    """Scientific pitch name: 60 → 'C4'."""
    names = NOTE_NAMES_ASCII if ascii_only else NOTE_NAMES_SHARP
    name = names[pitch % 12]
    return f"{name}{pitch // 12 - 1}" if octave else name


def is_black_key(pitch: int) -> bool:
    return pitch % 12 in (1, 3, 6, 8, 10)
