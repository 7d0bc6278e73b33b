"""Note pairing, tempo maps and time divisions."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from notefall.common.midi import MIN_NOTE_SECONDS, read_song

from tests.support.midi_factory import make_midi, smf, smpte_division, tempo_event, track, vlq


def rows(song):
    return [
        (round(float(n["start"]), 9), round(float(n["end"]), 9), int(n["pitch"]))
        for n in song.notes
    ]


def test_notes_carry_start_end_pitch_velocity_channel_and_track():
    song = read_song(make_midi([(0, 1, 60, 100, 0), (1, 0.5, 64, 90, 3)]))
    n = song.notes
    assert rows(song) == [(0.0, 0.5, 60), (0.5, 0.75, 64)]
    assert list(n["velocity"]) == [100, 90]
    assert list(n["channel"]) == [0, 3]
    assert list(n["track"]) == [1, 1]
    assert song.midi_type == 1


def test_notes_are_sorted_by_start_then_pitch():
    song = read_song(make_midi([(1, 1, 50, 80, 0), (0, 1, 70, 80, 0), (0, 1, 40, 80, 1)]))
    assert [(float(n["start"]), int(n["pitch"])) for n in song.notes] == [
        (0.0, 40),
        (0.0, 70),
        (0.5, 50),
    ]


def test_type_0_file_gives_the_same_notes_as_type_1():
    notes = [(0, 1, 60, 100, 0), (0.5, 2, 67, 80, 1), (3, 1, 72, 70, 0)]
    tempo = [(0, 100), (2, 150)]
    one = read_song(make_midi(notes, tempo_map=tempo, type=1))
    zero = read_song(make_midi(notes, tempo_map=tempo, type=0))
    assert zero.midi_type == 0
    assert rows(zero) == rows(one)


def test_tempo_change_mid_song_is_applied_from_its_tick():
    # 120 bpm for 2 beats (1 s), then 60 bpm: beat 3 is at 1 s + 1 s.
    song = read_song(make_midi([(3, 1, 60, 100, 0)], tempo_map=[(0, 120), (2, 60)]))
    assert rows(song) == [(2.0, 3.0, 60)]
    assert [(t.time, t.bpm) for t in song.tempo_changes] == [(0.0, 120.0), (1.0, 60.0)]


def test_thousands_of_tempo_changes_accumulate_exactly():
    # 5,000 tempo changes, one every 7 ticks, alternating awkward µs values; the
    # expected time is summed with Fractions by hand.
    ppq = 384
    events = []
    expected = Fraction(0)
    tempos = (333_333, 517_241, 652_174, 1_000_001)
    for k in range(5_000):
        us = tempos[k % 4]
        events.append(tempo_event(0 if k == 0 else 7, us, microseconds=True))
        expected += Fraction(7 * us, ppq * 1_000_000) if k < 4_999 else 0
    last = tempos[4_999 % 4]
    expected += Fraction(5 * last, ppq * 1_000_000)
    conductor = track(*events)
    notes = track(vlq(7 * 4_999 + 5) + b"\x90\x3c\x64", vlq(ppq) + b"\x80\x3c\x40")
    song = read_song(smf(conductor, notes, division=ppq))
    assert song.notes["start"][0] == float(expected)  # exactly the correctly rounded value
    end = expected + Fraction(ppq * last, ppq * 1_000_000)
    assert song.notes["end"][0] == float(end)


def test_tempo_event_in_a_later_track_applies_to_every_track():
    track1 = track(b"\x00\x90\x3c\x64", vlq(960) + b"\x80\x3c\x40")
    track2 = track(vlq(480) + b"\xff\x51\x03" + (1_000_000).to_bytes(3, "big"))
    song = read_song(smf(b"\x00\xff\x2f\x00", track1, track2, division=480))
    # 480 ticks at 120 bpm (0.5 s) + 480 ticks at 60 bpm (1 s)
    assert rows(song) == [(0.0, 1.5, 60)]


@pytest.mark.parametrize(
    ("fps", "tpf", "ticks", "seconds"),
    [
        (25, 40, 1000, Fraction(1)),
        (24, 4, 96, Fraction(1)),
        (30, 80, 1200, Fraction(1, 2)),
        (29, 40, 1200, Fraction(1200 * 1001, 30000 * 40)),
    ],
)
def test_smpte_time_division_ignores_tempo_and_uses_frames(fps, tpf, ticks, seconds):
    body = track(
        tempo_event(0, 40),  # must not matter with SMPTE timing
        vlq(ticks) + b"\x90\x3c\x64",
        vlq(ticks) + b"\x80\x3c\x00",
    )
    song = read_song(smf(body, midi_type=0, division=smpte_division(fps, tpf)))
    assert song.notes["start"][0] == float(seconds)
    assert song.notes["end"][0] == float(2 * seconds)


def test_running_status_is_followed_across_notes_and_metas():
    body = track(
        b"\x00\x90\x3c\x64",  # note on C4
        b"\x00\x40\x50",  # running status: note on E4
        b"\x00\xff\x01\x03abc",  # a text meta in between keeps the running status
        vlq(480) + b"\x3c\x00",  # running status, velocity 0: C4 off
        b"\x00\x40\x00",  # E4 off
        b"\x00\xb0\x07\x64",  # control change volume
        b"\x00\x0a\x40",  # running status: pan
    )
    song = read_song(smf(body, midi_type=0, division=480))
    assert rows(song) == [(0.0, 0.5, 60), (0.0, 0.5, 64)]
    assert [(int(c["a"]), int(c["b"])) for c in song.controls] == [(7, 100), (10, 64)]


def test_note_on_with_velocity_zero_releases_the_note():
    song = read_song(make_midi([(0, 2, 62, 90, 0)], note_off_velocity_zero=True))
    assert rows(song) == [(0.0, 1.0, 62)]
    assert song.warnings == ()


def test_overlapping_notes_of_one_pitch_are_closed_first_in_first_out():
    # on@0, on@1, off@2, off@3 (beats): the first release closes the oldest note.
    body = track(
        b"\x00\x90\x3c\x64",
        vlq(480) + b"\x90\x3c\x50",
        vlq(480) + b"\x80\x3c\x00",
        vlq(480) + b"\x80\x3c\x00",
    )
    song = read_song(smf(body, midi_type=0))
    assert rows(song) == [(0.0, 1.0, 60), (0.5, 1.5, 60)]
    assert list(song.notes["velocity"]) == [100, 80]


def test_a_note_off_with_no_open_note_is_ignored():
    body = track(b"\x00\x80\x3c\x00", b"\x00\x90\x3c\x64", vlq(480) + b"\x80\x3c\x00")
    assert rows(read_song(smf(body, midi_type=0))) == [(0.0, 0.5, 60)]


def test_notes_never_released_are_closed_at_the_end_with_a_warning():
    body = track(
        b"\x00\x90\x3c\x64",
        b"\x00\x90\x40\x64",
        vlq(480) + b"\x80\x40\x00",
        vlq(960) + b"\xff\x01\x01x",  # last event at beat 3
    )
    song = read_song(smf(body, midi_type=0))
    assert rows(song) == [(0.0, 0.5, 64), (0.0, 1.5, 60)] or rows(song) == [
        (0.0, 1.5, 60),
        (0.0, 0.5, 64),
    ]
    assert "1 note never released was closed at the end." in song.warnings
    assert song.duration == 1.5


def test_a_key_struck_again_without_release_ends_at_the_next_strike():
    # Guitar-style: three strikes of one key and a single release at the end.
    body = track(
        b"\x00\x90\x3c\x64",
        vlq(480) + b"\x90\x3c\x64",
        vlq(480) + b"\x90\x3c\x64",
        vlq(480) + b"\x80\x3c\x00",
    )
    song = read_song(smf(body, midi_type=0))
    assert rows(song) == [(0.0, 0.5, 60), (0.5, 1.0, 60), (1.0, 1.5, 60)]
    assert song.warnings == ()


def test_a_zero_length_note_gets_the_minimum_length():
    body = track(
        b"\x00\x90\x3c\x64",
        b"\x00\x80\x3c\x00",
        vlq(480) + b"\x90\x3e\x64",
        vlq(480) + b"\x80\x3e\x00",
    )
    song = read_song(smf(body, midi_type=0))
    first = song.notes[song.notes["pitch"] == 60][0]
    assert first["start"] == 0.0
    assert first["end"] == pytest.approx(MIN_NOTE_SECONDS)


def test_minimum_length_never_overlaps_the_next_strike_of_the_key():
    # Two 1-tick notes of one key 2 ms apart at 1 µs-per-beat-ish fast tempo.
    body = track(
        tempo_event(0, 4_000, microseconds=True),  # 480 ticks = 4 ms
        b"\x00\x90\x3c\x64",
        b"\x00\x80\x3c\x00",
        vlq(240) + b"\x90\x3c\x64",
        b"\x00\x80\x3c\x00",
    )
    song = read_song(smf(body, midi_type=0))
    assert list(song.notes["end"]) == [
        pytest.approx(0.002),
        pytest.approx(0.002 + MIN_NOTE_SECONDS),
    ]


def test_drum_channel_notes_are_kept_on_channel_9():
    song = read_song(make_midi([(0, 1, 36, 100, 9), (0, 1, 60, 100, 0)]))
    assert sorted(song.notes["channel"].tolist()) == [0, 9]
    assert song.pitch_range == (60, 60)


def test_duration_reaches_the_last_event_even_after_the_last_note():
    extra = [(8, 1, __import__("mido").MetaMessage("marker", text="end"))]
    song = read_song(make_midi([(0, 1, 60, 100, 0)], extra=extra))
    assert song.duration == 4.0


def test_sysex_and_unknown_meta_events_are_skipped():
    body = track(
        b"\x00\xf0\x05\x7e\x7f\x09\x01\xf7",  # GM reset sysex
        b"\x00\xf7\x02\x01\x02",  # escaped sysex
        b"\x00\xff\x7f\x04\x00\x00\x41\x01",  # sequencer-specific
        b"\x00\xff\x21\x01\x00",  # MIDI port
        b"\x00\xff\x60\x00",  # an undefined meta type
        b"\x00\x90\x3c\x64",
        vlq(480) + b"\x80\x3c\x00",
    )
    song = read_song(smf(body, midi_type=0))
    assert rows(song) == [(0.0, 0.5, 60)]
    assert song.warnings == ()


def test_time_signatures_are_reported_with_their_time():
    mido = pytest.importorskip("mido")
    extra = [(4, 0, mido.MetaMessage("time_signature", numerator=3, denominator=8))]
    song = read_song(make_midi([(0, 8, 60, 90, 0)], extra=extra))
    sigs = [(s.time, s.numerator, s.denominator) for s in song.time_signatures]
    assert sigs == [(0.0, 4, 4), (2.0, 3, 8)]


def test_duration_covers_the_longest_sound_end():
    song = read_song(make_midi([(0, 1, 60, 100, 0)], pedal=[(0.5, 6)]))
    assert song.duration == pytest.approx(3.0)
    assert np.all(song.notes["sound_end"] <= song.duration)


def test_duplicate_notes_at_the_same_tick_are_released_in_strike_order():
    body = track(
        b"\x00\x90\x3c\x64",  # C4 velocity 100
        b"\x00\x90\x3c\x32",  # C4 again at the same tick, velocity 50
        vlq(480) + b"\x80\x3c\x00",
        vlq(480) + b"\x80\x3c\x00",
    )
    song = read_song(smf(body, midi_type=0))
    assert [(int(n["velocity"]), float(n["end"])) for n in song.notes] == [(100, 0.5), (50, 1.0)]


def test_a_file_with_only_note_offs_has_no_notes():
    song = read_song(smf(track(b"\x00\x80\x3c\x00", b"\x00\x90\x40\x00"), midi_type=0))
    assert song.note_count == 0
