"""Shared set-up for desktop tests: a real Qt event loop on the offscreen platform.

Every test gets its own app-data folder, download folder and QSettings file, and a
fresh app-wide signal hub, so tests never see each other's projects or preferences
(and never the developer's own). ``screenshot(widget, name)`` saves
out/screens/desktop-<name>.png for a person to look at.
"""

from __future__ import annotations

import os

# Before anything imports Qt: no display here, and none is needed. The offscreen
# platform's default screen is 800x600, smaller than the window; give it a desktop's.
if os.environ.get("QT_QPA_PLATFORM", "offscreen") == "offscreen":
    _screen = os.path.join(os.path.dirname(__file__), "offscreen_screen.json")
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={_screen}"

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from notefall.desktop.ops import wait_for_operations
from notefall.desktop.settings import DATA_DIR_ENV, DOWNLOAD_DIR_ENV, AppSettings
from notefall.desktop.signals import reset_app_signals
from PySide6.QtCore import QMimeData, QPoint, QPointF, QSettings, QStandardPaths, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QWidget

from tests.support.midi_factory import make_midi

SCREENS = Path(__file__).resolve().parents[2] / "out" / "screens"


@pytest.fixture(autouse=True)
def desktop_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, qapp) -> Iterator[Path]:
    """Isolated folders and preferences for one test; returns the app-data folder."""
    data = tmp_path / "appdata"
    monkeypatch.setenv(DATA_DIR_ENV, str(data))
    monkeypatch.setenv(DOWNLOAD_DIR_ENV, str(tmp_path / "downloads"))
    QStandardPaths.setTestModeEnabled(True)
    QSettings.setPath(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "qsettings")
    )
    reset_app_signals()
    yield data
    # Let background work end before the next test's folders replace this one's.
    wait_for_operations(60_000)
    qapp.processEvents()
    reset_app_signals()


@pytest.fixture
def app_settings() -> AppSettings:
    return AppSettings()


@pytest.fixture
def screenshot() -> Callable[[QWidget, str], Path]:
    def save(widget: QWidget, name: str) -> Path:
        SCREENS.mkdir(parents=True, exist_ok=True)
        path = SCREENS / f"desktop-{name}.png"
        assert widget.grab().save(str(path)), f"could not save {path}"
        return path

    return save


def drop_files(widget: QWidget, paths: list[Path]) -> bool:
    """Drag ``paths`` onto ``widget`` and drop them, as a file manager does.

    Returns whether the widget accepted the drag; the drop is only sent if it did (Qt
    routes a drop to the widget that accepted the drag-enter).
    """
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    with warnings.catch_warnings():
        # PySide6 6.12 marks its only QDragEnterEvent constructor deprecated.
        warnings.simplefilter("ignore", DeprecationWarning)
        enter = QDragEnterEvent(
            QPoint(40, 40), Qt.DropAction.CopyAction, mime,
            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
        )  # fmt: skip
    enter.setAccepted(False)
    QApplication.sendEvent(widget, enter)
    if not enter.isAccepted():
        return False
    drop = QDropEvent(
        QPointF(40, 40), Qt.DropAction.CopyAction, mime,
        Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
    )  # fmt: skip
    QApplication.sendEvent(widget, drop)
    return True


@pytest.fixture
def midi_file(tmp_path: Path) -> Path:
    """A short two-hand phrase (about 4 s at 120 bpm) as a .mid file."""
    notes = [(beat * 0.5, 0.5, 60 + (beat % 8), 90, 0) for beat in range(12)]
    notes += [(beat * 1.0, 1.0, 48 + (beat % 4), 70, 0, 2) for beat in range(6)]
    path = tmp_path / "Little Tune.mid"
    path.write_bytes(make_midi(notes, title="Little Tune", track_names=("Right", "Left")))
    return path


@pytest.fixture
def damaged_midi(tmp_path: Path) -> Path:
    path = tmp_path / "broken.mid"
    path.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0")  # header, no tracks
    return path
