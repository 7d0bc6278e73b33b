"""The studio window: projects on the left, the preview in the centre, settings on the right.

Docks (movable, remembered between runs): Projects on the left; Render settings,
Account and Cloud renders as tabs on the right; Render (local progress) below. Errors
from any background operation arrive through ``app_signals().error_raised`` and show
in one banner above the preview, with Retry when the operation can be repeated.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from notefall.common.settings import RenderSettings
from notefall.common.song import Song
from PySide6.QtCore import Qt, QTimer, QUrl
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDesktopServices,
    QDragEnterEvent,
    QDropEvent,
    QKeyEvent,
    QKeySequence,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from .inspector import Inspector
from .library import LibraryView, ProjectLibrary, midi_paths
from .local_render import LocalRenderPanel, default_output_name, show_in_folder
from .ops import ErrorReport, Operation, user_message
from .preferences import PreferencesDialog
from .preview.pane import PreviewPane
from .project import LocalProject
from .resources import icon
from .settings import AppSettings, app_data_dir
from .signals import app_signals

if TYPE_CHECKING:
    from .cloud.account_panel import AccountPanel
    from .cloud.renders import CloudRenders
    from .cloud.session import CloudSession
    from .tray import Tray

log = logging.getLogger(__name__)

# Bump when the set of docks changes, so an old saved layout is ignored, not misapplied.
STATE_VERSION = 1
SEEK_STEP = 5.0


def app_version() -> str:
    try:
        from importlib.metadata import version

        return version("notefall")
    except Exception:  # not installed as a distribution (a frozen build, a bare checkout)
        import notefall

        return str(getattr(notefall, "__version__", "development"))


class ErrorBanner(QFrame):
    """One clear line about what went wrong, Retry when it can be retried, and Dismiss."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("errorBanner")
        self.setStyleSheet(
            "QFrame#errorBanner { background: #fdecec; border: 1px solid #f2a7a7;"
            " border-radius: 6px; } QFrame#errorBanner QLabel { color: #7a1c1c; }"
        )
        self.report: ErrorReport | None = None
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self.icon = QLabel()
        self.icon.setPixmap(icon("warning").pixmap(18, 18))
        self.title = QLabel()
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.retry_button = QPushButton("Retry")
        self.retry_button.clicked.connect(self.retry)
        self.dismiss_button = QToolButton()
        self.dismiss_button.setText("✕")
        self.dismiss_button.setToolTip("Dismiss")
        self.dismiss_button.clicked.connect(self.hide)
        text = QVBoxLayout()
        text.setSpacing(0)
        text.addWidget(self.title)
        text.addWidget(self.message)
        row = QHBoxLayout(self)
        row.setContentsMargins(10, 6, 6, 6)
        row.addWidget(self.icon, 0, Qt.AlignmentFlag.AlignTop)
        row.addLayout(text, 1)
        row.addWidget(self.retry_button, 0, Qt.AlignmentFlag.AlignTop)
        row.addWidget(self.dismiss_button, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def show_report(self, report: ErrorReport) -> None:
        self.report = report
        self.title.setText(report.title)
        self.message.setText(report.message)
        self.retry_button.setVisible(report.retry is not None)
        self.show()

    def retry(self) -> None:
        report, self.report = self.report, None
        self.hide()
        if report is not None and report.retry is not None:
            report.retry()


class MainWindow(QMainWindow):
    def __init__(self, settings: AppSettings | None = None, *, cloud: bool = True) -> None:
        super().__init__()
        self.settings = settings or AppSettings()
        self.setObjectName("mainWindow")
        self.setWindowTitle("Notefall")
        self.setWindowIcon(icon("notefall"))
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        self.current_project: LocalProject | None = None
        self._song: Song | None = None
        self._opening: str | None = None

        self.library = ProjectLibrary(self.settings, self)
        self.library_view = LibraryView(self.library)
        self.library_view.open_requested.connect(self.open_project)
        self.preview = PreviewPane(self, audio_cache=app_data_dir() / "preview-audio")
        self.inspector = Inspector()
        self.inspector.settings_changed.connect(self._settings_edited)
        self.inspector.recording_chosen.connect(self._recording_chosen)
        self.render_panel = LocalRenderPanel()
        self.banner = ErrorBanner()
        self.empty_hint = QLabel(
            "Open a MIDI file (Ctrl+O) or drop one anywhere in this window to start a project."
        )
        self.empty_hint.setObjectName("emptyHint")
        self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_hint.setWordWrap(True)

        centre = QWidget()
        column = QVBoxLayout(centre)
        column.setContentsMargins(6, 6, 6, 6)
        column.addWidget(self.banner)
        column.addWidget(self.empty_hint, 1)
        column.addWidget(self.preview, 1)
        self.setCentralWidget(centre)

        self.docks: dict[str, QDockWidget] = {}
        self._dock("projects", "Projects", self.library_view, Qt.DockWidgetArea.LeftDockWidgetArea)
        self._dock(
            "inspector", "Render settings", self.inspector, Qt.DockWidgetArea.RightDockWidgetArea
        )
        self._dock("render", "Render", self.render_panel, Qt.DockWidgetArea.BottomDockWidgetArea)

        self.session: CloudSession | None = None
        self.account_panel: AccountPanel | None = None
        self.cloud_renders: CloudRenders | None = None
        self.cloud_panel: QWidget | None = None
        self.tray: Tray | None = None
        if cloud:
            self._build_cloud()

        self._build_menus()
        self.statusBar().showMessage("Ready", 3000)
        self._show_project_state()

        signals = app_signals()
        signals.error_raised.connect(self.show_error)
        signals.status_message.connect(lambda text: self.statusBar().showMessage(text, 6000))
        signals.project_closed.connect(self.close_project)
        # Others (the cloud panel's "open locally") announce a project to show; ours is
        # announced after loading, and the id check keeps that from looping.
        signals.project_opened.connect(self._project_announced)
        signals.projects_changed.connect(self._refresh_recent_menu)
        signals.projects_changed.connect(self._reload_current_project)
        signals.settings_changed.connect(self._app_setting_changed)
        self.render_panel.running_changed.connect(self._render_running)

        self.resize(1440, 900)
        self._layout_restored = self.restore_layout()

    # Building -----------------------------------------------------------------------------

    def _dock(self, key: str, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{key}")  # saveState() finds docks by object name
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        self.docks[key] = dock
        return dock

    def _build_cloud(self) -> None:
        """The account, cloud renders and tray (notefall.desktop.cloud, over HTTP only)."""
        from .cloud.account_panel import AccountPanel
        from .cloud.renders import CloudRenders
        from .cloud.session import CloudSession
        from .tray import Tray

        self.session = CloudSession(
            self.settings.server_url, app_data_dir(), self.settings.download_dir, parent=self
        )
        self.account_panel = AccountPanel(self.session)
        account = self._dock(
            "account", "Account", self.account_panel, Qt.DockWidgetArea.RightDockWidgetArea
        )
        self.tabifyDockWidget(self.docks["inspector"], account)
        self.cloud_renders = CloudRenders(self.session, parent=self)
        try:
            from .cloud.cloud_panel import CloudPanel
        except ImportError:  # D3's panel not written yet; the rest of the cloud works without it
            log.warning("Cloud panel unavailable")
        else:
            self.cloud_panel = CloudPanel(
                self.session, self.cloud_renders, self.settings.projects_dir
            )
            # Beside the settings, not under the preview: its lists need height the preview needs.
            cloud = self._dock(
                "cloud", "Cloud renders", self.cloud_panel, Qt.DockWidgetArea.RightDockWidgetArea
            )
            self.tabifyDockWidget(self.docks["account"], cloud)
        self.docks["inspector"].raise_()
        self.docks["render"].raise_()
        self.tray = Tray(self, self.cloud_renders, parent=self)
        self.tray.quit_requested.connect(self.quit)

        self.session.tier_changed.connect(self.inspector.set_tier)
        self.session.tier_changed.connect(app_signals().tier_changed.emit)
        self.session.offline.connect(
            lambda message: self.show_error(
                ErrorReport(
                    message, retry=self.session.reload, title="The Notefall server is unreachable"
                )
            )
        )
        # Signing out drops the plan without a tier_changed; signed out counts as Free.
        self.session.signed_in_changed.connect(self._sign_in_changed)
        self.inspector.set_tier(self.session.tier)
        self.inspector.upgrade_requested.connect(self.upgrade)

    def _sign_in_changed(self, _signed_in: bool) -> None:
        if self.session is not None:
            self.inspector.set_tier(self.session.tier)

    def _action(
        self,
        text: str,
        slot: Any,
        shortcut: str | QKeySequence.StandardKey | None = None,
        *,
        window_wide: bool = True,
    ) -> QAction:
        action = QAction(text, self)
        action.triggered.connect(slot)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            if not window_wide:
                # Shown in the menu; the key itself is handled by keyPressEvent/the preview so
                # that a focused text field or list keeps Space and the arrow keys.
                action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        if window_wide:
            self.addAction(action)  # the window's shortcuts work whichever dock has focus
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        self.open_action = self._action("&Open MIDI…", self.library_view.choose_midi, "Ctrl+O")
        self.open_action.setIcon(icon("open"))
        self.recent_menu = QMenu("Open &Recent", self)
        self.recent_menu.setObjectName("recentMenu")
        self.attach_action = self._action("Attach &Recording…", self._attach_recording)
        self.render_action = self._action("&Render Video…", self.render_locally, "Ctrl+R")
        self.render_action.setIcon(icon("render"))
        self.cloud_render_action = self._action(
            "Render in the &Cloud", self.render_in_cloud, "Ctrl+Shift+R"
        )
        self.cloud_render_action.setIcon(icon("cloud"))
        self.cancel_render_action = self._action("Cancel Render", self.render_panel.cancel)
        self.show_folder_action = self._action("Show Project in &Folder", self._show_project_folder)
        self.preferences_action = self._action("&Settings…", self.open_preferences, "Ctrl+,")
        self.preferences_action.setMenuRole(QAction.MenuRole.PreferencesRole)
        self.quit_action = self._action("&Quit", self.quit, QKeySequence.StandardKey.Quit)
        self.quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        file.addAction(self.open_action)
        file.addMenu(self.recent_menu)
        file.addAction(self.attach_action)
        file.addSeparator()
        file.addAction(self.render_action)
        file.addAction(self.cloud_render_action)
        file.addAction(self.cancel_render_action)
        file.addAction(self.show_folder_action)
        file.addSeparator()
        file.addAction(self.preferences_action)
        file.addSeparator()
        file.addAction(self.quit_action)

        playback = bar.addMenu("&Playback")
        self.play_action = self._action(
            "&Play / Pause", self.preview.toggle, "Space", window_wide=False
        )
        self.back_action = self._action(
            "&Back 5 s", lambda: self.seek_by(-SEEK_STEP), "Left", window_wide=False
        )
        self.forward_action = self._action(
            "&Forward 5 s", lambda: self.seek_by(SEEK_STEP), "Right", window_wide=False
        )
        self.start_action = self._action(
            "Go to &Start", lambda: self.preview.seek(0.0), "Home", window_wide=False
        )
        for action in (self.play_action, self.back_action, self.forward_action, self.start_action):
            playback.addAction(action)

        view = bar.addMenu("&View")
        for dock in self.docks.values():
            view.addAction(dock.toggleViewAction())
        view.addSeparator()
        view.addAction(self._action("Reset &Layout", self.reset_layout))

        if self.session is not None:
            account = bar.addMenu("&Account")
            assert self.account_panel is not None
            account.addAction(self._action("Show &Account", lambda: self._raise_dock("account")))
            account.addAction(self._action("&Upgrade…", self.upgrade))
            account.addAction(
                self._action("&Manage Account in the Browser", self.account_panel.manage_account)
            )

        help_menu = bar.addMenu("&Help")
        self.about_action = self._action("&About Notefall", self.show_about)
        self.about_action.setMenuRole(QAction.MenuRole.AboutRole)
        help_menu.addAction(self._action("Notefall &Documentation", self._open_docs))
        help_menu.addAction(self.about_action)

        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("toolbar_main")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        toolbar.addAction(self.open_action)
        toolbar.addAction(self.render_action)
        toolbar.addAction(self.cloud_render_action)
        self._refresh_recent_menu()

    def _refresh_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.library.recent_projects()
        for project in recent:
            action = self.recent_menu.addAction(project.name)
            action.setToolTip(str(project.folder))
            action.triggered.connect(lambda _=False, p=project: self.open_project(p))
        if not recent:
            empty = self.recent_menu.addAction("No recent projects")
            empty.setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear Menu", self._clear_recent)

    def _clear_recent(self) -> None:
        self.settings.recent_files = []
        self._refresh_recent_menu()

    # Projects -----------------------------------------------------------------------------

    def open_project(self, project: LocalProject) -> None:
        """Read the song in the background, then show it in the preview and the inspector."""
        self._opening = project.id

        def loaded(song: Song) -> None:
            if self._opening != project.id:
                return  # another project was opened meanwhile
            self.current_project = project
            self._song = song
            self.library.remember_opened(project)
            self.library_view.select(project)
            self.inspector.set_settings(project.settings, project.audio_path)
            self.preview.load(song, project.settings, project.audio_path)
            self._show_project_state()
            self._refresh_recent_menu()
            self.preview.setFocus()
            app_signals().project_opened.emit(project)

        def failed(exc: Exception) -> None:
            self.show_error(
                ErrorReport(
                    f"“{project.name}” could not be opened: {user_message(exc)}",
                    retry=lambda: self.open_project(project),
                    title="Cannot open the project",
                )
            )

        Operation(self, lambda ctx: project.read_song(), loaded).failure(failed).run_in_background()

    def _reload_current_project(self) -> None:
        """Pick up edits made through the library (rename, recording) so a later save
        never writes the old name back; close the project if it was deleted."""
        if self.current_project is None:
            return
        fresh = self.library.find(self.current_project.id)
        if fresh is None:
            self.close_project()
            return
        self.current_project = fresh
        self._show_project_state()

    def _project_announced(self, project: LocalProject) -> None:
        current = self.current_project.id if self.current_project is not None else None
        if project.id not in (current, self._opening):
            self.open_project(project)

    def close_project(self) -> None:
        self.current_project = None
        self._song = None
        self._opening = None
        self.preview.close_preview()
        self._show_project_state()

    def _show_project_state(self) -> None:
        project = self.current_project
        has = project is not None
        self.empty_hint.setVisible(not has)
        self.preview.setVisible(has)
        self.inspector.setEnabled(has)
        for action in (self.render_action, self.cloud_render_action, self.attach_action,
                       self.show_folder_action):  # fmt: skip
            action.setEnabled(has)
        self.cancel_render_action.setEnabled(self.render_panel.running)
        self.setWindowTitle(f"{project.name} — Notefall" if project else "Notefall")

    def _settings_edited(self, settings: RenderSettings) -> None:
        project = self.current_project
        if project is None:
            return
        try:
            project.set_settings(settings)
        except OSError as exc:
            self.show_error(ErrorReport(f"The settings could not be saved: {user_message(exc)}"))
        self.preview.apply_settings(project.render_settings() if project.audio_path else settings)

    def _recording_chosen(self, path: Path | None) -> None:
        project = self.current_project
        if project is None:
            return
        try:
            project.set_audio(path)
        except Exception as exc:  # a bad file: say why, keep the old recording
            self.show_error(ErrorReport(user_message(exc), title="This recording cannot be used"))
            self.inspector.set_settings(project.settings, project.audio_path)
            return
        app_signals().projects_changed.emit()
        if self._song is not None:
            self.preview.load(self._song, project.settings, project.audio_path)

    def _attach_recording(self) -> None:
        from .library import AUDIO_FILTER

        path, _ = QFileDialog.getOpenFileName(self, "Attach your recording", "", AUDIO_FILTER)
        if path:
            self._recording_chosen(Path(path))
            if self.current_project is not None:
                self.inspector.set_settings(
                    self.current_project.settings, self.current_project.audio_path
                )

    def _show_project_folder(self) -> None:
        if self.current_project is not None:
            show_in_folder(self.current_project.midi_path)

    # Rendering ----------------------------------------------------------------------------

    def render_locally(self, output: Path | None = None) -> None:
        project = self.current_project
        if project is None:
            return
        if self.inspector.commit() is None:
            self.show_error(
                ErrorReport("Fix the highlighted render settings first.", title="Cannot render yet")
            )
            return
        if output is None:
            suggested = self.settings.download_dir() / default_output_name(
                project, project.settings
            )
            chosen, _ = QFileDialog.getSaveFileName(self, "Save the video as", str(suggested))
            if not chosen:
                return
            output = Path(chosen)
            if not output.suffix:
                output = output.with_suffix(f".{project.settings.format.value}")
        self._raise_dock("render")
        self.render_panel.start(project, output)

    def render_in_cloud(self) -> None:
        project = self.current_project
        if project is None:
            return
        if self.session is None or self.cloud_renders is None:
            self.statusBar().showMessage("Cloud renders are not available in this build.", 6000)
            return
        if not self.session.signed_in:
            self._raise_dock("account")
            self.statusBar().showMessage("Sign in to render in the cloud.", 6000)
            return
        if self.inspector.commit() is None:
            self.show_error(
                ErrorReport("Fix the highlighted render settings first.", title="Cannot render yet")
            )
            return
        self.cloud_renders.submit(project)
        if "cloud" in self.docks:
            self._raise_dock("cloud")

    def _render_running(self, running: bool) -> None:
        self.cancel_render_action.setEnabled(running)

    def upgrade(self) -> None:
        if self.account_panel is None or self.session is None:
            return
        self._raise_dock("account")
        if self.session.signed_in:
            self.account_panel.upgrade()
        else:
            self.statusBar().showMessage(
                "Sign in first; then Upgrade opens the payment page.", 8000
            )

    # Playback -----------------------------------------------------------------------------

    def seek_by(self, seconds: float) -> None:
        self.preview.seek(max(0.0, self.preview.position + seconds))

    def keyPressEvent(self, event: QKeyEvent) -> None:
        # Keys the focused widget did not use come here: the transport's keys work from
        # anywhere in the window except where a field needs them.
        if self.current_project is not None and event.modifiers() == Qt.KeyboardModifier.NoModifier:
            keys = {
                Qt.Key.Key_Space: self.preview.toggle,
                Qt.Key.Key_Left: lambda: self.seek_by(-SEEK_STEP),
                Qt.Key.Key_Right: lambda: self.seek_by(SEEK_STEP),
                Qt.Key.Key_Home: lambda: self.preview.seek(0.0),
            }
            handler = keys.get(Qt.Key(event.key()))
            if handler is not None:
                handler()
                event.accept()
                return
        super().keyPressEvent(event)

    # Drag and drop ------------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if midi_paths(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = midi_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.library_view.import_paths(paths)

    # Errors, settings, about --------------------------------------------------------------

    def show_error(self, report: ErrorReport) -> None:
        log.info("Shown to the user: %s", report.message)
        self.banner.show_report(report)

    def open_preferences(self) -> PreferencesDialog:
        current = self.inspector.settings if self.current_project is not None else None
        dialog = PreferencesDialog(self.settings, current, self)
        dialog.open()
        return dialog

    def _app_setting_changed(self, name: str) -> None:
        if name == "theme":
            from .app import apply_theme

            app = QApplication.instance()
            if isinstance(app, QApplication):
                apply_theme(app, self.settings.theme)
        elif name == "server_url" and self.session is not None:
            self.session.set_server_url(self.settings.server_url)

    def show_about(self) -> QMessageBox:
        box = QMessageBox(self)
        box.setObjectName("aboutBox")
        box.setWindowTitle("About Notefall")
        box.setIconPixmap(icon("notefall").pixmap(64, 64))
        box.setText(f"<b>Notefall {app_version()}</b>")
        box.setInformativeText(
            "Turns MIDI files and your own recordings into falling-notes piano videos.<br>"
            f"Settings file: {self.settings.file_name}<br>"
            f"Projects: {self.settings.projects_folder}"
        )
        box.open()
        return box

    def _open_docs(self) -> None:
        QDesktopServices.openUrl(QUrl(f"{self.settings.server_url}/docs/desktop"))

    def _raise_dock(self, key: str) -> None:
        dock = self.docks.get(key)
        if dock is not None:
            dock.show()
            dock.raise_()

    # Layout -------------------------------------------------------------------------------

    def restore_layout(self) -> bool:
        """Put the window and panels where they were; False on a first start."""
        geometry = self.settings.window_geometry
        if not geometry.isEmpty():
            self.restoreGeometry(geometry)
        state = self.settings.window_state
        return not state.isEmpty() and self.restoreState(state, STATE_VERSION)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._layout_restored:
            # Dock sizes only take once the window has its real size.
            self._layout_restored = True
            QTimer.singleShot(0, self._default_dock_sizes)

    def _default_dock_sizes(self) -> None:
        # The preview gets the room; the side panels start at a readable width.
        self.resizeDocks(
            [self.docks["projects"], self.docks["inspector"]], [250, 380], Qt.Orientation.Horizontal
        )
        self.resizeDocks([self.docks["render"]], [120], Qt.Orientation.Vertical)

    def save_layout(self) -> None:
        self.settings.window_geometry = self.saveGeometry()
        self.settings.window_state = self.saveState(STATE_VERSION)

    def reset_layout(self) -> None:
        for key, area in (
            ("projects", Qt.DockWidgetArea.LeftDockWidgetArea),
            ("inspector", Qt.DockWidgetArea.RightDockWidgetArea),
            ("account", Qt.DockWidgetArea.RightDockWidgetArea),
            ("render", Qt.DockWidgetArea.BottomDockWidgetArea),
            ("cloud", Qt.DockWidgetArea.RightDockWidgetArea),
        ):
            dock = self.docks.get(key)
            if dock is not None:
                dock.setFloating(False)
                self.addDockWidget(area, dock)
                dock.show()
        if "account" in self.docks:
            self.tabifyDockWidget(self.docks["inspector"], self.docks["account"])
        if "cloud" in self.docks:
            self.tabifyDockWidget(self.docks["account"], self.docks["cloud"])
        self.docks["inspector"].raise_()
        self.docks["render"].raise_()
        self._default_dock_sizes()

    # Closing ------------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_layout()
        if (
            self.tray is not None
            and self.settings.close_to_tray
            and self.tray.should_hide_on_close()
        ):
            event.ignore()
            self.hide()
            self.statusBar().showMessage("Notefall keeps running in the tray while renders run.")
            return
        if self.render_panel.running and not self._confirm_quit_during_render():
            event.ignore()
            return
        self.render_panel.cancel()
        self.preview.close_preview()
        event.accept()

    def _confirm_quit_during_render(self) -> bool:
        from .library import confirm

        return confirm(
            self,
            "A render is running",
            "Quit and cancel the local render? The unfinished video is not kept.",
            "Quit",
        )

    def quit(self) -> None:
        if self.render_panel.running and not self._confirm_quit_during_render():
            return
        self.save_layout()
        self.render_panel.cancel()
        self.preview.close_preview()
        app = QApplication.instance()
        QTimer.singleShot(0, app.quit if app is not None else (lambda: None))
