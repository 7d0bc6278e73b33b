"""Builders shared by the audio tests (a plain module: conftest.py names may clash)."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import numpy as np
from notefall.common.song import CONTROL_DTYPE, NOTE_DTYPE, Song
from notefall.common.timeline import Timeline
from notefall.common.video.ffmpeg import ffmpeg_exe

RATE = 48_000


def make_song(notes: list[tuple], controls: list[tuple] = (), pedals=None) -> Song:
    """notes: (start, end, pitch[, velocity[, channel[, sound_end]]]).

    controls: CONTROL_DTYPE rows (time, channel, kind, a, b)."""
    arr = np.zeros(len(notes), NOTE_DTYPE)
    for i, n in enumerate(notes):
        start, end, pitch = n[:3]
        arr[i] = (start, end, n[5] if len(n) > 5 else end, pitch,
                  n[3] if len(n) > 3 else 100, n[4] if len(n) > 4 else 0, 0)  # fmt: skip
    arr = arr[np.lexsort((arr["pitch"], arr["start"]))]
    ctl = np.array(list(controls), CONTROL_DTYPE) if controls else np.zeros(0, CONTROL_DTYPE)
    song = Song(
        notes=arr, controls=ctl, duration=float(arr["sound_end"].max()) if len(arr) else 0.0
    )
    if pedals is not None:
        song.pedals = pedals
    return song


def timeline(song_to: float, *, speed=1.0, song_from=0.0, lead_in=0.0, tail=0.0) -> Timeline:
    return Timeline(fps=30, speed=speed, song_from=song_from, song_to=song_to,
                    lead_in=lead_in, tail=tail)  # fmt: skip


def read_wav(path: Path) -> tuple[np.ndarray, wave._wave_params]:
    with wave.open(str(path)) as w:
        params = w.getparams()
        data = np.frombuffer(w.readframes(params.nframes), "<i2").reshape(-1, params.nchannels)
    return data.astype(np.float32) / 32768.0, params


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    samples = samples if samples.ndim == 2 else samples[:, None]
    with wave.open(str(path), "wb") as w:
        w.setnchannels(samples.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.round(samples * 32767).astype("<i2").tobytes())


def click_track(seconds: float, rate: int, clicks: list[float], channels: int = 1) -> np.ndarray:
    x = np.zeros((round(seconds * rate), channels), np.float32)
    burst = 0.6 * np.sin(2 * np.pi * 1000 * np.arange(round(0.005 * rate)) / rate)
    for c in clicks:
        i = round(c * rate)
        x[i : i + burst.shape[0], 0] = burst
    return x


def encode(src: Path, dst: Path, codec: str) -> Path:
    args = [ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(src), "-c:a", codec, str(dst)]
    subprocess.run(args, check=True)
    return dst


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
