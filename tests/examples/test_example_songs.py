"""The bundled demo song (Bach's Prelude in C) and the benchmark's generated reference song."""

from __future__ import annotations

import importlib
import io
import sys
from dataclasses import dataclass
from pathlib import Path

import mido
import pytest
from notefall.common.examples import EXAMPLE_MIDI
from notefall.common.examples.make_examples import prelude_in_c

# `bench` is a top-level folder of the checkout, not part of the installed distribution,
# and the `pytest` script does not put the checkout on sys.path.
_CHECKOUT = str(Path(__file__).resolve().parents[2])
if _CHECKOUT not in sys.path:
    sys.path.insert(0, _CHECKOUT)
songs = importlib.import_module("bench.songs")
reference_song_bytes = songs.reference_song_bytes
write_reference_song = songs.write_reference_song

C4 = 60  # middle C, scientific pitch (notefall.common.song.note_name(60) == "C4")


@dataclass(frozen=True)
class Onset:
    tick: int
    pitch: int
    velocity: int
    channel: int
    track: int


def onsets(midi: mido.MidiFile) -> list[Onset]:
    found = []
    for index, track in enumerate(midi.tracks):
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                found.append(Onset(tick, msg.note, msg.velocity, msg.channel, index))
    return sorted(found, key=lambda o: (o.tick, o.pitch))


def pedal_events(midi: mido.MidiFile) -> list[tuple[int, int, int]]:
    """(tick, channel, value) of every sustain-pedal (CC64) event."""
    found = []
    for track in midi.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "control_change" and msg.control == 64:
                found.append((tick, msg.channel, msg.value))
    return sorted(found)


def tempi(midi: mido.MidiFile) -> list[tuple[int, float]]:
    found = []
    for track in midi.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo":
                found.append((tick, mido.tempo2bpm(msg.tempo)))
    return sorted(found)


# --- the demo song -------------------------------------------------------------------


@pytest.fixture(scope="module")
def prelude() -> mido.MidiFile:
    return mido.MidiFile(EXAMPLE_MIDI)


def bar_of(midi: mido.MidiFile, tick: int) -> int:
    return tick // (4 * midi.ticks_per_beat) + 1


def test_bundled_prelude_is_what_the_generator_writes() -> None:
    buffer = io.BytesIO()
    prelude_in_c().save(file=buffer)
    assert EXAMPLE_MIDI.read_bytes() == buffer.getvalue(), (
        "common/examples/prelude_in_c.mid is stale: "
        "run python -m notefall.common.examples.make_examples"
    )


def test_prelude_has_a_titled_conductor_track_and_two_piano_hands(prelude) -> None:
    assert prelude.type == 1
    names = [track.name for track in prelude.tracks]
    assert names[0] == "Prelude in C major, BWV 846"
    assert "Right hand" in names and "Left hand" in names
    for name in ("Right hand", "Left hand"):
        track = prelude.tracks[names.index(name)]
        programs = [msg.program for msg in track if msg.type == "program_change"]
        assert programs == [0]  # Acoustic Grand Piano
        assert any(msg.type == "note_on" for msg in track)


def test_prelude_has_every_note_of_bachs_35_bars(prelude) -> None:
    notes = onsets(prelude)
    # Bars 1-32: 2 half bars x (bass + tenor + 6 sixteenths) = 16 notes a bar; bars 33-34:
    # bass + tenor + 14 sixteenths; bar 35: a five-note chord. 32*16 + 2*16 + 5 = 549.
    # Encodings that tie the repeated bass, or add the spurious "Schwencke bar", land
    # between about 530 and 565; ours must be exactly Bach's text.
    assert len(notes) == 549
    assert {bar_of(prelude, n.tick) for n in notes} == set(range(1, 36))


def test_prelude_opens_with_the_c_major_figure(prelude) -> None:
    bar1 = [n for n in onsets(prelude) if bar_of(prelude, n.tick) == 1]
    first_figure = []
    for note in bar1:
        if note.pitch not in first_figure:
            first_figure.append(note.pitch)
    # C4 E4 G4 C5 E5 (called C3 E3 G3 C4 E4 where middle C is named C3), in that order.
    assert first_figure == [C4, C4 + 4, C4 + 7, C4 + 12, C4 + 16]
    # Broken, a sixteenth apart: bass, tenor (both held, left hand), then the right hand.
    sixteenth = prelude.ticks_per_beat // 4
    assert [(n.tick, n.pitch) for n in bar1[:5]] == [
        (i * sixteenth, pitch) for i, pitch in enumerate(first_figure)
    ]
    names = [track.name for track in prelude.tracks]
    assert [n.track for n in bar1[:5]] == [names.index("Left hand")] * 2 + [
        names.index("Right hand")
    ] * 3


def test_prelude_bass_line_follows_the_harmonic_plan(prelude) -> None:
    notes = onsets(prelude)
    bass = {}
    for note in notes:
        bar = bar_of(prelude, note.tick)
        bass[bar] = min(bass.get(bar, 127), note.pitch)
    expected = {
        1: 60, 2: 60, 3: 59, 7: 59, 9: 57, 10: 50, 11: 55, 13: 53, 15: 52, 17: 50,
        18: 43, 19: 48, 21: 41, 22: 42, 23: 44, 24: 43, 28: 43, 31: 43, 32: 36, 35: 36,
    }  # fmt: skip
    assert {bar: bass[bar] for bar in expected} == expected


