"""A/V sync, measured in the rendered file: each note is heard when its key lights up.

Four isolated notes (0.25 s each, 1 s apart) are rendered with synthesized sound.
From the finished MP4 we take the audio onsets (decode_audio + detect_onsets) and,
for each note, the first frame where its key differs from frame 0 (nothing pressed).
Pitch 67 is avoided: TimGM6mb's G4 sample starts with 7 ms of silence.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from notefall.common.audio import decode_audio, detect_onsets
from notefall.common.engine import FrameRenderer
from notefall.common.midi import read_song
from notefall.common.pipeline import render_video

from tests.e2e._e2e_helpers import isolated_notes, read_all, small_settings

PITCHES = (60, 64, 69, 72)  # white keys, none is 67
LEAD_IN = 1.0
RATE = 48_000
LIT_LEVEL = 25.0  # mean |Δ| over a 5x5 patch; a pressed key changes it by ~60


@pytest.mark.parametrize("fps", [30, 60])
def test_audio_onsets_match_lit_keys(tmp_path: Path, fps: int) -> None:
    song_bytes = isolated_notes(PITCHES)  # notes at song 0, 1, 2, 3 s
    settings = small_settings(resolution="320x180", fps=fps, lead_in=LEAD_IN, tail=0.5)
    out = tmp_path / f"sync{fps}.mp4"
    result = render_video(song_bytes, out, settings)
    period = 1.0 / fps

    onsets = detect_onsets(decode_audio(out, RATE), RATE)
    assert len(onsets) == len(PITCHES), f"expected one onset per note, got {onsets}"
    # The sound itself is where the MIDI file puts it (lead-in + note start).
    for k, onset in enumerate(onsets):
        assert onset == pytest.approx(LEAD_IN + k, abs=period), onsets

    renderer = FrameRenderer(read_song(song_bytes), settings)
    keys, layout = renderer.keys, renderer.layout
    y = layout.hit_y + int(layout.keyboard_height * 0.85)  # low on the key: white keys only there
    frames = read_all(out, result.frames)
    base = frames[0].astype(np.int16)

    for pitch, onset in zip(PITCHES, onsets, strict=True):
        x = int(round((keys.key_x0[pitch] + keys.key_x1[pitch]) / 2))
        patch = (slice(y - 2, y + 3), slice(x - 2, x + 3))
        change = [float(np.abs(f[patch].astype(np.int16) - base[patch]).mean()) for f in frames]
        lit = [i for i, c in enumerate(change) if c > LIT_LEVEL]
        assert lit, f"key {pitch} never lights up (largest change {max(change):.1f})"
        first_lit = lit[0] / fps
        assert abs(onset - first_lit) <= period + 1e-9, (
            f"pitch {pitch}: heard at {onset:.4f} s, lit at frame {lit[0]} ({first_lit:.4f} s)"
        )
        assert first_lit >= onset - period - 1e-9, f"pitch {pitch} lights up before it sounds"
        # It lights for the note's 0.25 s (and not for the other notes).
        assert lit == list(range(lit[0], lit[-1] + 1))
        assert 0.2 <= (lit[-1] + 1 - lit[0]) / fps <= 0.45
