"""The little of FFmpeg the audio stage needs: find the binary, probe a file, stream PCM out.

Kept private and small on purpose: ``notefall.common.video`` owns the general FFmpeg
wrapper. There is no ffprobe in the imageio-ffmpeg wheel, so probing parses the
banner ``ffmpeg -i FILE`` prints on stderr.
"""

from __future__ import annotations

import functools
import re
import subprocess
import threading
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import AudioError, EncoderError
from ..progress import CancelToken
from ..video.ffmpeg import ffmpeg_exe

_AUDIO_STREAM = re.compile(r"Stream #\d+:\d+.*?: Audio: ([^,\s]+)[^,]*, (\d+) Hz, ([^,]+)")
_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")


@dataclass(frozen=True, slots=True)
class AudioInfo:
    codec: str
    sample_rate: int
    layout: str  # "mono", "stereo", "5.1(side)", ...
    duration: float | None  # seconds, when the container states it


def probe_audio(path: Path) -> AudioInfo:
    """Describe the first audio stream of ``path``; AudioError when there is none."""
    if not path.is_file():
        raise AudioError(f"Audio file not found: {path}")
    try:
        proc = subprocess.run(
            [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
            capture_output=True,
            timeout=60,
            check=False,
        )
    except OSError as exc:
        raise EncoderError(f"Cannot run FFmpeg: {exc}") from exc
    except subprocess.TimeoutExpired:
        raise AudioError(
            f"{path.name}: reading the file took too long; is it an audio file?"
        ) from None
    text = proc.stderr.decode("utf-8", "replace")
    if "Input #0" not in text:
        raise AudioError(f"{path.name} is not an audio file FFmpeg can read ({_last_line(text)}).")
    m = _AUDIO_STREAM.search(text)
    if m is None:
        raise AudioError(f"{path.name} has no audio stream; use a WAV, FLAC, MP3 or OGG recording.")
    d = _DURATION.search(text)
    duration = None
    if d is not None:
        duration = int(d.group(1)) * 3600 + int(d.group(2)) * 60 + float(d.group(3))
    return AudioInfo(m.group(1), int(m.group(2)), m.group(3).strip(), duration)


def decode_command(
    path: Path, info: AudioInfo, *, rate: int, sample_format: str, tempo: float = 1.0
) -> list[str]:
    """ffmpeg arguments that write the first audio stream as raw interleaved stereo to stdout."""
    filters: list[str] = []
    if info.layout == "mono":
        # ffmpeg's default mono→stereo upmix is equal-power (−3 dB per side); a mono
        # recording should sound as loud as it was recorded, so copy it to both sides.
        filters.append("pan=stereo|c0=c0|c1=c0")
    filters.append(f"aresample={rate}")
    filters.extend(tempo_filters(tempo))
    return [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error",
        "-i", str(path), "-map", "0:a:0", "-vn", "-sn", "-dn",
        "-af", ",".join(filters), "-ac", "2", "-ar", str(rate),
        "-f", sample_format, "-",
    ]  # fmt: skip


def tempo_filters(tempo: float) -> list[str]:
    """Filters that play audio ``tempo`` times faster without changing its pitch.

    ``rubberband`` when the FFmpeg build has it: its output has exactly the right length,
    keeps short attacks at 2-4x (atempo's WSOLA drops clicks there) and its timing
    jitter at slow tempos is ~1 ms against atempo's ~10 ms. Otherwise an ``atempo``
    chain. Either one shifts audio by a tempo-dependent amount (tens of ms at 0.5x);
    ``tempo_delay_samples`` measures that so the caller can correct it.
    """
    if abs(tempo - 1.0) < 1e-9:
        return []
    if _has_filter(ffmpeg_exe(), "rubberband"):
        return [f"rubberband=tempo={tempo:.9g}"]
    return [f"atempo={f:.9g}" for f in atempo_chain(tempo)]


@functools.lru_cache(maxsize=8)
def _has_filter(exe: str, name: str) -> bool:
    try:
        proc = subprocess.run(
            [exe, "-hide_banner", "-filters"], capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return any(
        line.split()[1:2] == [name] for line in proc.stdout.decode("utf-8", "replace").splitlines()
    )


@functools.lru_cache(maxsize=32)
def _measure_delay(exe: str, filters: str, rate: int) -> int:
    # A train of short 1 kHz bursts (uneven spacing, so no match is ambiguous) goes through
    # the filters; the median shift of their onsets is the chain's delay.
    from .analysis import detect_onsets  # analysis imports this module

    clicks = [0.5 + 0.41 * k + 0.03 * (k % 3) for k in range(8)]
    n = round((clicks[-1] + 1.0) * rate)
    signal = np.zeros((n, 2), np.float32)
    burst = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(round(0.005 * rate)) / rate)
    for c in clicks:
        i = round(c * rate)
        signal[i : i + burst.shape[0], :] = burst[:, None]
    args = [
        exe, "-hide_banner", "-nostdin", "-loglevel", "error",
        "-f", "f32le", "-ar", str(rate), "-ac", "2", "-i", "-",
        "-af", filters, "-f", "f32le", "-ar", str(rate), "-ac", "2", "-",
    ]  # fmt: skip
    try:
        proc = subprocess.run(args, input=signal.tobytes(), capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    if proc.returncode != 0:
        return 0
    data = proc.stdout[: len(proc.stdout) - len(proc.stdout) % 8]
    out = np.frombuffer(data, "<f4").reshape(-1, 2)
    tempo = float(np.prod([float(f.split("=")[-1]) for f in filters.split(",")]))
    found = detect_onsets(out, rate, -20.0)
    if len(found) != len(clicks):
        return 0  # cannot tell; better uncorrected than corrected by a mismatched pair
    shifts = [f - c / tempo for f, c in zip(found, clicks, strict=True)]
    return round(float(np.median(shifts)) * rate)


def tempo_delay_samples(tempo: float, rate: int) -> int:
    """How many samples late (negative: early) ``tempo_filters(tempo)`` puts the audio."""
    filters = tempo_filters(tempo)
    if not filters:
        return 0
    return _measure_delay(ffmpeg_exe(), ",".join(filters), rate)


def atempo_chain(factor: float) -> list[float]:
    """Split a tempo factor into atempo stages within 0.5–2 (older FFmpeg's limit; 9.0
    accepts up to 100, but NOTEFALL_FFMPEG may point at an older build)."""
    stages: list[float] = []
    while factor > 2.0:
        stages.append(2.0)
        factor /= 2.0
    while factor < 0.5:
        stages.append(0.5)
        factor /= 0.5
    if abs(factor - 1.0) > 1e-9:
        stages.append(factor)
    return stages


def stream_stdout(
    args: Sequence[str],
    *,
    chunk_bytes: int = 1 << 16,
    cancel: CancelToken | None = None,
    what: str = "audio",
) -> Generator[bytes, None, None]:
    """Yield ffmpeg's stdout in chunks; kill ffmpeg at once on cancel, error or early stop.

    The consumer may stop iterating early (it has all the samples it needs): closing the
    generator kills the child instead of letting it decode the rest of a long file.
    """
    try:
        proc = subprocess.Popen(
            list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except OSError as exc:
        raise EncoderError(f"Cannot run FFmpeg: {exc}") from exc
    assert proc.stdout is not None and proc.stderr is not None
    # Drain stderr on a thread: a chatty ffmpeg would otherwise block on a full pipe.
    err_chunks: list[bytes] = []
    err_stream = proc.stderr
    drainer = threading.Thread(target=lambda: err_chunks.extend(iter(err_stream.readline, b"")))
    drainer.daemon = True
    drainer.start()
    finished = False
    try:
        while True:
            if cancel is not None:
                cancel.raise_if_cancelled()
            chunk = proc.stdout.read(chunk_bytes)
            if not chunk:
                break
            yield chunk
        rc = proc.wait()
        drainer.join(timeout=5)
        finished = True
        if rc != 0:
            text = b"".join(err_chunks).decode("utf-8", "replace")
            raise AudioError(f"FFmpeg could not decode the {what}: {_last_line(text)}")
    finally:
        if not finished and proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()
        drainer.join(timeout=5)
        proc.stderr.close()


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return "no details"
    # ffmpeg ends with a generic "Error opening input files: X"; X is the useful part.
    last = lines[-1]
    return (
        last.split(": ", 1)[1] if last.startswith("Error opening input") and ": " in last else last
    )
