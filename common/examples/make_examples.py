"""Write the bundled demo MIDI: J. S. Bach, Prelude in C major, BWV 846 (WTC I).

Run ``python -m notefall.common.examples.make_examples`` to (re)write
``common/examples/prelude_in_c.mid``. The composition is in the public domain; the
encoding below is our own, from the piece's well-known harmonic plan (Bach's 35 bars,
without the spurious "Schwencke bar" some 19th-century editions add after bar 22).

Bars 1–32 are one figure: the left hand strikes the bass (held a half bar) and, one
sixteenth later, the tenor (held to the half bar), while the right hand plays the three
upper notes twice as sixteenths; each half bar repeats the figure. Bars 33–34 vary the
figure over a tonic pedal and bar 35 is the closing C major chord.

Pitches are MIDI numbers; names use scientific pitch (middle C = C4 = 60), as
``notefall.common.song.note_name`` does. Bar 1 is C4 E4 G4 C5 E5: some programs (Yamaha,
FL Studio, Cubase) call middle C "C3" and would name the same notes C3 E3 G3 C4 E4.

The output is deterministic: velocities are "humanised" by a seeded generator, so
running this twice writes the same bytes.
"""

from __future__ import annotations

import argparse
import itertools
import random
from collections.abc import Sequence
from pathlib import Path

import mido

OUTPUT = Path(__file__).with_name("prelude_in_c.mid")

TITLE = "Prelude in C major, BWV 846"
TICKS_PER_BEAT = 480
SIXTEENTH = TICKS_PER_BEAT // 4
HALF_BAR = 8 * SIXTEENTH
BAR = 16 * SIXTEENTH
CHANNEL = 0  # one piano: both hands share a channel, so one pedal holds both
PIANO = 0  # General MIDI Acoustic Grand Piano
SEED = 846

# A key is released this many ticks before the same hand strikes again, so a repeated
# pitch never overlaps itself and the pedal change catches clean key releases.
RELEASE_GAP = 12
# A sixteenth is held for most of its length (the pedal carries the rest).
SIXTEENTH_HELD = SIXTEENTH - 15
# The pedal goes up exactly on each half bar and down again this much later
# ("legato" or syncopated pedalling), after the new bass note has sounded.
PEDAL_CATCH = 40

# (bass, tenor, right hand 1, 2, 3) for bars 1–32, in MIDI note numbers.
_N = {
    "C2": 36, "D2": 38, "E2": 40, "F2": 41, "F#2": 42, "G2": 43, "Ab2": 44, "A2": 45,
    "B2": 47,
    "C3": 48, "D3": 50, "Eb3": 51, "E3": 52, "F3": 53, "G3": 55, "Ab3": 56, "A3": 57,
    "Bb3": 58, "B3": 59,
    "C4": 60, "D4": 62, "Eb4": 63, "E4": 64, "F4": 65, "F#4": 66, "G4": 67, "A4": 69,
    "B4": 71,
    "C5": 72, "C#5": 73, "D5": 74, "E5": 76, "F5": 77, "G5": 79, "A5": 81,
}  # fmt: skip


def _chord(names: str) -> tuple[int, ...]:
    return tuple(_N[name] for name in names.split())


