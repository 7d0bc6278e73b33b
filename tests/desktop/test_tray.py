"""The tray without a server: icon states, notifications recorded where no tray exists,
the recent renders menu, and what a click on a notification does."""

from __future__ import annotations

from pathlib import Path

from notefall.desktop.ops import ErrorReport
from notefall.desktop.signals import RenderNotice, app_signals
from notefall.desktop.tray import Tray
from PySide6.QtCore import QUrl


def test_a_failed_render_turns_the_icon_red_and_its_click_shows_the_reason(qtbot):
    opened: list[QUrl] = []
    tray = Tray(open_url=opened.append, tray_available=False)
    errors: list[ErrorReport] = []
    status: list[str] = []
    app_signals().error_raised.connect(errors.append)
    app_signals().status_message.connect(status.append)

    app_signals().render_started.emit(RenderNotice("local", "Nocturne"))
    assert tray.state == "rendering"
    app_signals().render_failed.emit(
        RenderNotice("local", "Nocturne", message="FFmpeg stopped: the disk is full.")
    )
    assert tray.state == "error"
    (message,) = tray.messages
    assert message.failed and message.title == "Nocturne: render failed"
    # No system tray here: the same words went to the status bar.
    assert status == ["Nocturne: render failed: FFmpeg stopped: the disk is full."]

    tray.open_message(message)
    assert opened == []
    assert [e.message for e in errors] == ["FFmpeg stopped: the disk is full."]
    assert tray.state == "idle"  # seen: the red icon goes back


def test_finished_renders_fill_the_recent_menu_newest_first_and_open_the_video(
    qtbot, tmp_path: Path, screenshot
):
    opened: list[QUrl] = []
    tray = Tray(open_url=opened.append, tray_available=False)
    for name in ("Etude", "Prelude"):
        video = tmp_path / f"{name}.mp4"
        video.write_bytes(b"video")
        app_signals().render_finished.emit(RenderNotice("cloud", name, "r-" + name, video))
    labels = [action.text() for action in tray.recent_menu.actions()]
    assert labels == ["✓ Prelude", "✓ Etude"]
    tray.menu.adjustSize()
    screenshot(tray.menu, "tray-menu")
    tray.recent_menu.adjustSize()
    screenshot(tray.recent_menu, "tray-recent")
    tray.recent_menu.actions()[1].trigger()
    assert opened == [QUrl.fromLocalFile(str(tmp_path / "Etude.mp4"))]
    assert tray.state == "idle"


def test_closing_the_window_quits_when_nothing_renders_in_the_cloud(qtbot):
    assert not Tray(tray_available=True).should_hide_on_close()
    tray = Tray()
    assert tray.recent_menu.actions()[0].text() == "No renders yet"
