"""Messy real-world containers are repaired; unusable input fails with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest
from notefall.common.errors import LimitExceeded, MidiError
from notefall.common.midi import MidiLimits, read_song

from tests.support.midi_factory import (
    chunk,
    header,
    make_midi,
    rmid,
    smf,
    tempo_event,
    track,
    vlq,
)

NOTE = track(b"\x00\x90\x3c\x64", vlq(480) + b"\x80\x3c\x00")


def pitches(song):
    return sorted(int(p) for p in song.notes["pitch"])


# --- repaired silently (with a warning) ---------------------------------------------


def test_rmid_riff_wrapper_is_unwrapped():
    song = read_song(rmid(make_midi([(0, 1, 60, 90, 0)])))
    assert pitches(song) == [60]
    assert song.warnings == ()


def test_unknown_chunk_between_tracks_is_skipped_with_a_warning():
    data = (
        header(1, 2) + chunk(b"MTrk", NOTE) + chunk(b"XFIH", b"\x01\x02\x03") + chunk(b"MTrk", NOTE)
    )
    song = read_song(data)
    assert pitches(song) == [60, 60]
    assert "Skipped 1 unknown chunk in the file." in song.warnings


def test_junk_after_the_last_track_is_ignored_with_a_warning():
    song = read_song(smf(NOTE) + b"\x13\x37garbage from a download manager")
    assert pitches(song) == [60]
    assert any("junk after the last track" in w for w in song.warnings)


def test_zero_padding_after_the_last_track_is_not_worth_a_warning():
    song = read_song(smf(NOTE) + bytes(100))
    assert song.warnings == ()


def test_missing_end_of_track_is_tolerated():
    body = track(b"\x00\x90\x3c\x64", vlq(480) + b"\x80\x3c\x00", end=False)
    song = read_song(smf(body, body))
    assert pitches(song) == [60, 60]


def test_track_length_declared_too_short_is_read_to_end_of_track():
    data = header(1, 2) + chunk(b"MTrk", NOTE, length=4) + chunk(b"MTrk", NOTE)
    song = read_song(data)
    assert pitches(song) == [60, 60]
    assert any("declared a wrong length" in w for w in song.warnings)


def test_track_length_declared_too_long_still_finds_the_next_track():
    data = header(1, 2) + chunk(b"MTrk", NOTE, length=len(NOTE) + 5) + chunk(b"MTrk", NOTE)
    song = read_song(data)
    assert pitches(song) == [60, 60]


def test_truncated_last_track_keeps_the_events_before_the_cut():
    full = smf(
        track(
            b"\x00\x90\x3c\x64",
            b"\x00\x90\x40\x64",
            vlq(480) + b"\x80\x3c\x00",
            vlq(480) + b"\x80\x40\x00",
        )
    )
    song = read_song(full[:-9])  # cut inside the last note-off
    assert pitches(song) == [60, 64]
    assert any("truncated" in w for w in song.warnings)
    assert any("never released" in w for w in song.warnings)


def test_header_announcing_more_tracks_than_present_is_tolerated():
    data = header(1, 5) + chunk(b"MTrk", NOTE)
    song = read_song(data)
    assert pitches(song) == [60]
    assert any("announced 5 tracks" in w for w in song.warnings)


def test_running_status_without_any_status_drops_the_rest_of_that_track_only():
    bad = track(b"\x00\x3c\x64")  # a data byte where a status byte is needed
    song = read_song(smf(NOTE, bad))
    assert pitches(song) == [60]
    assert any("Track 2 is damaged" in w for w in song.warnings)


def test_data_bytes_with_the_high_bit_set_are_masked_not_fatal():
    body = track(b"\x00\x90\x3c\xe4", vlq(480) + b"\x80\x3c\x00")
    song = read_song(smf(body))
    assert int(song.notes["velocity"][0]) == 0x64


def test_leading_junk_before_the_header_is_skipped():
    song = read_song(bytes(128) + make_midi([(0, 1, 60, 90, 0)]))
    assert pitches(song) == [60]
    assert any("before the MIDI header" in w for w in song.warnings)


def test_a_file_without_notes_is_a_valid_empty_song():
    song = read_song(smf(track(tempo_event(0, 100))))
    assert song.note_count == 0
    assert "The file contains no notes." in song.warnings


# --- refused ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "The file is empty"),
        (b"\x89PNG\r\n\x1a\n" + bytes(100), "it starts with PNG image data"),
        (b"\xff\xd8\xff\xe0" + bytes(50), "JPEG image data"),
        (b"Hello, this is a plain text file.\n", "plain text"),
        (b"<?xml version='1.0'?><score-partwise>", "MusicXML"),
        (b"ID3\x03\x00" + bytes(40), "MP3 audio"),
        (b"RIFF\x10\x00\x00\x00WAVEfmt ", "WAV audio"),
        (b"PK\x03\x04" + bytes(30), "ZIP archive"),
        (b"MThd\x00\x00", "truncated"),
        (b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0", "no tracks"),
        (b"MThd\x00\x00\x00\x02\x00\x01\x00\x01\x01\xe0", "header is corrupt"),
        (header(1, 1, 0) + chunk(b"MTrk", NOTE), "0 ticks per beat"),
        (header(1, 1, 0xE700) + chunk(b"MTrk", NOTE), "0 ticks per frame"),
        (header(7, 1) + chunk(b"MTrk", NOTE), "unknown format (7)"),
        (bytes(3000), "not a MIDI file"),
    ],
)
def test_unusable_input_raises_midi_error_with_a_specific_message(data, expected):
    with pytest.raises(MidiError) as info:
        read_song(data)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_type_2_files_are_refused_with_advice():
    with pytest.raises(MidiError, match=r"type 2 .*save it as type 0 or 1"):
        read_song(smf(NOTE, NOTE, midi_type=2))


def test_missing_file_and_folder_raise_midi_error(tmp_path: Path):
    with pytest.raises(MidiError, match="not found"):
        read_song(tmp_path / "nope.mid")
    with pytest.raises(MidiError, match="is a folder"):
        read_song(tmp_path)


def test_file_over_the_size_limit_is_refused_before_reading(tmp_path: Path):
    path = tmp_path / "huge.mid"
    path.write_bytes(make_midi([(0, 1, 60, 90, 0)]) + bytes(5000))
    with pytest.raises(LimitExceeded, match=r"limit is"):
        read_song(path, limits=MidiLimits(max_file_bytes=4096))


def test_bytes_over_the_default_64_mb_limit_are_refused():
    with pytest.raises(LimitExceeded) as info:
        read_song(bytes(64 * 1024 * 1024 + 1))
    assert info.value.code == "file_too_large"


# --- MIDI bombs ------------------------------------------------------------------------


def test_huge_delta_times_at_the_slowest_tempo_hit_the_duration_limit():
    # 16.7 s per beat and 2**28-tick gaps at 1 tick per beat: years of silence.
    body = track(
        tempo_event(0, 0xFFFFFF, microseconds=True),
        *(vlq(0x0FFFFFFF) + b"\x90\x3c\x64" for _ in range(1000)),
    )
    with pytest.raises(LimitExceeded) as info:
        read_song(smf(body, division=1))
    assert info.value.code == "too_long"
    assert "practically forever" in str(info.value) or " h " in str(info.value)


def test_fastest_tempo_with_many_tiny_notes_is_read_quickly():
    # 1 µs per beat: 200,000 notes inside a fraction of a second.
    events = [tempo_event(0, 1, microseconds=True)]
    events += [b"\x01\x90\x3c\x64\x01\x3c\x00"] * 100_000
    song = read_song(smf(track(*events)))
    assert song.note_count == 100_000
    assert song.duration < 1.0


def test_too_many_notes_raise_limit_exceeded():
    body = track(*([b"\x00\x90\x3c\x64\x00\x3c\x00"] * 5_000))
    with pytest.raises(LimitExceeded) as info:
        read_song(smf(body), limits=MidiLimits(max_notes=4_999))
    assert info.value.code == "too_many_notes"
    assert "4,999" in str(info.value)


def test_too_many_events_stop_the_scan_early():
    body = track(*([b"\x00\xb0\x07\x64"] * 50_000))
    with pytest.raises(LimitExceeded) as info:
        read_song(smf(body, body, body), limits=MidiLimits(max_events=60_000))
    assert info.value.code == "too_many_events"


def test_too_many_tracks_raise_limit_exceeded():
    data = header(1, 300) + chunk(b"MTrk", NOTE) * 300
    with pytest.raises(LimitExceeded, match="tracks"):
        read_song(data, limits=MidiLimits(max_tracks=200))


def test_many_empty_tracks_with_wrong_lengths_do_not_rescan_the_whole_file_each_time():
    # Each track claims length 0 and has no End-of-Track: only a few re-reads are granted.
    data = header(1, 2000) + (chunk(b"MTrk", b"", length=0) + b"\x00\xb0\x07\x64") * 2000
    song = read_song(data)
    assert song.note_count == 0


def test_too_many_tempo_events_raise_limit_exceeded():
    body = track(*([tempo_event(1, 120)] * 3_000))
    with pytest.raises(LimitExceeded, match="tempo, time-signature and name"):
        read_song(smf(body, body), limits=MidiLimits(max_meta_events=5_000))
