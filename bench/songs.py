"""The benchmark's reference song: a dense, two-hand piano MIDI generated on the fly.

``reference_song_bytes(minutes)`` is a deterministic function of its arguments, so every
benchmark run (and every machine) measures the same input without a binary file in the
repository. For 3 minutes it holds about 3,000 notes (about 16.7 a second at any tempo;
the count scales linearly with the length), and it exercises what real piano files
make a renderer do:

- right hand (track 0, channel 0): a melody in C5–C7 over fast figuration (sixteenths to
  32nd-note tuplets) sweeping C4–C7;
- left hand (track 1, channel 1): bass octaves reaching down to A0 and chords up to C4,
  so the song spans most of the 88 keys;
- a tempo map of 96 → 120 → 84 → (gradual accelerando) → 132 bpm and a final
  ritardando that lands the end exactly on ``minutes``;
- a sustain pedal change every bar on both channels, velocities 40–115.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import mido

TICKS_PER_BEAT = 480
BEAT = TICKS_PER_BEAT
BAR = 4 * BEAT
NOTES_PER_MINUTE = 1000  # ≈ 3000 notes for 3 minutes
RIGHT, LEFT = 0, 1  # channels
PIANO = 0  # General MIDI Acoustic Grand Piano
LOWEST, HIGHEST = 21, 96  # A0 .. C7
PEDAL_CATCH = 60  # ticks after the bar line the pedal goes down again
MIN_NOTE = 30  # ticks; shorter notes left after de-overlapping are dropped

# Sections as (fraction of the length where it starts, bpm, key tonic as MIDI pitch class).
# The accelerando section ramps beat by beat from the previous tempo to the next.
_SECTIONS: tuple[tuple[float, float | None, int], ...] = (
    (0.00, 96.0, 0),  # C major
    (0.22, 120.0, 7),  # G major
    (0.45, 84.0, 3),  # E-flat major
    (0.62, None, 9),  # accelerando 84 → 132, A major
    (0.72, 132.0, 0),  # C major
)
_ACCEL_FROM, _ACCEL_TO = 84.0, 132.0

_MAJOR = (0, 2, 4, 5, 7, 9, 11)
# Chord roots as scale degrees (0-based) of a loop of common progressions.
_PROGRESSION = (0, 5, 3, 4, 0, 3, 1, 4, 5, 2, 3, 4, 0, 4, 5, 4)


@dataclass(frozen=True, slots=True)
class _Note:
    start: int
    length: int
    pitch: int
    velocity: int
    channel: int


def _chord_tones(tonic: int, degree: int, seventh: bool) -> tuple[int, ...]:
    """Pitch classes of the diatonic triad (or seventh chord) on ``degree``."""
    steps = (0, 2, 4, 6) if seventh else (0, 2, 4)
    return tuple((tonic + _MAJOR[(degree + s) % 7] + 12 * ((degree + s) // 7)) % 12 for s in steps)


def _pitches_in(pcs: tuple[int, ...], low: int, high: int) -> list[int]:
    return [p for p in range(low, high + 1) if p % 12 in pcs]


class _Tempo:
    """The tempo map, one bar at a time, with the elapsed seconds it implies."""

    def __init__(self) -> None:
        self.changes: list[tuple[int, float]] = []  # (tick, bpm)
        self.seconds = 0.0

    def bar(self, start: int, beats: list[float]) -> None:
        for i, bpm in enumerate(beats):
            if not self.changes or self.changes[-1][1] != bpm:
                self.changes.append((start + i * BEAT, bpm))
            self.seconds += 60.0 / bpm


def _section(fraction: float) -> int:
    index = 0
    for i, (begins, _bpm, _tonic) in enumerate(_SECTIONS):
        if fraction >= begins:
            index = i
    return index


def _bar_beats(elapsed: float, total: float) -> list[float]:
    """The bpm of each beat of the bar that starts ``elapsed`` seconds in."""
    beats = []
    for _ in range(4):
        fraction = elapsed / total
        index = _section(fraction)
        begins, bpm, _tonic = _SECTIONS[index]
        if bpm is None:  # the accelerando, by elapsed time
            ends = _SECTIONS[index + 1][0]
            ramp = (fraction - begins) / (ends - begins)
            bpm = round(_ACCEL_FROM + ramp * (_ACCEL_TO - _ACCEL_FROM), 1)
        beats.append(bpm)
        elapsed += 60.0 / bpm
    return beats


def _generate(minutes: float, seed: int) -> tuple[list[_Note], _Tempo, int]:
    if not minutes > 0:
        raise ValueError(f"minutes must be positive, got {minutes!r}")
    rng = random.Random(seed)
    total = 60.0 * minutes
    rate = NOTES_PER_MINUTE / 60.0
    tempo = _Tempo()
    notes: list[_Note] = []

    def add(start: int, length: int, pitch: int, velocity: float, channel: int) -> None:
        vel = max(40, min(115, round(velocity)))
        notes.append(_Note(start, length, max(LOWEST, min(HIGHEST, pitch)), vel, channel))

    melody = 79  # G5
    bar_index = 0
    while True:
        start = bar_index * BAR
        fraction = tempo.seconds / total
        section = _section(fraction)
        beats = _bar_beats(tempo.seconds, total)
        bar_seconds = sum(60.0 / b for b in beats)
        remaining = total - tempo.seconds
        last = remaining < 2 * bar_seconds
        if last:
            # Final ritardando: stretch this bar to end exactly on the requested length.
            beats = [240.0 / remaining] * 4
            bar_seconds = remaining
        tempo.bar(start, beats)

        tonic = _SECTIONS[section][2]
        degree = _PROGRESSION[bar_index % len(_PROGRESSION)]
        if last:
            degree = 0
        seventh = rng.random() < 0.35
        pcs = _chord_tones(tonic, degree, seventh)
        scale = tuple((tonic + s) % 12 for s in _MAJOR)
        # Phrase-level dynamics: an 8-bar swell, louder in the faster sections.
        swell = 12 * (1 - abs((bar_index % 8) - 4) / 4)
        loud = 62 + swell + (8 if beats[0] >= 120 else 0)

        # Left hand: bass octave on beats 1 and 3, chords on the off-beats.
        root = pcs[0]
        low_octave = rng.choice((0, 12, 12, 24))
        bass = LOWEST + (root - LOWEST) % 12 + low_octave  # A0..G#3 region
        for beat in (0, 2):
            b = bass if beat == 0 else bass + rng.choice((0, 7, 12))
            if b > 52:  # keep the left hand at or below C4 (with its chords)
                b -= 12
            add(start + beat * BEAT, 2 * BEAT - 20, b, loud + 18 + rng.uniform(-6, 6), LEFT)
            if b + 12 <= 52:
                add(start + beat * BEAT, 2 * BEAT - 20, b + 12, loud + 8 + rng.uniform(-6, 6), LEFT)
        chord_pitches = _pitches_in(pcs, 48, 60)
        for off in (BEAT // 2, BEAT + BEAT // 2, 2 * BEAT + BEAT // 2, 3 * BEAT + BEAT // 2):
            top = rng.randrange(3, len(chord_pitches) + 1)
            for p in chord_pitches[top - 3 : top]:
                add(start + off, BEAT // 2 - 20, p, loud - 6 + rng.uniform(-8, 8), LEFT)

        # Right hand melody: a scale-wise walk in C5–C7 on a varied rhythm.
        rhythm = rng.choice(
            (
                (BEAT,) * 4,
                (BEAT + BEAT // 2, BEAT // 2, BEAT, BEAT),
                (BEAT // 2,) * 4 + (BEAT, BEAT),
                (2 * BEAT, BEAT, BEAT // 2, BEAT // 2),
            )
        )
        tick = start
        melody_notes = 0
        for length in rhythm:
            step = rng.choice((-2, -1, -1, 1, 1, 2, 3, -3))
            candidates = [p for p in range(72, HIGHEST + 1) if p % 12 in scale]
            i = min(range(len(candidates)), key=lambda k: abs(candidates[k] - melody))
            i = max(0, min(len(candidates) - 1, i + step))
            if tick == start:  # land the downbeat on a chord tone
                tones = [p for p in candidates if p % 12 in pcs]
                melody = min(tones, key=lambda p: abs(p - candidates[i]))
            else:
                melody = candidates[i]
            add(tick, length - 15, melody, loud + 22 + rng.uniform(-8, 8), RIGHT)
            tick += length
            melody_notes += 1

        if last:
            # A closing chord instead of figuration.
            for p in _pitches_in(pcs, 60, 84):
                add(start, BAR - 30, p, loud + rng.uniform(-5, 5), RIGHT)
        else:
            # Figuration: as many evenly spaced notes as keep the note rate constant.
            left_notes = 2 + sum(1 for b in (bass, bass + 12) if b + 12 <= 52) + 12
            figure = round(rate * bar_seconds) - melody_notes - left_notes
            figure = max(8, min(32, figure))
            sweep = _pitches_in(pcs, 60, HIGHEST)
            span = rng.randrange(8, min(16, len(sweep)) + 1)
            first = rng.randrange(0, len(sweep) - span + 1)
            # Bars with the widest sweeps reach the top of the range.
            if bar_index % 4 == 3:
                first = len(sweep) - span
            window = sweep[first : first + span]
            shape = rng.choice(("up", "down", "updown"))
            for k in range(figure):
                if shape == "up":
                    p = window[k % span]
                elif shape == "down":
                    p = window[-1 - k % span]
                else:
                    cycle = 2 * span - 2
                    j = k % cycle
                    p = window[j if j < span else cycle - j]
                on = start + (k * BAR) // figure
                off = start + ((k + 1) * BAR) // figure
                accent = 8 if k * 4 % figure == 0 else 0
                add(
                    on,
                    max(MIN_NOTE, off - on - 10),
                    p,
                    loud - 14 + accent + rng.uniform(-6, 6),
                    RIGHT,
                )
        bar_index += 1
        if last:
            break
    return notes, tempo, bar_index * BAR


def _without_overlaps(notes: list[_Note]) -> list[_Note]:
    """Release a key before it is struck again on its channel; one strike per key and tick."""
    ordered = sorted(notes, key=lambda n: (n.channel, n.pitch, n.start, -n.length))
    unique: list[_Note] = []
    for note in ordered:
        previous = unique[-1] if unique else None
        if previous and (previous.channel, previous.pitch, previous.start) == (
            note.channel,
            note.pitch,
            note.start,
        ):
            continue  # the same key struck twice at once: keep the longer one
        unique.append(note)
    kept: list[_Note] = []
    for i, note in enumerate(unique):
        length = note.length
        nxt = unique[i + 1] if i + 1 < len(unique) else None
        if nxt is not None and (nxt.channel, nxt.pitch) == (note.channel, note.pitch):
            length = min(length, nxt.start - note.start - 5)
        if length >= MIN_NOTE:
            kept.append(_Note(note.start, length, note.pitch, note.velocity, note.channel))
    return kept


def _track(
    name: str, channel: int, notes: list[_Note], pedal_bars: int, end: int, tempo: _Tempo | None
) -> mido.MidiTrack:
    events: list[tuple[int, int, mido.Message | mido.MetaMessage]] = []
    if tempo is not None:
        for tick, bpm in tempo.changes:
            events.append((tick, 0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))))
    for note in notes:
        events.append(
            (
                note.start,
                3,
                mido.Message("note_on", channel=channel, note=note.pitch, velocity=note.velocity),
            )
        )
        events.append(
            (
                note.start + note.length,
                1,
                mido.Message("note_off", channel=channel, note=note.pitch, velocity=64),
            )
        )
    for bar in range(pedal_bars):
        if bar:
            events.append(
                (bar * BAR, 2, mido.Message("control_change", channel=channel, control=64, value=0))
            )
        events.append(
            (
                bar * BAR + PEDAL_CATCH,
                2,
                mido.Message("control_change", channel=channel, control=64, value=127),
            )
        )
    events.append((end, 2, mido.Message("control_change", channel=channel, control=64, value=0)))

    track = mido.MidiTrack()
    track.append(mido.MetaMessage("track_name", name=name))
    if tempo is not None:
        track.append(mido.MetaMessage("time_signature", numerator=4, denominator=4))
    track.append(mido.Message("program_change", channel=channel, program=PIANO))
    now = 0
    for tick, _order, msg in sorted(events, key=lambda e: (e[0], e[1], e[2].bytes())):
        track.append(msg.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track


def reference_song(minutes: float = 3.0, seed: int = 7) -> mido.MidiFile:
    """The reference song as a ``mido.MidiFile`` (type 1, two tracks)."""
    notes, tempo, end = _generate(minutes, seed)
    notes = _without_overlaps(notes)
    bars = end // BAR
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    midi.tracks.append(
        _track("Right hand", RIGHT, [n for n in notes if n.channel == RIGHT], bars, end, tempo)
    )
    midi.tracks.append(
        _track("Left hand", LEFT, [n for n in notes if n.channel == LEFT], bars, end, None)
    )
    return midi


def reference_song_bytes(minutes: float = 3.0, seed: int = 7) -> bytes:
    """Standard MIDI file bytes of the reference song; the same bytes for the same args."""
    buffer = BytesIO()
    reference_song(minutes, seed).save(file=buffer)
    return buffer.getvalue()


def write_reference_song(path: str | Path, minutes: float = 3.0, seed: int = 7) -> Path:
    """Write the reference song to ``path`` and return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(reference_song_bytes(minutes, seed))
    return path
