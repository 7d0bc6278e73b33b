"""``Encoder``: raw frames in, a finished video file out, via one FFmpeg process.

Frames go straight from the caller's buffer to FFmpeg's stdin with ``os.write``
(no copies, no Python-side buffering). The output is written to a hidden temp
file beside the target and renamed only when FFmpeg succeeded, so a crash,
error or cancel never leaves a half-written video under the real name.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from ..errors import EncoderError, RenderCancelled
from ..progress import CancelToken, Stage
from ..settings import RenderSettings
from .codecs import (
    audio_args,
    check_combination,
    frame_bytes,
    muxer_args,
    output_pix_fmt,
    video_args,
    video_filter,
)
from .process import PIPE_SIZE, FFmpegJob, ProgressHook

Frame = bytes | bytearray | memoryview | np.ndarray[Any, Any]


def encode_args(
    settings: RenderSettings,
    width: int,
    height: int,
    fps: int,
    input_pix_fmt: str,
    audio: Path | None,
    *,
    segment: bool = False,
    frame_count: int | None = None,
) -> list[str]:
    """FFmpeg arguments (without the output path) for raw frames on stdin."""
    fmt, codec, alpha = settings.format, settings.video_codec, settings.has_alpha
    check_combination(fmt, codec, alpha)
    args = [
        "-f",
        "rawvideo",
        "-pix_fmt",
        input_pix_fmt,
        "-video_size",
        f"{width}x{height}",
        "-framerate",
        str(fps),
        "-i",
        "pipe:0",
    ]
    with_audio = audio is not None and not segment
    if with_audio and frame_count is None:
        # "-shortest" with padded audio overshoots by up to a second when the machine
        # is busy (FFmpeg buffers before it cuts), so the length must be known.
        raise ValueError("frame_count is required when audio is muxed")
    audio_seconds = _seconds(frame_count, fps) if frame_count is not None else ""
    if with_audio:
        # Read no more audio than the video lasts; apad below fills a short file.
        args += ["-t", audio_seconds, "-i", str(audio)]
    args += ["-map", "0:v:0", "-vf", video_filter(input_pix_fmt, output_pix_fmt(codec, alpha))]
    args += video_args(codec, settings.preset, fps, alpha=alpha, fmt=fmt)
    if with_audio:
        args += ["-map", "1:a:0", *audio_args(fmt, settings.preset, settings.audio_bitrate)]
        args += ["-af", f"apad=whole_dur={audio_seconds}"]
    return args + muxer_args(fmt, segment=segment)


def _seconds(frames: int, fps: int) -> str:
    """Exact decimal seconds (µs precision is what FFmpeg's time parser keeps)."""
    return f"{float(Fraction(frames, fps)):.6f}"


class Encoder:
    """Streams raw frames into FFmpeg.

    ``input_pix_fmt`` is the layout of the frames given to ``write`` — the
    engine's native one is "yuv420p" (or "rgba" for transparent output); any
    conversion FFmpeg has to do costs encode speed. ``audio`` is a WAV covering the
    video from t=0; it is trimmed or padded to the video's length. ``segment=True``
    writes a video-only intermediate for ``join_segments``. ``frame_count``, if
    known, makes audio trimming exact. ``progress`` is called from a reader
    thread.

    Use ``with Encoder(...) as enc:``; an exception inside the block aborts (no
    file is left), leaving it normally finishes.
    """

    def __init__(
        self,
        output: Path,
        settings: RenderSettings,
        width: int,
        height: int,
        fps: int,
        input_pix_fmt: str,
        audio: Path | None = None,
        *,
        segment: bool = False,
        cancel: CancelToken | None = None,
        frame_count: int | None = None,
        progress: ProgressHook | None = None,
    ) -> None:
        if width % 2 or height % 2 or width <= 0 or height <= 0:
            raise ValueError(f"{width}x{height}: width and height must be positive and even")
        if audio is not None and not segment and not Path(audio).is_file():
            raise EncoderError(f"audio file {audio} is missing")
        self.output = Path(output)
        self.settings = settings
        self.width, self.height, self.fps = width, height, fps
        self.input_pix_fmt = input_pix_fmt
        self.frame_size = frame_bytes(input_pix_fmt, width, height)
        self.frames_written = 0
        self._cancel = cancel
        if cancel is not None:
            cancel.raise_if_cancelled()
        args = encode_args(
            settings,
            width,
            height,
            fps,
            input_pix_fmt,
            audio,
            segment=segment,
            frame_count=frame_count,
        )
        self._job = FFmpegJob(
            args,
            self.output,
            stdin=True,
            cancel=cancel,
            progress=progress,
            total_frames=frame_count,
        )
        assert self._job.proc.stdin is not None
        self._fd = self._job.proc.stdin.fileno()
        # A 1 MB pipe (vs 64 KB) means far fewer wake-ups per 1080p frame (3 MB).
        with contextlib.suppress(OSError, AttributeError):
            fcntl.fcntl(self._fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        self._finished = False

    @property
    def temp_path(self) -> Path:
        return self._job.temp

    @property
    def pid(self) -> int:
        return self._job.proc.pid

    @property
    def stderr_tail(self) -> list[str]:
        return self._job.stderr_tail

    def write(self, frame: Frame) -> None:
        """Send one frame (exactly ``frame_size`` bytes, C-contiguous)."""
        if self._finished:
            raise EncoderError("the encoder is already finished")
        self._job.check_cancel()
        view = _byte_view(frame)
        if view.nbytes != self.frame_size:
            raise ValueError(
                f"frame has {view.nbytes} bytes; {self.input_pix_fmt} {self.width}x{self.height} "
                f"needs {self.frame_size}"
            )
        try:
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
        except OSError:  # BrokenPipeError: FFmpeg exited (bad option, disk full, killed)
            self._finished = True
            if self._cancel is not None and self._cancel.cancelled:
                self._job.abort()
                raise RenderCancelled("The render was cancelled.") from None
            raise self._job.fail() from None
        self.frames_written += 1

    def finish(self) -> Path:
        """Flush the encoder, wait for FFmpeg, check it, and move the file into place."""
        if self._finished:
            raise EncoderError("the encoder is already finished")
        self._finished = True
        if self.frames_written == 0:
            self._job.abort()
            raise EncoderError("no frames were written")
        self._job.report(done=True)  # encoding stage ends: FFmpeg has every frame
        self._job.stage = Stage.MUXING
        self._job.report()
        path = self._job.wait()
        self._job.report(done=True)
        return path

    def abort(self) -> None:
        """Stop FFmpeg and remove the temp file. Idempotent."""
        self._finished = True
        self._job.abort()

    def __enter__(self) -> Encoder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.abort()
        elif not self._finished:
            self.finish()


def _byte_view(frame: Frame) -> memoryview:
    if isinstance(frame, np.ndarray):
        if not frame.flags.c_contiguous:
            frame = np.ascontiguousarray(frame)  # the only case that must copy
        return frame.reshape(-1).view(np.uint8).data
    view = memoryview(frame)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")
