"""Songs, settings and file checks shared by the end-to-end tests.

Everything is small (256x144 or 320x180, songs of a few seconds) so the whole
folder runs quickly; the checks read the *rendered files* back with FFmpeg.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import wave
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from notefall.common.settings import RenderSettings
from notefall.common.video.ffmpeg import read_frames

from tests.support.midi_factory import make_midi

SMALL = "256x144"
BPM = 120  # 0.5 s per beat in every song below

# read_frames builds one select expression per call; keep each call well under
# FFmpeg's expression depth limit (see test_read_frames_many_indices).
READ_CHUNK = 90


def isolated_notes(
    pitches: Sequence[int], *, gap_beats: float = 2.0, length_beats: float = 0.5
) -> bytes:
    """One note per pitch, ``gap_beats`` apart (beat 0 first), each ``length_beats`` long."""
    notes = [(i * gap_beats, length_beats, p, 100, 0) for i, p in enumerate(pitches)]
    return make_midi(notes=notes, tempo_map=((0, BPM),))


def busy_song() -> bytes:
    """2.3 s of overlapping notes, so something moves in every frame."""
    notes = [(k * 0.5, 1.0, 60 + (k * 5) % 17, 90, 0) for k in range(8)]  # last ends at beat 4.5
    notes.append((3.6, 1.0, 72, 100, 0))  # song ends at beat 4.6 = 2.3 s
    return make_midi(notes=notes, tempo_map=((0, BPM),))


BUSY_SONG_SECONDS = 2.3


def small_settings(**overrides: Any) -> RenderSettings:
    values: dict[str, Any] = {
        "resolution": SMALL,
        "preset": "draft",
        "lead_in": 0.5,
        "tail": 0.5,
    }
    values.update(overrides)
    return RenderSettings(**values)


def expected_frames(video_seconds: float, fps: int) -> int:
    return math.ceil(video_seconds * fps - 1e-6)


def read_all(path: Path, count: int, pix_fmt: str = "rgb24") -> list[np.ndarray]:
    """Every frame ``0..count-1`` of ``path``, decoded in chunks."""
    frames: list[np.ndarray] = []
    for a in range(0, count, READ_CHUNK):
        frames += read_frames(path, list(range(a, min(count, a + READ_CHUNK))), pix_fmt=pix_fmt)
    return frames


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def entries(folder: Path) -> list[str]:
    """Every entry of a folder, hidden ones included."""
    return sorted(os.listdir(folder))


def write_wav(path: Path, seconds: float, rate: int = 48_000, freq: float = 440.0) -> Path:
    """A stereo 16-bit tone (the user's own "recording")."""
    t = np.arange(int(seconds * rate)) / rate
    tone = (0.3 * 32767 * np.sin(2 * np.pi * freq * t)).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.repeat(tone[:, None], 2, axis=1).tobytes())
    return path


def cli_command(*args: str | os.PathLike[str]) -> list[str]:
    return [sys.executable, "-m", "notefall.cli", *map(str, args)]


def run_cli(
    *args: str | os.PathLike[str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli_command(*args), capture_output=True, text=True, timeout=timeout)
