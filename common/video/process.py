"""A long-running FFmpeg child: own process group, drained stderr, progress, atomic output."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import EncoderError, RenderCancelled
from ..progress import CancelToken, Stage
from .ffmpeg import ffmpeg_exe, meaningful_error

STDERR_LINES = 200  # ring buffer: enough context for an error, bounded for hour-long encodes
PIPE_SIZE = 1 << 20  # Linux's default /proc/sys/fs/pipe-max-size for unprivileged users


@dataclass(frozen=True, slots=True)
class EncodeProgress:
    """What FFmpeg reports via ``-progress`` (about 4× a second), plus stage boundaries."""

    stage: Stage  # ENCODING while frames flow, MUXING after the last frame
    frames: int  # frames FFmpeg has written to the output
    out_seconds: float  # output time reached
    done: bool = False  # the stage ended
    total_frames: int | None = None  # frames expected, when the caller said

    @property
    def fraction(self) -> float:
        """0..1 within the stage (frames out of ``total_frames``; 1.0 once done)."""
        if self.done:
            return 1.0
        if not self.total_frames:
            return 0.0
        return min(1.0, self.frames / self.total_frames)


ProgressHook = Callable[[EncodeProgress], None]


def partial_path(output: Path) -> Path:
    """Temp file next to the output (same filesystem, so the final rename is atomic)."""
    return output.with_name(f".{output.stem}.partial-{secrets.token_hex(4)}{output.suffix}")


class FFmpegJob:
    """Runs ``ffmpeg ARGS… -y TEMP`` and renames TEMP to the output on success."""

    def __init__(
        self,
        args: Sequence[str],
        output: Path,
        *,
        stdin: bool = False,
        cancel: CancelToken | None = None,
        progress: ProgressHook | None = None,
        stage: Stage = Stage.ENCODING,
        total_frames: int | None = None,
    ) -> None:
        self.output = output
        self.temp = partial_path(output)
        self._cancel = cancel
        self._progress = progress
        self.stage = stage
        self.total_frames = total_frames
        self._stderr: deque[str] = deque(maxlen=STDERR_LINES)
        self._done = False
        self.frames_out = 0
        self.out_seconds = 0.0
        prog_r, prog_w = os.pipe()
        cmd = [
            ffmpeg_exe(),
            "-hide_banner",
            "-nostdin",
            "-nostats",
            "-loglevel",
            "warning",
            "-progress",
            f"pipe:{prog_w}",
            "-stats_period",
            "0.25",
            *args,
            "-y",
            str(self.temp),
        ]
        try:
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                pass_fds=(prog_w,),
                # Own process group: abort() kills FFmpeg and anything it spawned, and a
                # Ctrl-C in the terminal reaches only us, so we decide how to clean up.
                start_new_session=True,
                bufsize=0,
            )
        except OSError as exc:
            os.close(prog_r)
            os.close(prog_w)
            raise EncoderError(f"cannot start FFmpeg: {exc}") from None
        os.close(prog_w)
        self._threads = [
            threading.Thread(target=self._drain_stderr, name="ffmpeg-stderr", daemon=True),
            threading.Thread(
                target=self._read_progress, args=(prog_r,), name="ffmpeg-progress", daemon=True
            ),
        ]
        for t in self._threads:
            t.start()

    # Reader threads ----------------------------------------------------------------------

    def _drain_stderr(self) -> None:
        # Always read, so FFmpeg never blocks on a full stderr pipe (x265 is chatty).
        assert self.proc.stderr is not None
        for raw in iter(self.proc.stderr.readline, b""):
            for part in raw.decode("utf-8", "replace").replace("\r", "\n").splitlines():
                if part.strip():
                    self._stderr.append(part)

    def _read_progress(self, fd: int) -> None:
        with os.fdopen(fd, "rb", buffering=0) as fh:
            block: dict[str, str] = {}
            for raw in iter(fh.readline, b""):
                key, _, value = raw.decode("ascii", "replace").strip().partition("=")
                block[key] = value
                if key != "progress":
                    continue
                with contextlib.suppress(ValueError):
                    self.frames_out = int(block.get("frame", self.frames_out))
                with contextlib.suppress(ValueError):
                    self.out_seconds = int(block.get("out_time_us", "0")) / 1e6
                if self._progress is not None:
                    self._progress(
                        EncodeProgress(
                            self.stage, self.frames_out, self.out_seconds, False, self.total_frames
                        )
                    )
                block = {}

    def report(self, done: bool = False) -> None:
        if self._progress is not None:
            self._progress(
                EncodeProgress(
                    self.stage, self.frames_out, self.out_seconds, done, self.total_frames
                )
            )

    # Control ---------------------------------------------------------------------------

    @property
    def stderr_tail(self) -> list[str]:
        return list(self._stderr)

    def error_message(self) -> str:
        return meaningful_error(list(self._stderr))

    def check_cancel(self) -> None:
        if self._cancel is not None and self._cancel.cancelled:
            self.abort()
            raise RenderCancelled("The render was cancelled.")

    def wait(self) -> Path:
        """Let FFmpeg finish, verify, and move the temp file into place."""
        if self._done:
            raise EncoderError("this FFmpeg job has already ended")
        try:
            if self.proc.stdin is not None:
                with contextlib.suppress(BrokenPipeError):
                    self.proc.stdin.close()
            # Poll so a cancel during the (possibly long) flush/faststart still works.
            while True:
                try:
                    rc = self.proc.wait(timeout=0.1)
                    break
                except subprocess.TimeoutExpired:
                    self.check_cancel()
            self._join()
            self.check_cancel()
            if rc != 0:
                raise EncoderError(f"FFmpeg failed (exit {rc}): {self.error_message()}")
            if not self.temp.is_file() or self.temp.stat().st_size == 0:
                raise EncoderError(f"FFmpeg wrote no output: {self.error_message()}")
            os.replace(self.temp, self.output)
        except BaseException:
            self.abort()
            raise
        self._done = True
        return self.output

    def fail(self) -> EncoderError:
        """The error to raise after FFmpeg closed its input early (it died)."""
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            rc = None
        self._join()
        self.abort()
        return EncoderError(f"FFmpeg stopped (exit {rc}): {self.error_message()}")

    def abort(self) -> None:
        """Kill FFmpeg's process group and delete the temp file. Safe to call twice."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        self.proc.wait()
        self._join()
        with contextlib.suppress(FileNotFoundError):
            self.temp.unlink()
        self._done = True

    def _join(self) -> None:
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
