"""Cancelling a render stops it promptly and leaves no file behind (not even a hidden one)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from notefall.common.errors import RenderCancelled
from notefall.common.examples import EXAMPLE_MIDI
from notefall.common.pipeline import render_video
from notefall.common.progress import CancelToken, ProgressEvent, Stage

from tests.e2e._e2e_helpers import cli_command, entries, small_settings
from tests.support.midi_factory import make_midi


def test_cancel_from_progress_callback(tmp_path: Path) -> None:
    song = make_midi(notes=[(k * 0.5, 1.0, 48 + (k * 7) % 30, 90, 0) for k in range(120)])  # 61 s
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    cancel = CancelToken()
    cancelled_at: list[float] = []
    stages: list[Stage] = []

    def progress(ev: ProgressEvent) -> None:
        stages.append(ev.stage)
        if ev.stage == Stage.RENDERING and ev.percent >= 5 and not cancelled_at:
            cancelled_at.append(time.perf_counter())
            cancel.cancel()

    with pytest.raises(RenderCancelled):
        render_video(song, out_dir / "song.mp4", small_settings(), progress=progress, cancel=cancel)
    stopped = time.perf_counter()

    assert cancelled_at, "the render never reached the rendering stage"
    assert stopped - cancelled_at[0] < 1.0
    assert Stage.MUXING not in stages
    assert entries(out_dir) == []


def test_cli_sigint_exits_130_and_leaves_nothing(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    cmd = cli_command(
        "render", EXAMPLE_MIDI, "-o", out_dir / "prelude.mp4",
        "--resolution", "256x144", "--preset", "draft",
    )  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        # Rendering has begun once the encoder's hidden partial file exists.
        deadline = time.monotonic() + 60
        while not entries(out_dir) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert entries(out_dir), "the render never started writing"
        assert proc.poll() is None, "the render ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read()
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 130, rest
    assert "Traceback" not in rest
    assert entries(out_dir) == []