VOICINGS: tuple[tuple[int, ...], ...] = tuple(
    _chord(bar)
    for bar in (
        "C4 E4 G4 C5 E5",  # 1  I
        "C4 D4 A4 D5 F5",  # 2  ii4/2
        "B3 D4 G4 D5 F5",  # 3  V6/5
        "C4 E4 G4 C5 E5",  # 4  I
        "C4 E4 A4 E5 A5",  # 5  vi6
        "C4 D4 F#4 A4 D5",  # 6  V4/2 of V
        "B3 D4 G4 D5 G5",  # 7  V6
        "B3 C4 E4 G4 C5",  # 8  I maj7 over B
        "A3 C4 E4 G4 C5",  # 9  vi7
        "D3 A3 D4 F#4 C5",  # 10 V7 of V
        "G3 B3 D4 G4 B4",  # 11 V
        "G3 Bb3 E4 G4 C#5",  # 12 vii°7 of ii over G
        "F3 A3 D4 A4 D5",  # 13 ii6
        "F3 Ab3 D4 F4 B4",  # 14 vii°7
        "E3 G3 C4 G4 C5",  # 15 I6
        "E3 F3 A3 C4 F4",  # 16 IV maj7 over E
        "D3 F3 A3 C4 F4",  # 17 ii7
        "G2 D3 G3 B3 F4",  # 18 V7
        "C3 E3 G3 C4 E4",  # 19 I
        "C3 G3 Bb3 C4 E4",  # 20 I7
        "F2 F3 A3 C4 E4",  # 21 IV maj7
        "F#2 C3 A3 C4 Eb4",  # 22 #iv°7
        "Ab2 F3 B3 C4 D4",  # 23 vii°7 over Ab
        "G2 F3 G3 B3 D4",  # 24 V7 (dominant pedal begins)
        "G2 E3 G3 C4 E4",  # 25 I6/4
        "G2 D3 G3 C4 F4",  # 26 V7sus4
        "G2 D3 G3 B3 F4",  # 27 V7
        "G2 Eb3 A3 C4 F#4",  # 28 vii°7 of V over G
        "G2 E3 G3 C4 G4",  # 29 I6/4
        "G2 D3 G3 C4 F4",  # 30 V7sus4
        "G2 D3 G3 B3 F4",  # 31 V7
        "C2 C3 G3 Bb3 E4",  # 32 I7 over the tonic pedal
    )
)

# Bars 33–34: bass and tenor held through the bar, fourteen sixteenths above them.
CODA: tuple[tuple[int, int, tuple[int, ...]], ...] = (
    (_N["C2"], _N["C3"], _chord("F3 A3 C4 F4 C4 A3 C4 A3 F3 A3 F3 D3 F3 D3")),
    (_N["C2"], _N["B2"], _chord("G4 B4 D5 F5 D5 B4 D5 B4 G4 B4 D4 F4 E4 D4")),
)
FINAL_CHORD: tuple[int, ...] = _chord("C2 C3 E4 G4 C5")

BAR_COUNT = len(VOICINGS) + len(CODA) + 1  # 35

# Quarter-note tempo: steady, then a ritardando over the last three bars, one tempo
# change per beat.
BASE_BPM = 68.0
RITARDANDO_BPM: tuple[float, ...] = (66, 64, 62, 60, 58, 56, 53, 50, 46)


def _dynamic(bar: int) -> float:
    """Base loudness (MIDI velocity) of a bar: quiet start, a swell into the sequence
    of bars 10–12, the long crescendo over the dominant pedal (24–31), then dying away."""
    curve = {
        1: 54, 5: 56, 8: 58, 10: 63, 12: 66, 15: 60, 18: 61, 19: 58, 21: 62,
        23: 67, 24: 64, 28: 74, 31: 72, 32: 66, 33: 60, 34: 55, 35: 50,
    }  # fmt: skip
    marks = sorted(curve)
    for lo, hi in itertools.pairwise(marks):
        if lo <= bar <= hi:
            frac = (bar - lo) / (hi - lo)
            return curve[lo] + frac * (curve[hi] - curve[lo])
    return float(curve[marks[-1]])


class _Voice:
    """Absolute-time note and controller events for one track."""

    def __init__(self) -> None:
        self.events: list[tuple[int, int, mido.Message]] = []

    def note(self, start: int, length: int, pitch: int, velocity: int) -> None:
        velocity = max(1, min(127, velocity))
        self.events.append(
            (start, 3, mido.Message("note_on", channel=CHANNEL, note=pitch, velocity=velocity))
        )
        self.events.append(
            (start + length, 0, mido.Message("note_off", channel=CHANNEL, note=pitch, velocity=64))
        )

    def pedal(self, tick: int, down: bool) -> None:
        msg = mido.Message("control_change", channel=CHANNEL, control=64, value=127 if down else 0)
        self.events.append((tick, 1, msg))

    def to_track(self, name: str, end: int) -> mido.MidiTrack:
        track = mido.MidiTrack()
        track.append(mido.MetaMessage("track_name", name=name, time=0))
        track.append(mido.Message("program_change", channel=CHANNEL, program=PIANO, time=0))
        now = 0
        # Same tick: note-offs, then pedal, then note-ons (a pedal lift at the
        # half bar must not catch the notes struck on it).
        for tick, _order, msg in sorted(self.events, key=lambda e: (e[0], e[1], e[2].bytes())):
            track.append(msg.copy(time=tick - now))
            now = tick
        track.append(mido.MetaMessage("end_of_track", time=max(0, end - now)))
        return track


