"""Files named when the app starts (command line, the desktop's "Open with")."""

from __future__ import annotations

from pathlib import Path

import pytest
from notefall.desktop.app import open_files
from notefall.desktop.main_window import MainWindow
from notefall.desktop.settings import AppSettings
from notefall.desktop.signals import app_signals


@pytest.fixture
def window(qtbot) -> MainWindow:
    win = MainWindow(AppSettings())
    qtbot.addWidget(win)
    win.show()
    return win


def test_the_same_song_opened_twice_reopens_its_project(qtbot, window, midi_file: Path, tmp_path):
    with qtbot.waitSignal(app_signals().project_opened, timeout=30_000) as first:
        open_files(window, [midi_file])
    copy = tmp_path / "same-song-other-name.mid"
    copy.write_bytes(midi_file.read_bytes())
    with qtbot.waitSignal(app_signals().project_opened, timeout=30_000) as second:
        open_files(window, [copy])
    assert second.args[0].folder == first.args[0].folder
    assert len(window.library.projects()) == 1


def test_a_file_that_is_not_midi_is_named_in_the_banner(qtbot, window, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a song")
    open_files(window, [notes])
    qtbot.waitUntil(window.banner.isVisible, timeout=10_000)
    assert window.banner.title.text() == "Not a MIDI file"
    assert "notes.txt is not a MIDI file" in window.banner.message.text()
    assert window.library.projects() == []
