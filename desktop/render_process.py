"""The local render's own process: ``render_video`` with progress as JSON lines.

The desktop window starts this as a child process rather than a thread because
drawing frames holds the GIL; in a thread it would make the preview and the UI
stutter. The protocol is small and line based, so nothing else is needed:

stdin:  one JSON line ``{"midi": path, "output": path, "settings": {...}, "name": str}``,
        then optionally the line ``cancel`` (closing stdin also cancels: the window went away).
stdout: JSON lines, ``{"event": "progress", "stage", "percent", "eta", "overall", "message"}``
        and finally exactly one of ``{"event": "done", "output", "frames", "duration", "width",
        "height", "fps", "seconds"}``, ``{"event": "error", "message", "code"}``,
        ``{"event": "cancelled"}``.

This module imports no Qt: it starts fast and needs nothing the engine does not.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import traceback
from pathlib import Path
from typing import Any, TextIO

from notefall.common.errors import NotefallError, RenderCancelled
from notefall.common.pipeline import render_video
from notefall.common.progress import CancelToken, ProgressEvent
from notefall.common.settings import settings_from_mapping


class _Out:
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, **message: Any) -> None:
        line = json.dumps(message, ensure_ascii=False)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()


RENDER_NICENESS = 10


def _watch_for_cancel(stream: TextIO, cancel: CancelToken) -> None:
    for line in stream:
        if line.strip() == "cancel":
            break
    cancel.cancel()  # "cancel" or end of input: either way nobody wants the video any more


def run(stdin: TextIO, stdout: TextIO) -> int:
    out = _Out(stdout)
    try:
        job = json.loads(stdin.readline() or "{}")
        midi, output = Path(job["midi"]), Path(job["output"])
        settings = settings_from_mapping(job.get("settings") or {})
    except (KeyError, TypeError, ValueError, NotefallError) as exc:
        message = exc.message if isinstance(exc, NotefallError) else f"Bad render job: {exc}"
        out.send(event="error", message=message, code="invalid_job")
        return 2
    cancel = CancelToken()
    threading.Thread(target=_watch_for_cancel, args=(stdin, cancel), daemon=True).start()

    def progress(ev: ProgressEvent) -> None:
        out.send(
            event="progress",
            stage=ev.stage.value,
            percent=round(ev.percent, 2),
            eta=None if ev.eta_seconds is None else round(ev.eta_seconds, 2),
            overall=round(ev.overall_percent, 2),
            message=ev.message,
        )

    try:
        result = render_video(
            midi, output, settings, progress=progress, cancel=cancel, name=job.get("name")
        )
    except RenderCancelled:
        out.send(event="cancelled")
        return 1
    except NotefallError as exc:
        out.send(event="error", message=exc.message, code=exc.code)
        return 1
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        out.send(
            event="error",
            message=f"The render failed unexpectedly ({type(exc).__name__}: {exc}).",
            code="internal_error",
        )
        return 1
    out.send(
        event="done",
        output=str(result.output),
        frames=result.frames,
        duration=result.duration,
        width=result.width,
        height=result.height,
        fps=result.fps,
        seconds=result.seconds,
    )
    return 0


def main() -> int:
    if hasattr(os, "nice"):
        # Below the window's priority (FFmpeg inherits it): a render may use every core,
        # but the preview and the controls come first.
        os.nice(RENDER_NICENESS)
    return run(sys.stdin, sys.stdout)


if __name__ == "__main__":
    raise SystemExit(main())
