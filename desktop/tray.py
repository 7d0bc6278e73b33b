"""The system tray: a status icon, notifications when renders end, recent renders, Quit.

Closing the main window while cloud renders run hides it here instead of quitting
(``Tray.should_hide_on_close``), and the renders go on: their events arrive on their own
threads, the download runs in the background and the notification says when it is done.

Where the desktop has no tray (a bare X server, the tests' offscreen platform) the Tray
still records every notification in ``messages`` and announces it with ``notified``, and
shows the same text in the status bar.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, QUrl, Signal
from PySide6.QtGui import QAction, QColor, QDesktopServices, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QApplication, QMenu, QSystemTrayIcon, QWidget

from .ops import ErrorReport
from .signals import RenderNotice, app_signals

if TYPE_CHECKING:
    from .cloud.renders import CloudRenders

log = logging.getLogger(__name__)

RECENT_LIMIT = 10
STATUS_COLOURS = {"idle": "#7a8699", "rendering": "#3b82f6", "error": "#dc2626"}


@dataclass(frozen=True)
class TrayMessage:
    """A notification as shown (or, without a tray, as it would have been shown)."""

    title: str
    text: str
    notice: RenderNotice
    failed: bool


def status_icon(state: str) -> QIcon:
    """A round note head in the state's colour (drawn, so no file can go missing)."""
    pixmap = QPixmap(64, 64)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(STATUS_COLOURS[state]))
    painter.drawRoundedRect(8, 4, 48, 56, 14, 14)
    painter.setBrush(QColor("#ffffff"))
    painter.drawEllipse(20, 34, 18, 14)
    painter.drawRect(34, 12, 4, 28)
    painter.end()
    return QIcon(pixmap)


class Tray(QObject):
    notified = Signal(object)  # TrayMessage
    state_changed = Signal(str)  # idle, rendering, error
    show_window_requested = Signal()
    quit_requested = Signal()

    def __init__(
        self,
        window: QWidget | None = None,
        renders: CloudRenders | None = None,
        parent: QObject | None = None,
        *,
        open_url: Callable[[QUrl], object] | None = None,
        tray_available: bool | None = None,
    ) -> None:
        super().__init__(parent)
        self._window = window
        self._renders = renders  # a cloud.CloudRenders (has_active()), when signed in
        self._open_url = QDesktopServices.openUrl if open_url is None else open_url
        self.available = (
            QSystemTrayIcon.isSystemTrayAvailable() if tray_available is None else tray_available
        )
        self.messages: list[TrayMessage] = []
        self.recent: list[TrayMessage] = []
        self._running: set[tuple[str, str]] = set()
        self.state = "idle"
        self._icons = {name: status_icon(name) for name in STATUS_COLOURS}

        self.icon = QSystemTrayIcon(self._icons["idle"], self)
        self.icon.setToolTip("Notefall")
        self.menu = QMenu()
        self._show_action = QAction("Show Notefall", self.menu)
        self._show_action.triggered.connect(self.show_window)
        self.recent_menu = QMenu("Recent renders", self.menu)
        self._quit_action = QAction("Quit Notefall", self.menu)
        self._quit_action.triggered.connect(self.quit_requested.emit)
        self.menu.addAction(self._show_action)
        self.menu.addMenu(self.recent_menu)
        self.menu.addSeparator()
        self.menu.addAction(self._quit_action)
        self.icon.setContextMenu(self.menu)
        self.icon.messageClicked.connect(self._message_clicked)
        self.icon.activated.connect(self._activated)
        self._rebuild_recent()
        if self.available:
            self.icon.show()

        signals = app_signals()
        signals.render_started.connect(self._started)
        signals.render_finished.connect(self._finished)
        signals.render_failed.connect(self._failed)

    # Closing to the tray -----------------------------------------------------------------

    def should_hide_on_close(self) -> bool:
        """True while cloud renders run and a tray icon can bring the window back."""
        active = self._renders is not None and self._renders.has_active()
        return self.available and active

    def set_renders(self, renders: CloudRenders | None) -> None:
        self._renders = renders

    def show_window(self) -> None:
        self.show_window_requested.emit()
        if self._window is not None:
            self._window.showNormal()
            self._window.raise_()
            self._window.activateWindow()

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason == QSystemTrayIcon.ActivationReason.Trigger:
            self.show_window()

    # Renders -----------------------------------------------------------------------------

    @staticmethod
    def _key(notice: RenderNotice) -> tuple[str, str]:
        return notice.kind, notice.render_id or notice.project

    def _started(self, notice: RenderNotice) -> None:
        self._running.add(self._key(notice))
        self._set_state("rendering")

    def _finished(self, notice: RenderNotice) -> None:
        self._running.discard(self._key(notice))
        where = f" It is in {notice.output.parent}." if notice.output else ""
        self._notify(
            TrayMessage(
                "Video ready",
                f"{notice.project} is rendered.{where} Click to open it.",
                notice,
                failed=False,
            )
        )
        self._set_state("rendering" if self._running else "idle")

    def _failed(self, notice: RenderNotice) -> None:
        self._running.discard(self._key(notice))
        text = notice.message or "The render did not finish."
        self._notify(TrayMessage(f"{notice.project}: render failed", text, notice, failed=True))
        self._set_state("error")

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.icon.setIcon(self._icons[state])
            tips = {"idle": "Notefall", "rendering": "Notefall: rendering…"}
            self.icon.setToolTip(tips.get(state, "Notefall: a render failed"))
            self.state_changed.emit(state)

    def _notify(self, message: TrayMessage) -> None:
        self.messages.append(message)
        self.recent.insert(0, message)
        del self.recent[RECENT_LIMIT:]
        self._rebuild_recent()
        if self.available:
            icon = (
                QSystemTrayIcon.MessageIcon.Warning
                if message.failed
                else QSystemTrayIcon.MessageIcon.Information
            )
            self.icon.showMessage(message.title, message.text, icon, 10_000)
        else:
            app_signals().status_message.emit(f"{message.title}: {message.text}")
        self.notified.emit(message)

    def _message_clicked(self) -> None:
        if self.messages:
            self.open_message(self.messages[-1])

    def open_message(self, message: TrayMessage) -> None:
        """A finished video opens in the user's player; a failure shows its reason."""
        output = message.notice.output
        if not message.failed and output is not None and Path(output).exists():
            self._open_url(QUrl.fromLocalFile(str(output)))
            return
        self.show_window()
        app_signals().error_raised.emit(ErrorReport(message.text, title=message.title))
        if self.state == "error":
            self._set_state("rendering" if self._running else "idle")

    def _rebuild_recent(self) -> None:
        self.recent_menu.clear()
        if not self.recent:
            placeholder = self.recent_menu.addAction("No renders yet")
            placeholder.setEnabled(False)
            return
        for message in self.recent:
            mark = "✗" if message.failed else "✓"
            action = self.recent_menu.addAction(f"{mark} {message.notice.project}")
            action.setToolTip(message.text)
            action.triggered.connect(lambda _=False, m=message: self.open_message(m))

    def quit_app(self) -> None:
        self.icon.hide()
        app = QApplication.instance()
        if app is not None:
            app.quit()
