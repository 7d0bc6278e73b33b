"""Sustain pedal, synthesizer controls, track and song names."""

from __future__ import annotations

from pathlib import Path

import mido
import pytest
from notefall.common.midi import read_song
from notefall.common.song import CONTROL_CC, CONTROL_PITCHBEND, CONTROL_PROGRAM

from tests.support.midi_factory import make_midi, smf, track, vlq


def test_sustain_pedal_becomes_spans_per_channel():
    song = read_song(make_midi([(0, 8, 60, 90, 0)], pedal=[(1, 2), (3, 4, 2)]))
    spans = [(float(p["start"]), float(p["end"]), int(p["channel"])) for p in song.pedals]
    assert spans == [(0.5, 1.0, 0), (1.5, 2.0, 2)]


def test_pedal_values_below_64_count_as_up_and_repeated_downs_are_one_press():
    body = track(
        b"\x00\xb0\x40\x7f",
        vlq(240) + b"\xb0\x40\x50",  # still down (>= 64)
        vlq(240) + b"\xb0\x40\x3f",  # up (< 64)
    )
    song = read_song(smf(body, midi_type=0))
    assert [(float(p["start"]), float(p["end"])) for p in song.pedals] == [(0.0, 0.5)]


def test_sound_end_extends_to_pedal_release_when_key_released_under_pedal():
    song = read_song(make_midi([(0, 1, 60, 90, 0), (4, 1, 62, 90, 0)], pedal=[(0.5, 3)]))
    held, free = song.notes
    assert (held["end"], held["sound_end"]) == (0.5, 1.5)
    assert (free["end"], free["sound_end"]) == (2.5, 2.5)


def test_pedal_on_another_channel_does_not_hold_the_note():
    song = read_song(make_midi([(0, 1, 60, 90, 0)], pedal=[(0.5, 3, 1)]))
    assert song.notes["sound_end"][0] == 0.5


def test_sound_end_stops_at_the_next_strike_of_the_same_key():
    song = read_song(make_midi([(0, 1, 60, 90, 0), (2, 1, 60, 90, 0)], pedal=[(0.5, 4)]))
    first, second = song.notes
    assert first["sound_end"] == 1.0  # re-struck at beat 2
    assert second["sound_end"] == 2.0


def test_pedal_never_released_holds_until_the_song_ends():
    extra = [(1, 1, mido.Message("control_change", control=64, value=127))]
    marker = [(6, 0, mido.MetaMessage("marker", text="fine"))]
    song = read_song(make_midi([(0, 2, 60, 90, 0)], extra=extra + marker))
    assert [(float(p["start"]), float(p["end"])) for p in song.pedals] == [(0.5, 3.0)]
    assert song.notes["sound_end"][0] == 3.0
    assert song.duration == 3.0


def test_controls_list_program_changes_with_bank_control_changes_and_pitch_bends_in_time_order():
    extra = [
        (0, 1, mido.Message("control_change", channel=2, control=0, value=1)),
        (0, 1, mido.Message("control_change", channel=2, control=32, value=3)),
        (0.5, 1, mido.Message("program_change", channel=2, program=48)),
        (1, 1, mido.Message("pitchwheel", channel=2, pitch=4096)),  # mido: -8192..8191
        (2, 1, mido.Message("program_change", channel=3, program=5)),
    ]
    song = read_song(make_midi([(0, 4, 60, 90, 2)], extra=extra))
    got = [
        (float(c["time"]), int(c["channel"]), int(c["kind"]), int(c["a"]), int(c["b"]))
        for c in song.controls
    ]
    assert got == [
        (0.0, 2, CONTROL_CC, 0, 1),
        (0.0, 2, CONTROL_CC, 32, 3),
        (0.25, 2, CONTROL_PROGRAM, 48, 1 * 128 + 3),
        (0.5, 2, CONTROL_PITCHBEND, 0, 4096 + 8192),
        (1.0, 3, CONTROL_PROGRAM, 5, 0),
    ]


def test_tracks_report_names_instruments_channels_and_note_counts():
    extra = [(0, 2, mido.MetaMessage("instrument_name", name="Steinway D"))]
    data = make_midi(
        [(0, 1, 60, 90, 0, 1), (1, 1, 62, 90, 0, 1), (0, 1, 36, 100, 9, 2), (0, 1, 40, 80, 4, 3)],
        programs={4: 40},
        track_names=["Melody", "Kit", "Fiddle"],
        extra=extra,
        title="Conductor",
    )
    tracks = read_song(data).tracks
    assert [(t.index, t.name, t.channels, t.note_count) for t in tracks] == [
        (0, "Conductor", (), 0),
        (1, "Melody", (0,), 2),
        (2, "Kit", (9,), 1),
        (3, "Fiddle", (4,), 1),
    ]
    assert tracks[1].instrument == "Acoustic Grand Piano"  # GM default program 0
    assert tracks[2].instrument == "Steinway D"  # the instrument-name meta wins
    assert tracks[2].is_drums
    assert (tracks[3].program, tracks[3].instrument) == (40, "Violin")
    assert tracks[0].instrument == ""  # a conductor track plays nothing


def test_instrument_falls_back_to_the_general_midi_name_of_the_first_program():
    data = make_midi([(0, 1, 60, 90, 0)], programs={0: 40})
    info = read_song(data).tracks[1]
    assert (info.program, info.instrument) == (40, "Violin")


def test_drum_track_instrument_is_drums():
    info = read_song(make_midi([(0, 1, 36, 90, 9)])).tracks[1]
    assert info.instrument == "Drums"


def test_title_comes_from_the_first_track_name_when_it_looks_like_a_title():
    data = make_midi([(0, 1, 60, 90, 0)], title="Gymnopédie No. 1")
    assert read_song(data, name="file").title == "Gymnopédie No. 1"


@pytest.mark.parametrize("generic", ["Track 1", "Tempo Track", "Piano", "Untitled", "Violin", "  "])
def test_generic_first_track_names_fall_back_to_the_given_name(generic):
    data = make_midi([(0, 1, 60, 90, 0)], title=generic)
    assert read_song(data, name="My Song").title == "My Song"


def test_title_falls_back_to_the_file_stem_for_a_path(tmp_path: Path):
    path = tmp_path / "moonlight_sonata.mid"
    path.write_bytes(make_midi([(0, 1, 60, 90, 0)]))
    song = read_song(path)
    assert song.title == "moonlight_sonata"
    assert song.note_count == 1


def test_shift_jis_and_latin_1_names_are_decoded():
    jp = "ピアノ曲".encode("cp932")
    body = track(b"\x00\xff\x03" + bytes([len(jp)]) + jp, b"\x00\x90\x3c\x40", b"\x10\x80\x3c\x00")
    latin = "Müller Étude".encode("cp1252")
    body2 = track(b"\x00\xff\x03" + bytes([len(latin)]) + latin)
    song = read_song(smf(body, body2))
    assert [t.name for t in song.tracks] == ["ピアノ曲", "Müller Étude"]


def test_tempo_changes_report_bpm_and_a_default_when_the_file_has_none_at_zero():
    song = read_song(make_midi([(0, 1, 60, 90, 0)], tempo_map=[(2, 90)]))
    assert [t.time for t in song.tempo_changes] == [0.0, 1.0]
    assert [t.bpm for t in song.tempo_changes] == [120.0, pytest.approx(90.0, abs=1e-4)]
