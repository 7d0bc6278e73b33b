"""Whatever bytes come in, read_song returns a Song or raises an InputError."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from notefall.common.errors import InputError
from notefall.common.midi import MidiLimits, read_song
from notefall.common.song import NOTE_DTYPE, Song

from tests.support.midi_factory import make_midi

# Small limits keep each example fast even when a mutation creates huge numbers.
LIMITS = MidiLimits(max_file_bytes=1 << 20, max_events=200_000, max_notes=50_000)
SEEDS = [
    make_midi(
        [(0, 1, 60, 90, 0), (0.5, 2, 64, 80, 1), (1, 1, 36, 100, 9)],
        tempo_map=[(0, 100), (1, 140)],
        pedal=[(0, 1.5)],
        programs={1: 40},
        title="Seed",
        track_names=["A"],
    ),
    make_midi([(0, 0.25, 72, 70, 0), (0.25, 0.25, 74, 70, 0)], type=0, smpte=(25, 40)),
    (Path(__file__).parent / "data" / "m21_k525short.mid").read_bytes(),
]


def check(data: bytes) -> None:
    try:
        song = read_song(data, limits=LIMITS)
    except InputError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert isinstance(song, Song)
    assert song.notes.dtype == NOTE_DTYPE
    if song.note_count:
        assert np.all(song.notes["end"] >= song.notes["start"])
        assert np.all(song.notes["sound_end"] >= song.notes["end"])
        assert np.all(np.diff(song.notes["start"]) >= 0)
        assert song.duration >= float(song.notes["sound_end"].max())
    assert np.isfinite(song.duration)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_arbitrary_bytes_give_a_song_or_an_input_error(data):
    check(data)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_after_a_valid_header_give_a_song_or_an_input_error(tail):
    check(b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0MTrk" + tail)


mutation = st.tuples(
    st.sampled_from(["flip", "insert", "delete", "set"]),
    st.integers(min_value=0, max_value=1 << 20),
    st.integers(min_value=0, max_value=255),
)


@settings(max_examples=250, deadline=None)
@given(
    st.sampled_from(range(len(SEEDS))),
    st.lists(mutation, min_size=1, max_size=8),
    st.integers(min_value=0, max_value=1 << 20),
)
def test_mutated_valid_midi_gives_a_song_or_an_input_error(seed, mutations, cut):
    data = bytearray(SEEDS[seed])
    for op, where, value in mutations:
        i = where % (len(data) + 1)
        if op == "insert":
            data.insert(i, value)
        elif data and op == "delete":
            del data[min(i, len(data) - 1)]
        elif data and op == "flip":
            data[min(i, len(data) - 1)] ^= 1 << (value % 8)
        elif data:
            data[min(i, len(data) - 1)] = value
    if cut % 3 == 0:  # sometimes also truncate
        data = data[: cut % (len(data) + 1)]
    check(bytes(data))
