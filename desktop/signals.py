"""App-wide signals: the few events many parts of the window care about.

Modelled on Frescobaldi's ``app`` module: a part announces ("a render finished")
without knowing who listens (the tray, the library, the status bar). Widgets talk
to their own children directly; only cross-cutting news goes through here.

Usage::

    from notefall.desktop.signals import app_signals
    app_signals().project_opened.connect(self._show_project)
    app_signals().error_raised.emit(ErrorReport("The server is unreachable.", retry=self.refresh))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal


@dataclass(frozen=True, slots=True)
class RenderNotice:
    """A render's news, local or cloud, as the tray and status bar show it."""

    kind: str  # "local" or "cloud"
    project: str  # project name shown to the user
    render_id: str = ""  # cloud render id; empty for local renders
    output: Path | None = None  # the finished file, once there is one
    message: str = ""  # failure reason or a short status


class AppSignals(QObject):
    # ops.ErrorReport: the main window shows it in its error banner (with Retry if given).
    error_raised = Signal(object)
    # A short, transient note for the status bar.
    status_message = Signal(str)
    # settings.AppSettings key that changed ("server_url", "theme", ...).
    settings_changed = Signal(str)
    # project.LocalProject opened in the studio / closed / the library's list changed.
    project_opened = Signal(object)
    project_closed = Signal()
    projects_changed = Signal()
    # RenderNotice for local and cloud renders alike.
    render_started = Signal(object)
    render_finished = Signal(object)
    render_failed = Signal(object)
    # Account: dict-like account summary from the server; tier name ("free", "pro", ...).
    signed_in = Signal(object)
    signed_out = Signal()
    tier_changed = Signal(object)


_signals: AppSignals | None = None


def app_signals() -> AppSignals:
    """The one hub for this process (created on first use, on the UI thread)."""
    global _signals
    if _signals is None:
        _signals = AppSignals()
    return _signals


def reset_app_signals() -> None:
    """A fresh hub, so one test's listeners never hear another test's events."""
    global _signals
    if _signals is not None:
        _signals.deleteLater()
    _signals = None