def test_prelude_ends_on_a_c_major_chord(prelude) -> None:
    notes = onsets(prelude)
    last_tick = notes[-1].tick
    final = sorted(n.pitch for n in notes if n.tick == last_tick)
    assert len(final) >= 3
    assert {p % 12 for p in final} == {0, 4, 7}
    assert final[0] % 12 == 0  # root position, on the low C pedal
    assert bar_of(prelude, last_tick) == 35


def test_prelude_pedal_changes_every_half_bar(prelude) -> None:
    pedal = pedal_events(prelude)
    downs = [tick for tick, _channel, value in pedal if value >= 64]
    ups = [tick for tick, _channel, value in pedal if value < 64]
    half_bar = 2 * prelude.ticks_per_beat
    # One pedal-down per half bar of bars 1-34, one for the final chord.
    assert len(downs) == 69
    assert {tick // half_bar for tick in downs} == set(range(69))
    assert len(ups) == len(downs)  # every pedal-down is lifted; the last after the chord
    assert ups[-1] >= onsets(prelude)[-1].tick
    note_channels = {n.channel for n in onsets(prelude)}
    assert {channel for _tick, channel, _value in pedal} == note_channels


def test_prelude_tempo_is_steady_then_slows_over_the_last_three_bars(prelude) -> None:
    changes = tempi(prelude)
    assert changes[0][0] == 0 and 66 <= changes[0][1] <= 72
    bar = 4 * prelude.ticks_per_beat
    ritardando = [bpm for tick, bpm in changes if tick >= 32 * bar]
    assert len(ritardando) >= 3
    assert ritardando == sorted(ritardando, reverse=True)
    assert ritardando[-1] < changes[0][1] - 10
    assert all(tick == 0 or tick >= 32 * bar for tick, _bpm in changes)
    assert 110 < prelude.length < 150  # seconds; performances take about two minutes


def test_prelude_velocities_are_humanised(prelude) -> None:
    velocities = [n.velocity for n in onsets(prelude)]
    assert min(velocities) >= 40 and max(velocities) <= 100
    assert len(set(velocities)) >= 15


# --- the benchmark's reference song --------------------------------------------------


@pytest.fixture(scope="module")
def reference() -> mido.MidiFile:
    return mido.MidiFile(file=io.BytesIO(reference_song_bytes(3.0)))


def test_reference_song_is_the_same_bytes_every_call() -> None:
    assert reference_song_bytes(1.0, seed=7) == reference_song_bytes(1.0, seed=7)
    assert reference_song_bytes(1.0, seed=7) != reference_song_bytes(1.0, seed=8)


def test_reference_song_is_a_two_hand_type_1_file(reference) -> None:
    assert reference.type == 1
    assert [track.name for track in reference.tracks] == ["Right hand", "Left hand"]
    for index in (0, 1):
        assert any(n.track == index for n in onsets(reference))


def test_reference_song_is_dense_and_as_long_as_asked(reference) -> None:
    assert abs(reference.length - 180.0) < 1.0
    assert 2550 <= len(onsets(reference)) <= 3450  # about 3000 notes, ±15 %


def test_reference_song_scales_with_its_length() -> None:
    one = mido.MidiFile(file=io.BytesIO(reference_song_bytes(1.0)))
    assert abs(one.length - 60.0) < 1.0
    assert 850 <= len(onsets(one)) <= 1150


def test_reference_song_spans_most_of_the_keyboard(reference) -> None:
    notes = onsets(reference)
    lowest = min(n.pitch for n in notes)
    highest = max(n.pitch for n in notes)
    assert highest - lowest >= 72  # six octaves
    assert lowest >= 21 and highest <= 108  # on an 88-key piano
    right = [n.pitch for n in notes if n.track == 0]
    left = [n.pitch for n in notes if n.track == 1]
    assert min(right) >= 60 and max(left) <= 60


def test_reference_song_changes_tempo(reference) -> None:
    changes = tempi(reference)
    assert len(changes) >= 5  # the initial tempo and at least four changes
    bpms = [bpm for _tick, bpm in changes]
    assert min(bpms) <= 90 and max(bpms) >= 120
    assert len({round(bpm) for bpm in bpms}) >= 4


def test_reference_song_pedals_every_bar_and_keeps_velocities_in_range(reference) -> None:
    pedal = pedal_events(reference)
    downs = [tick for tick, _channel, value in pedal if value >= 64]
    bars = max(n.tick for n in onsets(reference)) // (4 * reference.ticks_per_beat) + 1
    assert len({tick // (4 * reference.ticks_per_beat) for tick in downs}) == bars
    assert any(value < 64 for _tick, _channel, value in pedal)
    velocities = [n.velocity for n in onsets(reference)]
    assert min(velocities) >= 40 and max(velocities) <= 115


def test_write_reference_song_writes_those_bytes(tmp_path) -> None:
    path = write_reference_song(tmp_path / "ref.mid", minutes=0.5)
    assert path.read_bytes() == reference_song_bytes(0.5)
