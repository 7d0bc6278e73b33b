"""Streaming WAV output: 48 kHz, stereo, 16-bit PCM, written block by block."""

from __future__ import annotations

import wave
from pathlib import Path
from types import TracebackType

import numpy as np

SAMPLE_RATE = 48_000
CHANNELS = 2
BLOCK_FRAMES = SAMPLE_RATE  # one second per write: ~384 KB of float32, bounded for any length


class WavWriter:
    """Append stereo blocks to a 16-bit WAV; the header's length is fixed up on close."""

    def __init__(self, path: Path, rate: int = SAMPLE_RATE) -> None:
        self.path = path
        self._bytes = 0
        self._w = wave.open(str(path), "wb")  # noqa: SIM115 - closed in close()
        self._w.setnchannels(CHANNELS)
        self._w.setsampwidth(2)
        self._w.setframerate(rate)

    def write_float(self, block: np.ndarray, gain: float = 1.0) -> None:
        """Write an (n, 2) float block scaled by ``gain``; values beyond ±1 are clipped."""
        scaled = block * np.float32(gain * 32767.0)
        np.rint(scaled, out=scaled)
        np.clip(scaled, -32768, 32767, out=scaled)
        self.write_pcm16(scaled.astype("<i2").tobytes())

    @property
    def frames(self) -> int:
        return self._bytes // (2 * CHANNELS)

    def write_pcm16(self, data: bytes) -> None:
        """Append interleaved little-endian int16 bytes (need not end on a frame boundary)."""
        self._w.writeframesraw(data)
        self._bytes += len(data)

    def write_silence(self, frames: int) -> None:
        zeros = bytes(2 * CHANNELS * min(frames, BLOCK_FRAMES))
        while frames > 0:
            n = min(frames, BLOCK_FRAMES)
            self.write_pcm16(zeros[: n * 2 * CHANNELS])
            frames -= n

    def close(self) -> None:
        self._w.close()  # rewrites the RIFF/data sizes from the frames actually written

    def __enter__(self) -> WavWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