def _conductor(end: int) -> mido.MidiTrack:
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("track_name", name=TITLE, time=0))
    track.append(mido.MetaMessage("copyright", text="Composition: J. S. Bach (public domain)"))
    track.append(mido.MetaMessage("time_signature", numerator=4, denominator=4))
    track.append(mido.MetaMessage("key_signature", key="C"))
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(BASE_BPM)))
    now = 0
    rit_start = (BAR_COUNT - 3) * BAR
    for beat, bpm in enumerate(RITARDANDO_BPM):
        tick = rit_start + beat * TICKS_PER_BEAT
        track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=end - now))
    return track


def prelude_in_c() -> mido.MidiFile:
    """The whole prelude as a type-1 file: conductor, right hand, left hand."""
    rng = random.Random(SEED)

    def vel(base: float, spread: float = 4.0) -> int:
        return round(base + rng.uniform(-spread, spread))

    right, left = _Voice(), _Voice()
    for index, (bass, tenor, *upper) in enumerate(VOICINGS):
        bar = index + 1
        loud = _dynamic(bar)
        for half in range(2):
            start = index * BAR + half * HALF_BAR
            left.note(start, HALF_BAR - RELEASE_GAP, bass, vel(loud + 6))
            left.note(start + SIXTEENTH, HALF_BAR - SIXTEENTH - RELEASE_GAP, tenor, vel(loud - 2))
            for i in range(6):
                # The first note of each three-note group leans a little; the second
                # half bar is a touch softer, as it usually is played.
                lean = 4 if i % 3 == 0 else 0
                echo = -2 if half else 0
                right.note(
                    start + (2 + i) * SIXTEENTH,
                    SIXTEENTH_HELD,
                    upper[i % 3],
                    vel(loud + lean + echo),
                )

    for offset, (bass, tenor, figure) in enumerate(CODA):
        bar = len(VOICINGS) + offset + 1
        loud = _dynamic(bar)
        start = (bar - 1) * BAR
        left.note(start, BAR - RELEASE_GAP, bass, vel(loud + 6))
        left.note(start + SIXTEENTH, BAR - SIXTEENTH - RELEASE_GAP, tenor, vel(loud - 2))
        for i, pitch in enumerate(figure):
            right.note(
                start + (2 + i) * SIXTEENTH,
                SIXTEENTH_HELD,
                pitch,
                vel(loud + (3 if i % 4 == 0 else 0)),
            )

    last = (BAR_COUNT - 1) * BAR
    loud = _dynamic(BAR_COUNT)
    for pitch in FINAL_CHORD:
        hand = left if pitch < 60 else right
        hand.note(last, BAR - RELEASE_GAP, pitch, vel(loud + (4 if pitch < 60 else 0), 2))

    # Pedal: change on every half bar through bar 34, held through the final chord and
    # lifted when it ends.
    for half_bar in range(2 * (BAR_COUNT - 1) + 1):
        tick = half_bar * HALF_BAR
        if tick:
            left.pedal(tick, down=False)
        left.pedal(tick + PEDAL_CATCH, down=True)
    end = BAR_COUNT * BAR
    left.pedal(end, down=False)

    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    midi.tracks.append(_conductor(end))
    midi.tracks.append(right.to_track("Right hand", end))
    midi.tracks.append(left.to_track("Left hand", end))
    return midi


def write_prelude(path: Path = OUTPUT) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prelude_in_c().save(path)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=OUTPUT,
        help=f"where to write the prelude (default: {OUTPUT})",
    )
    args = parser.parse_args(argv)
    path = write_prelude(args.output)
    midi = mido.MidiFile(path)
    notes = sum(
        1 for track in midi.tracks for msg in track if msg.type == "note_on" and msg.velocity > 0
    )
    print(f"wrote {path} ({notes} notes, {midi.length:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
