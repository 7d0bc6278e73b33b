"""Reading audio back and finding note onsets: used by tests and the A/V sync check."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._ffmpeg import decode_command, probe_audio, stream_stdout


def decode_audio(path: Path | str, rate: int = 48_000) -> np.ndarray:
    """The first audio stream of any file FFmpeg reads (WAV, MP3, MP4, ...) as float32
    ``(n, 2)`` samples at ``rate``. Raises AudioError for missing or audio-less files."""
    p = Path(path)
    info = probe_audio(p)
    data = bytearray()
    for chunk in stream_stdout(decode_command(p, info, rate=rate, sample_format="f32le")):
        data.extend(chunk)
    usable = len(data) - len(data) % 8
    return np.frombuffer(bytes(data[:usable]), dtype="<f4").astype(np.float32).reshape(-1, 2)


def detect_onsets(
    samples: np.ndarray,
    rate: int,
    threshold_db: float = -30.0,
    *,
    min_gap: float = 0.05,
) -> list[float]:
    """Seconds at which sound starts after at least ``min_gap`` s below the threshold.

    The envelope is the per-millisecond peak of |x| over both channels; the threshold is
    relative to the loudest millisecond. Each detection is then refined to the sample: the
    first one (looking back up to 10 ms) reaching 1 % (−40 dB) of the note's own peak
    and twice the level of the quiet gap before it. Piano samples start softly (TimGM6mb's
    piano needs ~4 ms to reach −30 dB), so refining matters; AAC/MP3 pre-echo measured
    below −50 dB, so it does not pull the onset early.
    Meant for notes separated by silence (the sync test's clicks and piano notes).
    """
    x = np.asarray(samples, dtype=np.float32)
    mag = np.abs(x).max(axis=1) if x.ndim == 2 else np.abs(x)
    hop = max(1, rate // 1000)
    nblocks = -(-mag.shape[0] // hop)
    if nblocks == 0:
        return []
    padded = np.zeros(nblocks * hop, np.float32)
    padded[: mag.shape[0]] = mag
    env = padded.reshape(nblocks, hop).max(axis=1)
    peak = float(env.max())
    if peak <= 0.0:
        return []
    thr = peak * 10 ** (threshold_db / 20)
    loud = np.flatnonzero(env >= thr)
    gap_blocks = max(1, round(min_gap * rate / hop))
    starts = loud[np.concatenate([[True], np.diff(loud) > gap_blocks])]
    window = max(1, round(0.03 * rate))
    lookback = max(1, round(0.01 * rate))
    onsets: list[float] = []
    for b in starts.tolist():
        i0 = b * hop
        lo = max(0, i0 - lookback)
        seg = mag[lo : i0 + window]
        # What was there before (a previous note's tail, noise) must not count as the start.
        before = mag[max(0, i0 - gap_blocks * hop) : lo]
        floor = float(before.max()) if before.shape[0] else 0.0
        level = max(0.01 * float(seg.max()), 2.0 * floor, 1e-9)
        onsets.append((lo + int(np.argmax(seg >= level))) / rate)
    return onsets
