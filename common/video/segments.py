"""Parallel segment encoding for the cloud: split the frame grid, join the pieces.

Each worker encodes a range of the global frame grid with ``Encoder(...,
segment=True)``: a video-only file in the final container (MP4/MOV/WebM), so the
join is a pure stream copy with the concat demuxer. Exactness at the seams:

* MP4/MOV segments use the same 90 kHz track timescale as one-pass files, so
  every frame time is an exact integer; the H.264/HEVC B-frame delay is the same
  in every segment, so decode timestamps continue without overlap and the joiner
  writes the same single edit list a one-pass encode has.
* WebM stores milliseconds. Segment boundaries fall on whole seconds
  (``segment_frame_ranges``), so each segment's offset is an integer number of
  milliseconds and the rounded frame times equal the one-pass file's.
* The concat list gives each segment's exact duration (frames / fps), so offsets
  never depend on container duration rounding.
* Audio is encoded once over the whole join: no AAC priming at every seam.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from ..errors import EncoderError
from ..progress import CancelToken, Stage
from ..settings import RenderSettings
from .codecs import audio_args, muxer_args
from .ffmpeg import run_ffmpeg
from .process import FFmpegJob, ProgressHook

DEFAULT_SEGMENT_SECONDS = 10.0


def segment_frame_ranges(
    frame_count: int, fps: int, target_seconds: float = DEFAULT_SEGMENT_SECONDS
) -> list[tuple[int, int]]:
    """Split frames ``[0, frame_count)`` into ``[start, end)`` ranges of about
    ``target_seconds``, each starting on a whole second (see the module notes).
    """
    if frame_count <= 0:
        return []
    if fps <= 0 or target_seconds <= 0:
        raise ValueError("fps and target_seconds must be positive")
    total_seconds = math.ceil(frame_count / fps)
    n = max(1, min(total_seconds, round(total_seconds / target_seconds)))
    ranges = []
    for k in range(n):
        # Spread whole seconds evenly, so no segment is a tiny leftover.
        start = (k * total_seconds // n) * fps
        end = min(frame_count, ((k + 1) * total_seconds // n) * fps)
        if end > start:
            ranges.append((start, end))
    return ranges


def count_frames(path: Path) -> int:
    """Video packets in a file (a stream copy to the null muxer: no decoding)."""
    proc = run_ffmpeg(
        ["-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "framemd5", "-"], timeout=600
    )
    return sum(1 for line in proc.stdout.decode().splitlines() if line and not line.startswith("#"))


def join_segments(
    segments: Sequence[Path],
    output: Path,
    settings: RenderSettings,
    audio: Path | None = None,
    *,
    cancel: CancelToken | None = None,
    frame_counts: Sequence[int] | None = None,
    progress: ProgressHook | None = None,
) -> Path:
    """Concatenate segment files (stream copy) and mux the audio once.

    ``frame_counts`` (frames per segment) saves a quick packet count of each
    file. The result replaces ``output`` atomically.
    """
    if not segments:
        raise EncoderError("no segments to join")
    fps = settings.fps
    counts = list(frame_counts) if frame_counts is not None else [count_frames(p) for p in segments]
    if len(counts) != len(segments):
        raise ValueError("frame_counts must give one count per segment")
    total = sum(counts)
    output = Path(output)
    fd, list_name = tempfile.mkstemp(
        prefix=f".{output.stem}.concat-", suffix=".txt", dir=output.parent
    )
    list_path = Path(list_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("ffconcat version 1.0\n")
            for seg, n in zip(segments, counts, strict=True):
                quoted = str(Path(seg).resolve()).replace("'", "'\\''")
                fh.write(f"file '{quoted}'\n")
                # Exact duration: the next segment's offset must not rely on the
                # container's (rounded) duration.
                fh.write(f"duration {float(Fraction(n, fps)):.6f}\n")
        args = ["-f", "concat", "-safe", "0", "-i", str(list_path)]
        if audio is not None:
            seconds = f"{float(Fraction(total, fps)):.6f}"
            args += ["-t", seconds, "-i", str(audio)]
        args += ["-map", "0:v:0", "-c:v", "copy"]
        if audio is not None:
            args += [
                "-map",
                "1:a:0",
                *audio_args(settings.format, settings.preset, settings.audio_bitrate),
            ]
            args += ["-af", f"apad=whole_dur={seconds}"]
        args += muxer_args(settings.format)
        job = FFmpegJob(
            args, output, cancel=cancel, progress=progress, stage=Stage.MUXING, total_frames=total
        )
        job.report()
        path = job.wait()
        job.report(done=True)
        return path
    finally:
        list_path.unlink(missing_ok=True)
