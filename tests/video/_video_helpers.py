"""Synthetic frames and audio for the video tests (small sizes keep the suite fast)."""

from __future__ import annotations

import hashlib
import math
import struct
import wave
from pathlib import Path

import numpy as np

W, H, FPS = 256, 144, 30


def yuv_frame(i: int, width: int = W, height: int = H) -> np.ndarray:
    """A moving gradient with frame number ``i`` drawn as white blocks (yuv420p)."""
    y = ((np.arange(width)[None, :] + np.arange(height)[:, None] + 3 * i) % 200 + 16).astype(
        np.uint8
    )
    for bit in range(8):  # the counter, in binary, along the top edge
        if i >> bit & 1:
            y[4:20, 8 + bit * 24 : 28 + bit * 24] = 235
    u = np.full((height // 2, width // 2), 128 + (i % 20), np.uint8)
    v = np.full((height // 2, width // 2), 100 + (i * 7) % 60, np.uint8)
    return np.concatenate([y.ravel(), u.ravel(), v.ravel()])


def rgba_frame(i: int, width: int = W, height: int = H) -> np.ndarray:
    """Opaque coloured left half (moving stripe), fully transparent right half."""
    f = np.zeros((height, width, 4), np.uint8)
    f[:, : width // 2] = (220, 60, 30, 255)
    x = (i * 4) % (width // 2 - 8)
    f[:, x : x + 8, :3] = (40, 200, 90)
    return f


def md5(frame: np.ndarray) -> str:
    return hashlib.md5(frame.tobytes()).hexdigest()


def write_wav(path: Path, seconds: float, rate: int = 48_000, channels: int = 2) -> Path:
    n = int(seconds * rate)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        samples = (
            int(8000 * math.sin(2 * math.pi * 440 * k / rate))
            for k in range(n)
            for _ in range(channels)
        )
        w.writeframes(struct.pack(f"<{n * channels}h", *samples))
    return path


def yuva_frame(i: int, width: int = W, height: int = H) -> np.ndarray:
    """The engine's transparent format: ``yuv_frame`` plus an alpha plane, right half clear."""
    a = np.full((height, width), 255, np.uint8)
    a[:, width // 2 :] = 0
    return np.concatenate([yuv_frame(i, width, height), a.ravel()])
