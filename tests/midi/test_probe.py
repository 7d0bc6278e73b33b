"""``describe`` and ``format_probe`` for ``notefall probe``."""

from __future__ import annotations

import json

from notefall.common.midi import describe, format_probe, read_song

from tests.support.midi_factory import make_midi


def song():
    data = make_midi(
        [(0, 1, 21, 90, 0), (1, 1, 108, 90, 0), (0, 1, 36, 100, 9, 2)],
        tempo_map=[(0, 120), (2, 60)],
        pedal=[(0, 1)],
        track_names=["Piano", "Kit"],
        title="Probe Test",
    )
    return read_song(data)


def test_describe_is_json_serialisable_and_complete():
    summary = describe(song())
    assert json.loads(json.dumps(summary)) == summary
    assert summary["title"] == "Probe Test"
    assert summary["midi_type"] == 1
    assert summary["note_count"] == 3
    assert summary["drum_note_count"] == 1
    assert summary["key_range"] == {"low": 21, "high": 108, "low_name": "A0", "high_name": "C8"}
    assert summary["pedal_count"] == 1
    assert summary["duration"] == 1.0
    assert [t["name"] for t in summary["tracks"]] == ["Probe Test", "Piano", "Kit"]
    assert summary["tracks"][2]["channels"] == [10]  # 1-based for people
    assert summary["tracks"][2]["is_drums"] is True
    assert summary["tempo_changes"] == [{"time": 0.0, "bpm": 120.0}, {"time": 1.0, "bpm": 60.0}]
    assert summary["time_signatures"] == [{"time": 0.0, "numerator": 4, "denominator": 4}]
    assert summary["warnings"] == []


def test_describe_of_a_song_without_pitched_notes_has_no_key_range():
    summary = describe(read_song(make_midi([(0, 1, 36, 100, 9)])))
    assert summary["key_range"] is None


def test_format_probe_prints_a_readable_summary():
    text = format_probe(describe(song()))
    assert "Title:     Probe Test" in text
    assert "A0–C8" in text
    assert "0:01.0 (1.000 s)" in text
    assert "120 bpm (+1 changes)" in text
    assert "[drums]" in text
    assert "Warnings" not in text


def test_format_probe_lists_warnings():
    data = make_midi([(0, 1, 60, 90, 0)]) + b"junk!"
    text = format_probe(describe(read_song(data)))
    assert "Warnings:" in text and "junk after the last track" in text
