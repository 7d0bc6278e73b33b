"""Local render: a real video through the engine and FFmpeg, progress with stages, cancel, errors."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from notefall.common.settings import RenderSettings
from notefall.common.video.ffmpeg import probe, stream_duration
from notefall.desktop.local_render import LocalRenderPanel, RenderDone, RenderProgress, format_eta
from notefall.desktop.project import LocalProject
from notefall.desktop.signals import RenderNotice, app_signals

from tests.support.midi_factory import make_midi

SMALL = RenderSettings(resolution="256x144", fps=24, preset="draft", lead_in=0.5, tail=0.5)


@pytest.fixture
def panel(qtbot) -> LocalRenderPanel:
    widget = LocalRenderPanel()
    qtbot.addWidget(widget)
    widget.resize(420, 160)
    widget.show()
    return widget


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "renders"
    folder.mkdir()
    return folder


def test_local_render_writes_the_video_with_stages_and_offers_the_folder(
    qtbot, panel, app_settings, midi_file, out_dir, screenshot
):
    project = LocalProject.create(app_settings.projects_dir(), midi_file, settings=SMALL)
    progress: list[RenderProgress] = []
    panel.bar.valueChanged.connect(lambda _: progress.append(panel.last_progress))
    finished_notices: list[RenderNotice] = []
    app_signals().render_finished.connect(finished_notices.append)
    output = out_dir / "Little Tune.mp4"

    with qtbot.waitSignal(panel.finished, timeout=120_000) as done:
        panel.start(project, output)
        assert panel.running and panel.cancel_button.isVisible()
    result = done.args[0]
    assert isinstance(result, RenderDone)
    assert result.output == output

    info = probe(output)
    assert (info.width, info.height, info.fps) == (256, 144, 24)
    assert info.video_codec == "h264" and info.has_audio
    expected_seconds = 0.5 + project.duration + 0.5
    assert stream_duration(output, "v") == pytest.approx(expected_seconds, abs=0.25)
    assert sorted(p.name for p in out_dir.iterdir()) == ["Little Tune.mp4"]

    stages = [p.stage for p in progress if p is not None]
    assert "rendering" in stages
    overall = [p.overall for p in progress if p is not None]
    assert overall == sorted(overall)
    assert panel.folder_button.isVisible() and not panel.cancel_button.isVisible()
    assert panel.title.text() == "“Little Tune” is ready"
    assert finished_notices[0].output == output and finished_notices[0].kind == "local"
    screenshot(panel, "local-render-done")


def test_cancelling_a_render_leaves_no_file_behind(
    qtbot, panel, app_settings, tmp_path, out_dir, screenshot
):
    long_song = tmp_path / "Long Song.mid"
    notes = [(beat * 0.5, 0.5, 48 + (beat * 5) % 36, 90, 0) for beat in range(600)]  # 150 s
    long_song.write_bytes(make_midi(notes))
    settings = RenderSettings(resolution="640x360", fps=30, preset="draft")
    project = LocalProject.create(app_settings.projects_dir(), long_song, settings=settings)
    output = out_dir / "long.mp4"

    handle = panel.start(project, output)
    assert handle is not None
    qtbot.waitUntil(
        lambda: panel.last_progress is not None and panel.last_progress.stage == "rendering",
        timeout=60_000,
    )
    screenshot(panel, "local-render-running")
    with qtbot.waitSignal(panel.cancelled, timeout=60_000):
        panel.cancel()
    assert handle.done
    assert list(out_dir.iterdir()) == []
    assert panel.title.text() == "Render cancelled"
    assert not panel.running


def test_the_engines_error_is_shown_in_words(
    qtbot, panel, app_settings, midi_file, out_dir, screenshot
):
    missing = out_dir / "no such picture.png"
    settings = SMALL.model_copy(update={"background_image": str(missing)})
    project = LocalProject.create(app_settings.projects_dir(), midi_file, settings=settings)
    failures: list[RenderNotice] = []
    app_signals().render_failed.connect(failures.append)
    with qtbot.waitSignal(panel.failed, timeout=60_000) as failed:
        panel.start(project, out_dir / "x.mp4")
    assert failed.args[0] == f"Background image not found: {missing}"
    assert panel.status_text() == f"Background image not found: {missing}"
    assert panel.retry_button.isVisible()
    assert failures[0].message == failed.args[0]
    assert list(out_dir.iterdir()) == []
    screenshot(panel, "local-render-error")


def test_a_second_render_waits_for_the_first(qtbot, panel, app_settings, midi_file, out_dir):
    project = LocalProject.create(app_settings.projects_dir(), midi_file, settings=SMALL)
    with qtbot.waitSignal(panel.finished, timeout=120_000):
        assert panel.start(project, out_dir / "a.mp4") is not None
        assert panel.start(project, out_dir / "b.mp4") is None
    assert sorted(p.name for p in out_dir.iterdir()) == ["a.mp4"]


def test_eta_reads_naturally():
    assert format_eta(4.4) == "about 4 s"
    assert format_eta(75) == "about 1 min 15 s"
    assert format_eta(3 * 3600 + 120) == "about 3 h 02 min"


def test_the_render_process_answers_a_bad_job_with_one_clear_line():
    import io
    import json

    from notefall.desktop.render_process import run

    out = io.StringIO()
    job = json.dumps({"midi": "a.mid", "output": "a.mp4", "settings": {"fps": 23}})
    assert run(io.StringIO(job + "\n"), out) == 2
    (line,) = out.getvalue().splitlines()
    assert json.loads(line) == {
        "event": "error",
        "message": "fps: 23 fps is not offered; choose one of 24, 25, 30, 50, 60",
        "code": "invalid_job",
    }


def test_the_render_process_runs_below_the_windows_priority():
    from notefall.desktop.local_render import render_command
    from notefall.desktop.render_process import RENDER_NICENESS

    ours = os.getpriority(os.PRIO_PROCESS, 0)
    child = subprocess.Popen(render_command(), stdin=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        # The child lowers itself first thing; wait for it (it then waits for its job).
        while os.getpriority(os.PRIO_PROCESS, child.pid) == ours and time.monotonic() < deadline:
            time.sleep(0.05)
        assert os.getpriority(os.PRIO_PROCESS, child.pid) == min(ours + RENDER_NICENESS, 19)
    finally:
        child.kill()
        child.wait()
