"""Real MIDI files written by other software (see data/README.md), cross-checked
note by note against an independent reading with mido."""

from __future__ import annotations

from pathlib import Path

import mido
import numpy as np
import pytest
from notefall.common.midi import MIN_NOTE_SECONDS, read_song

from tests.midi.mido_reference import mido_notes

DATA = Path(__file__).parent / "data"
FILES = sorted(DATA.glob("*.mid"))


def test_the_fixture_folder_holds_the_documented_files():
    assert len(FILES) == 5
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    assert all(f.name in readme for f in FILES)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_real_file_notes_match_an_independent_mido_reading(path: Path):
    song = read_song(path)
    expected = mido_notes(mido.MidiFile(path))
    assert song.note_count == len(expected) > 0
    notes = song.notes[
        np.lexsort(
            (song.notes["track"], song.notes["channel"], song.notes["pitch"], song.notes["start"])
        )
    ]
    ref = np.array([e[:5] for e in expected], dtype=float)
    np.testing.assert_allclose(notes["start"], ref[:, 0], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(notes["pitch"], ref[:, 2])
    np.testing.assert_array_equal(notes["velocity"], ref[:, 3])
    np.testing.assert_array_equal(notes["channel"], ref[:, 4])
    # Ends agree except where the reader lengthened a too-short note.
    raw_end = np.maximum(ref[:, 1], ref[:, 0])
    lengthened = notes["end"] > raw_end + 1e-9
    np.testing.assert_allclose(notes["end"][~lengthened], raw_end[~lengthened], atol=1e-9)
    assert np.all(notes["end"][lengthened] - notes["start"][lengthened] <= MIN_NOTE_SECONDS + 1e-9)
    assert np.all(notes["sound_end"] >= notes["end"])
    assert song.duration >= float(notes["sound_end"].max())


def test_real_file_with_pedal_holds_notes_past_their_release():
    song = read_song(DATA / "m21_test03_pedal.mid")
    assert song.pedals.shape[0] == 12
    assert np.count_nonzero(song.notes["sound_end"] > song.notes["end"]) > 0


def test_real_file_with_shift_jis_names_wrong_track_count_and_tempo_map():
    song = read_song(DATA / "m21_test04_beethoven7_sjis.mid")
    assert song.title == "ベートーベン交響曲第７番第２楽章"
    assert len(song.tracks) == 19
    assert len(song.tempo_changes) > 50
    assert any("announced 18 tracks" in w for w in song.warnings)


def test_real_type_0_file_uses_its_sequence_name_as_title():
    song = read_song(DATA / "m21_test06_type0.mid")
    assert song.midi_type == 0
    assert song.title == "Miss Galvin's"
