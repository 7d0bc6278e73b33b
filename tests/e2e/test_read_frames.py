"""The frame reader the e2e tests (and the rest of the project) rely on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from notefall.common.pipeline import render_video
from notefall.common.video.ffmpeg import read_frames

from tests.e2e._e2e_helpers import busy_song, small_settings


def test_read_frames_many_indices(tmp_path: Path) -> None:
    """Reading more than 100 frames in one call works (a whole short video).

    Bug: read_frames joins one ``eq(n,i)`` per frame with ``+`` into a single
    select expression; FFmpeg's expression parser gives up beyond 100 terms
    ("Error while parsing expression ... Error initializing filters").
    """
    out = tmp_path / "v.mp4"
    result = render_video(busy_song(), out, small_settings(fps=60, no_audio=True))  # 198 frames
    assert result.frames > 101
    frames = read_frames(out, list(range(result.frames)))
    assert len(frames) == result.frames
    # Same frames as reading them in small batches.
    for i in (0, 100, 101, result.frames - 1):
        assert np.array_equal(frames[i], read_frames(out, [i])[0])
