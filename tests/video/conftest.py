"""Fixtures for the video tests; helpers live in ``_video_helpers``."""

from __future__ import annotations

from pathlib import Path

import pytest
from _video_helpers import write_wav


@pytest.fixture
def wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1.5 s of stereo 48 kHz tone, outside the test's output folder."""
    return write_wav(tmp_path_factory.mktemp("audio") / "tone.wav", 1.5)
