"""The project library: open or drop a MIDI, refuse damaged files cleanly, rename, duplicate, delete."""

from __future__ import annotations

import json
from pathlib import Path

from notefall.common.settings import RenderSettings
from notefall.desktop.library import LibraryView, ProjectLibrary
from notefall.desktop.ops import ErrorReport
from notefall.desktop.project import PROJECT_FILE, LocalProject
from notefall.desktop.settings import AppSettings
from notefall.desktop.signals import app_signals
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from tests.desktop.conftest import drop_files


def make_view(qtbot, settings: AppSettings) -> LibraryView:
    view = LibraryView(ProjectLibrary(settings))
    qtbot.addWidget(view)
    view.resize(300, 480)
    view.show()
    return view


def project_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir()) if root.exists() else []


def test_opening_a_midi_creates_a_project_with_a_copy_of_the_song(
    qtbot, app_settings, midi_file, screenshot
):
    view = make_view(qtbot, app_settings)
    with qtbot.waitSignal(view.open_requested, timeout=20_000) as opened:
        view.import_paths([midi_file])
    project = opened.args[0]
    assert isinstance(project, LocalProject)
    assert project.name == "Little Tune"
    assert project.midi_path.read_bytes() == midi_file.read_bytes()
    assert project.note_count == 18
    assert view.project_names() == ["Little Tune"]
    assert view.selected_project().id == project.id
    assert not view.empty_hint.isVisible()
    saved = json.loads((project.folder / PROJECT_FILE).read_text())
    assert saved["name"] == "Little Tune" and saved["midi"] == project.midi_file
    screenshot(view, "library")


def test_dropping_a_midi_onto_the_library_creates_a_project(qtbot, app_settings, midi_file):
    view = make_view(qtbot, app_settings)
    with qtbot.waitSignal(view.open_requested, timeout=20_000):
        assert drop_files(view, [midi_file])
    assert view.project_names() == ["Little Tune"]


def test_a_dragged_text_file_is_not_accepted(qtbot, app_settings, tmp_path):
    view = make_view(qtbot, app_settings)
    notes = tmp_path / "notes.txt"
    notes.write_text("not music")
    assert not drop_files(view, [notes])
    assert list(app_settings.projects_dir().iterdir()) == []


def test_a_damaged_midi_is_refused_with_the_engines_message_and_leaves_nothing(
    qtbot, app_settings, damaged_midi
):
    view = make_view(qtbot, app_settings)
    with qtbot.waitSignal(app_signals().error_raised, timeout=20_000) as raised:
        view.import_paths([damaged_midi])
    report = raised.args[0]
    assert isinstance(report, ErrorReport)
    assert report.message == (
        "Could not open broken.mid: The MIDI file contains no tracks (it has a header but no "
        "MTrk data); the file is damaged or was cut short."
    )
    assert "Traceback" not in report.message
    assert report.retry is None
    assert project_folders(app_settings.projects_dir()) == []
    assert view.project_names() == []
    assert view.empty_hint.isVisible()


def test_rename_duplicate_and_delete_after_confirming(qtbot, app_settings, midi_file):
    root = app_settings.projects_dir()
    original = LocalProject.create(root, midi_file)
    view = make_view(qtbot, app_settings)
    view.select(original)

    view.rename(original, "  Evening   Study ")
    assert view.project_names() == ["Evening Study"]
    assert LocalProject.load(original.folder).name == "Evening Study"

    view.select(original)
    view.duplicate_selected()
    assert sorted(view.project_names()) == ["Evening Study", "Evening Study (copy)"]

    copy = next(p for p in view.library.projects() if p.name.endswith("(copy)"))
    view.select(copy)
    _answer_next_dialog("Cancel")
    view.delete_selected()
    assert copy.folder.exists()

    _answer_next_dialog("Delete")
    view.delete_selected()
    assert not copy.folder.exists()
    assert view.project_names() == ["Evening Study"]
    assert [p.name for p in project_folders(root)] == [original.folder.name]


def test_an_empty_name_is_refused_and_the_old_name_kept(qtbot, app_settings, midi_file):
    project = LocalProject.create(app_settings.projects_dir(), midi_file)
    view = make_view(qtbot, app_settings)
    with qtbot.waitSignal(app_signals().error_raised, timeout=5_000) as raised:
        view.rename(project, "   ")
    assert raised.args[0].message == "Could not rename Little Tune: A project needs a name."
    assert LocalProject.load(project.folder).name == "Little Tune"


def test_a_damaged_project_file_is_listed_for_removal_not_crashing_the_list(
    qtbot, app_settings, midi_file
):
    good = LocalProject.create(app_settings.projects_dir(), midi_file)
    bad = LocalProject.create(app_settings.projects_dir(), midi_file, name="Broken one")
    (bad.folder / PROJECT_FILE).write_text("{ half a json")
    view = make_view(qtbot, app_settings)
    assert view.project_names() == [good.name]
    assert bad.folder in view.library.damaged
    assert "damaged" in view.library.damaged[bad.folder]
    assert view.list.count() == 2


def test_projects_keep_their_settings_and_recording(app_settings, midi_file, tmp_path):
    recording = tmp_path / "take1.wav"
    recording.write_bytes(b"RIFF....WAVE")  # copied as is; the renderer checks its contents
    settings = RenderSettings(theme="neon", resolution="720p", fps=60)
    project = LocalProject.create(
        app_settings.projects_dir(), midi_file, audio=recording, settings=settings
    )
    again = LocalProject.load(project.folder)
    assert again.settings == settings
    assert again.audio_path is not None and again.audio_path.read_bytes() == b"RIFF....WAVE"
    assert again.render_settings().audio == str(again.audio_path)
    again.set_audio(None)
    assert LocalProject.load(project.folder).audio_path is None
    assert {p.name for p in project.folder.iterdir()} == {PROJECT_FILE, "song.mid"}


def test_recent_projects_follow_opening_order_and_forget_deleted_ones(app_settings, midi_file):
    library = ProjectLibrary(app_settings)
    first = LocalProject.create(library.root, midi_file, name="First")
    second = LocalProject.create(library.root, midi_file, name="Second")
    library.remember_opened(first)
    library.remember_opened(second)
    library.remember_opened(first)
    assert [p.name for p in library.recent_projects()] == ["First", "Second"]
    library.delete(first)
    assert [p.name for p in library.recent_projects()] == ["Second"]
    assert [p.name for p in ProjectLibrary(AppSettings()).recent_projects()] == ["Second"]


def _answer_next_dialog(button_text: str) -> None:
    """Click a button of the confirmation box as soon as it is shown (it runs its own loop)."""

    def click() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(10, click)
            return
        for button in box.buttons():
            if button.text().replace("&", "") == button_text:
                button.click()
                return
        raise AssertionError(f"no {button_text!r} button in {[b.text() for b in box.buttons()]}")

    QTimer.singleShot(0, click)
