"""The studio window as a user drives it: open, drop, edit, play, render, errors, layout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from notefall.common.settings import RenderSettings
from notefall.common.video.ffmpeg import probe
from notefall.desktop.app import EXIT_WHEN_IDLE_ENV
from notefall.desktop.inspector import ChoiceEditor
from notefall.desktop.main_window import MainWindow, app_version
from notefall.desktop.ops import ErrorReport
from notefall.desktop.project import LocalProject
from notefall.desktop.settings import AppSettings
from notefall.desktop.signals import app_signals
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QDockWidget

from tests.desktop.conftest import drop_files


@pytest.fixture
def window(qtbot) -> MainWindow:
    win = MainWindow(AppSettings())
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.preview.close_preview()


def open_midi(qtbot, window: MainWindow, midi: Path) -> LocalProject:
    with qtbot.waitSignal(app_signals().project_opened, timeout=30_000) as opened:
        window.library_view.import_paths([midi])
    return opened.args[0]


def test_opening_a_midi_shows_it_in_the_preview_and_the_inspector(
    qtbot, window, midi_file, screenshot
):
    assert window.empty_hint.isVisible()
    assert not window.render_action.isEnabled()
    screenshot(window, "main-empty")
    project = open_midi(qtbot, window, midi_file)
    assert window.current_project is not None and window.current_project.id == project.id
    assert window.windowTitle() == "Little Tune — Notefall"
    assert window.preview.song is not None and window.preview.song.note_count == 18
    assert window.inspector.isEnabled() and window.render_action.isEnabled()
    assert not window.empty_hint.isVisible()
    qtbot.waitUntil(lambda: window.preview.shown_time is not None, timeout=30_000)
    screenshot(window, "main-project")


def test_dropping_a_midi_on_the_window_opens_it(qtbot, window, midi_file):
    with qtbot.waitSignal(app_signals().project_opened, timeout=30_000):
        assert drop_files(window, [midi_file])
    assert window.library_view.project_names() == ["Little Tune"]


def test_a_damaged_midi_dropped_on_the_window_shows_the_engines_message(
    qtbot, window, damaged_midi, screenshot
):
    assert drop_files(window, [damaged_midi])
    qtbot.waitUntil(window.banner.isVisible, timeout=30_000)
    assert window.banner.title.text() == "This MIDI file cannot be used"
    assert "contains no tracks" in window.banner.message.text()
    assert not window.banner.retry_button.isVisible()  # the same file would fail the same way
    assert window.current_project is None
    screenshot(window, "main-error-banner")


def test_a_settings_change_updates_the_preview_and_is_saved_with_the_project(
    qtbot, window, midi_file
):
    project = open_midi(qtbot, window, midi_file)
    theme = window.inspector.editors["theme"]
    assert isinstance(theme, ChoiceEditor)
    theme.set_value("neon")
    qtbot.waitUntil(
        lambda: window.preview.settings is not None and window.preview.settings.theme == "neon"
    )
    assert LocalProject.load(project.folder).settings.theme == "neon"


def test_space_plays_and_pauses_and_the_arrows_seek_from_the_window(qtbot, window, midi_file):
    open_midi(qtbot, window, midi_file)
    qtbot.waitUntil(lambda: window.preview.state in ("paused", "loading"))
    window.centralWidget().setFocus()
    qtbot.keyClick(window.centralWidget(), Qt.Key.Key_Right)
    assert window.preview.position == pytest.approx(5.0, abs=0.05)
    qtbot.keyClick(window.centralWidget(), Qt.Key.Key_Left)
    assert window.preview.position == pytest.approx(0.0, abs=0.05)
    qtbot.waitUntil(lambda: window.preview.state == "paused", timeout=30_000)
    qtbot.keyClick(window.centralWidget(), Qt.Key.Key_Space)
    assert window.preview.state == "playing"
    qtbot.keyClick(window.centralWidget(), Qt.Key.Key_Space)
    assert window.preview.state == "paused"


def test_space_in_a_text_field_types_a_space_instead_of_playing(qtbot, window, midi_file):
    open_midi(qtbot, window, midi_file)
    qtbot.waitUntil(lambda: window.preview.state == "paused", timeout=30_000)
    title = window.inspector.editors["title"].line
    title.setFocus()
    qtbot.keyClicks(title, "A B")
    assert title.text() == "A B"
    assert window.preview.state == "paused"


def test_ctrl_r_renders_the_open_project_to_a_video(qtbot, window, midi_file, tmp_path):
    project = open_midi(qtbot, window, midi_file)
    project.set_settings(RenderSettings(resolution="256x144", preset="draft"))
    output = tmp_path / "clip.mp4"
    with qtbot.waitSignal(window.render_panel.finished, timeout=120_000):
        window.render_locally(output)
        assert window.cancel_render_action.isEnabled()
    assert (probe(output).width, probe(output).height) == (256, 144)
    assert not window.cancel_render_action.isEnabled()


def test_the_error_banner_retries_the_failed_work(qtbot, window, screenshot):
    attempts: list[int] = []
    app_signals().error_raised.emit(
        ErrorReport(
            "The Notefall server did not answer.",
            retry=lambda: attempts.append(1),
            title="The Notefall server is unreachable",
        )
    )
    assert window.banner.isVisible()
    qtbot.mouseClick(window.banner.retry_button, Qt.MouseButton.LeftButton)
    assert attempts == [1]
    assert not window.banner.isVisible()


def test_the_layout_is_remembered_across_restarts(qtbot, midi_file):
    first = MainWindow(AppSettings())
    qtbot.addWidget(first)
    first.resize(1100, 700)
    first.show()
    qtbot.waitExposed(first)
    first.docks["projects"].hide()
    first.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, first.docks["inspector"])
    first.close()

    second = MainWindow(AppSettings())
    qtbot.addWidget(second)
    second.show()
    qtbot.waitExposed(second)
    assert second.size().width() == 1100 and second.size().height() == 700
    assert not second.docks["projects"].isVisible()
    assert second.dockWidgetArea(second.docks["inspector"]) == Qt.DockWidgetArea.LeftDockWidgetArea
    second.reset_layout()
    assert second.docks["projects"].isVisible()
    assert second.dockWidgetArea(second.docks["inspector"]) == Qt.DockWidgetArea.RightDockWidgetArea
    second.close()


def test_the_recent_menu_reopens_a_project(qtbot, window, midi_file, tmp_path):
    first = open_midi(qtbot, window, midi_file)
    other_midi = tmp_path / "Other.mid"
    other_midi.write_bytes(midi_file.read_bytes())
    open_midi(qtbot, window, other_midi)
    titles = [a.text() for a in window.recent_menu.actions() if a.text()]
    assert titles[:2] == ["Little Tune", "Little Tune"]  # both files carry that title
    recent = [a for a in window.recent_menu.actions() if a.toolTip() == str(first.folder)]
    assert len(recent) == 1
    with qtbot.waitSignal(app_signals().project_opened, timeout=30_000) as opened:
        recent[0].trigger()
    assert opened.args[0].id == first.id


def test_cloud_render_while_signed_out_points_to_the_account_panel(qtbot, window, midi_file):
    open_midi(qtbot, window, midi_file)
    window.docks["inspector"].raise_()
    window.render_in_cloud()
    assert window.statusBar().currentMessage() == "Sign in to render in the cloud."
    assert not window.docks["account"].visibleRegion().isEmpty()


def test_signed_out_means_free_plan_locks_in_the_inspector(window):
    assert window.inspector.tier == "free"
    assert "resolution" in window.inspector.locked_fields()


def test_about_names_the_version(qtbot, window, screenshot):
    box = window.show_about()
    qtbot.waitExposed(box)
    assert app_version() in box.text()
    screenshot(box, "about")
    box.close()


def test_settings_dialog_refuses_a_bad_server_address_and_keeps_the_old_one(
    qtbot, window, screenshot
):
    dialog = window.open_preferences()
    dialog.server_url.setText("notefall dot com")
    dialog.accept()
    assert dialog.isVisible()
    assert dialog.server_error.text().startswith("'notefall dot com' is not a server address")
    screenshot(dialog, "preferences")
    assert AppSettings().server_url == "http://127.0.0.1:8000"
    dialog.server_url.setText("https://notefall.example.com/")
    dialog.accept()
    assert AppSettings().server_url == "https://notefall.example.com"


def test_docks_are_real_dock_widgets_with_stable_names(window):
    names = {d.objectName() for d in window.findChildren(QDockWidget)}
    assert {"dock_projects", "dock_inspector", "dock_render", "dock_account"} <= names


def test_choosing_the_dark_look_repaints_the_window(qtbot, window, midi_file, screenshot):
    from notefall.desktop.app import apply_theme
    from notefall.desktop.settings import UiTheme

    open_midi(qtbot, window, midi_file)
    app = QApplication.instance()
    try:
        window.settings.theme = UiTheme.DARK
        assert app.palette().color(QPalette.ColorRole.Window).lightness() < 60
        qtbot.waitUntil(lambda: window.preview.shown_time is not None, timeout=30_000)
        qtbot.wait(50)  # the first-start dock sizes are applied once the loop runs
        screenshot(window, "main-dark")
        window.settings.theme = UiTheme.LIGHT
        assert app.palette().color(QPalette.ColorRole.Window).lightness() > 180
    finally:
        apply_theme(app, UiTheme.SYSTEM)


def test_notefall_desktop_starts_and_takes_a_midi_from_the_command_line(tmp_path, midi_file):
    """The real entry point in its own process (offscreen), as the cold-start benchmark runs it."""
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "NOTEFALL_DESKTOP_DATA": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),  # where QSettings keeps Notefall.ini
        EXIT_WHEN_IDLE_ENV: "1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "notefall.cli", "desktop", str(midi_file)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "notefall-desktop interactive"
    projects = [p for p in (tmp_path / "data" / "projects").iterdir() if not p.name.startswith(".")]
    assert [LocalProject.load(p).name for p in projects] == ["Little Tune"]
    assert (tmp_path / "config" / "Notefall" / "Notefall.ini").is_file()


def test_new_projects_start_with_the_defaults_chosen_in_settings(
    qtbot, window, midi_file, tmp_path
):
    open_midi(qtbot, window, midi_file)
    theme = window.inspector.editors["theme"]
    assert isinstance(theme, ChoiceEditor)
    theme.set_value("sunset")
    qtbot.waitUntil(lambda: window.inspector.settings.theme == "sunset")
    dialog = window.open_preferences()
    dialog.use_current.click()
    assert "theme sunset" in dialog.defaults_label.text()
    dialog.accept()
    second = tmp_path / "Second.mid"
    second.write_bytes(midi_file.read_bytes())
    project = open_midi(qtbot, window, second)
    assert project.settings.theme == "sunset"
    assert window.inspector.editors["theme"].value() == "sunset"


def test_keyboard_shortcuts_reach_their_commands(qtbot, window, midi_file):
    from notefall.desktop.preferences import PreferencesDialog

    open_midi(qtbot, window, midi_file)
    window.library_view.list.setFocus()
    qtbot.keyClick(
        window.library_view.list,
        Qt.Key.Key_R,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    assert window.statusBar().currentMessage() == "Sign in to render in the cloud."
    qtbot.keyClick(window.library_view.list, Qt.Key.Key_Comma, Qt.KeyboardModifier.ControlModifier)
    dialogs = [d for d in window.findChildren(PreferencesDialog) if d.isVisible()]
    assert len(dialogs) == 1
    dialogs[0].reject()


def test_renaming_the_open_project_in_the_library_sticks_after_more_edits(qtbot, window, midi_file):
    project = open_midi(qtbot, window, midi_file)
    window.library_view.rename(window.library_view.selected_project(), "Evening Study")
    assert window.windowTitle() == "Evening Study — Notefall"
    fps = window.inspector.editors["fps"]
    assert isinstance(fps, ChoiceEditor)
    fps.set_value(24)
    qtbot.waitUntil(lambda: LocalProject.load(project.folder).settings.fps == 24)
    assert LocalProject.load(project.folder).name == "Evening Study"


def test_deleting_the_open_project_closes_it(qtbot, window, midi_file):
    project = open_midi(qtbot, window, midi_file)
    window.library_view.delete(window.library_view.selected_project())
    assert window.current_project is None
    assert window.empty_hint.isVisible()
    assert not project.folder.exists()


def test_clicking_a_project_in_the_library_opens_it(qtbot, window, midi_file, tmp_path):
    first = open_midi(qtbot, window, midi_file)
    other = tmp_path / "Other.mid"
    other.write_bytes(midi_file.read_bytes())
    open_midi(qtbot, window, other)
    view = window.library_view
    item = next(
        view.list.item(i) for i in range(view.list.count())
        if view.list.item(i).data(Qt.ItemDataRole.UserRole).id == first.id
    )  # fmt: skip
    rect = view.list.visualItemRect(item)
    with qtbot.waitSignal(app_signals().project_opened, timeout=30_000) as opened:
        qtbot.mouseClick(view.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert opened.args[0].id == first.id
    assert window.current_project.id == first.id
