"""Start the desktop app: ``notefall desktop``, ``notefall-desktop`` or ``python -m notefall.desktop``."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .main_window import MainWindow

EXIT_WHEN_IDLE_ENV = "NOTEFALL_DESKTOP_EXIT_WHEN_IDLE"  # the cold-start benchmark's hook


def apply_theme(app: object, theme: object) -> None:
    """Light, dark or the system's look, on the Fusion style so both read the same everywhere."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QColor, QGuiApplication, QPalette
    from PySide6.QtWidgets import QApplication

    from .settings import UiTheme

    assert isinstance(app, QApplication)
    hints = QGuiApplication.styleHints()
    if theme == UiTheme.DARK:
        hints.setColorScheme(Qt.ColorScheme.Dark)
    elif theme == UiTheme.LIGHT:
        hints.setColorScheme(Qt.ColorScheme.Light)
    else:
        hints.unsetColorScheme()
    # Some platforms ignore the requested scheme; the user's explicit choice still wins.
    dark = theme == UiTheme.DARK or (
        theme != UiTheme.LIGHT and hints.colorScheme() == Qt.ColorScheme.Dark
    )
    palette = app.style().standardPalette()
    if dark:
        roles = {
            QPalette.ColorRole.Window: "#1e222b",
            QPalette.ColorRole.WindowText: "#e6e9ef",
            QPalette.ColorRole.Base: "#161a22",
            QPalette.ColorRole.AlternateBase: "#232834",
            QPalette.ColorRole.Text: "#e6e9ef",
            QPalette.ColorRole.Button: "#2a303c",
            QPalette.ColorRole.ButtonText: "#e6e9ef",
            QPalette.ColorRole.Highlight: "#3d7bd9",
            QPalette.ColorRole.HighlightedText: "#ffffff",
            QPalette.ColorRole.ToolTipBase: "#2a303c",
            QPalette.ColorRole.ToolTipText: "#e6e9ef",
            QPalette.ColorRole.PlaceholderText: "#8a93a6",
            QPalette.ColorRole.Link: "#7fb0ff",
        }
        for role, colour in roles.items():
            palette.setColor(role, QColor(colour))
        palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor("#6b7280"))
        palette.setColor(
            QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor("#6b7280")
        )
        palette.setColor(
            QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText, QColor("#6b7280")
        )
    app.setPalette(palette)
    app.setStyleSheet(
        "QLabel#panelTitle { font-weight: 600; font-size: 11pt; padding: 2px 0 4px 0; }"
        "QLabel#emptyHint { color: palette(placeholder-text); font-size: 11pt; padding: 24px; }"
        "QListWidget#projectList::item { padding: 6px 4px; }"
    )


def create_application(argv: Sequence[str]) -> object:
    from PySide6.QtWidgets import QApplication

    from .resources import icon
    from .settings import APP_NAME, ORGANISATION, AppSettings

    app = QApplication.instance() or QApplication(list(argv))
    assert isinstance(app, QApplication)
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setDesktopFileName("notefall")
    app.setWindowIcon(icon("notefall"))
    app.setStyle("Fusion")
    # Closing the window while cloud renders run hides it to the tray; quitting is explicit.
    app.setQuitOnLastWindowClosed(True)
    apply_theme(app, AppSettings().theme)
    return app


MIDI_SUFFIXES = (".mid", ".midi", ".kar", ".rmi")


def open_files(window: MainWindow, paths: list[Path]) -> None:
    """Files named on the command line (or by the desktop's "Open with"): a song already in
    the library reopens its project, a new one becomes a project, anything else is said in
    the banner rather than ignored."""
    from .ops import ErrorReport
    from .signals import app_signals

    for path in paths:
        if path.suffix.lower() not in MIDI_SUFFIXES:
            app_signals().error_raised.emit(
                ErrorReport(
                    f"{path.name} is not a MIDI file (.mid, .midi, .kar or .rmi); "
                    "open one with File → Open MIDI…",
                    title="Not a MIDI file",
                )
            )
            continue
        existing = window.library.find_by_midi(path)
        if existing is not None:
            window.library_view.select(existing)
            window.open_project(existing)
        else:
            window.library_view.import_paths([path])


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv if argv is None else argv)
    from .local_render import RENDER_JOB_FLAG

    if len(args) > 1 and args[1] == RENDER_JOB_FLAG:
        # A frozen build has no "python -m": the render child is this same program.
        from .render_process import main as render_job

        return render_job()
    logging.basicConfig(level=os.environ.get("NOTEFALL_LOG_LEVEL", "WARNING"))

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from .main_window import MainWindow
    from .ops import wait_for_operations

    app = create_application(args)
    assert isinstance(app, QApplication)
    window = MainWindow()
    window.show()
    open_files(window, [Path(path) for path in args[1:]])
    last = window.settings.last_project
    if last and len(args) <= 1:
        project = window.library.find(last)
        if project is not None:
            window.open_project(project)
    if os.environ.get(EXIT_WHEN_IDLE_ENV) == "1":

        def interactive() -> None:
            print("notefall-desktop interactive", flush=True)
            app.quit()

        QTimer.singleShot(0, interactive)
    code = app.exec()
    window.preview.close_preview()  # its frame thread and player end with the window
    wait_for_operations(10_000)
    return int(code)


if __name__ == "__main__":
    raise SystemExit(main())
