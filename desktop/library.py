"""The project library: local projects in the app-data folder, and the list that shows them.

``ProjectLibrary`` is the model (scan, create from a MIDI, rename, duplicate, delete,
recent projects); ``LibraryView`` is the panel on the left of the window. Creating a
project reads the MIDI with the engine on a background operation first, so a damaged
file is refused with the engine's own message and nothing is left behind.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from notefall.common.errors import InputError
from PySide6.QtCore import QMimeData, QObject, QPoint, QSize, Qt, Signal
from PySide6.QtGui import QAction, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .ops import ErrorReport, Operation, OpHandle, user_message
from .project import AUDIO_SUFFIXES, MIDI_SUFFIXES, PROJECT_FILE, LocalProject, ProjectError
from .resources import icon
from .settings import AppSettings
from .signals import app_signals

log = logging.getLogger(__name__)

MIDI_FILTER = "MIDI files (*.mid *.midi *.kar *.rmi)"
AUDIO_FILTER = "Recordings (*.wav *.flac *.mp3 *.ogg)"


def midi_paths(mime: QMimeData) -> list[Path]:
    """Local MIDI files among dragged URLs (anything else is ignored)."""
    if not mime.hasUrls():
        return []
    paths = [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]
    return [p for p in paths if p.suffix.lower() in MIDI_SUFFIXES]


def format_length(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}:{secs:02d}"


def confirm(parent: QWidget, title: str, text: str, action: str) -> bool:
    """Ask before something that cannot be undone; Cancel is the default button."""
    box = QMessageBox(
        QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.NoButton, parent
    )
    box.setObjectName("confirmDialog")
    yes = box.addButton(action, QMessageBox.ButtonRole.DestructiveRole)
    cancel = box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(cancel)
    box.exec()
    return box.clickedButton() is yes


class ProjectLibrary(QObject):
    """All local projects under one folder; every change announces ``projects_changed``."""

    project_created = Signal(object)  # LocalProject

    def __init__(self, settings: AppSettings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self.damaged: dict[Path, str] = {}  # folders we could not read, with the reason

    @property
    def root(self) -> Path:
        return self._settings.projects_dir()

    def projects(self) -> list[LocalProject]:
        """Newest first. Damaged folders are kept in ``damaged`` so the user can remove them."""
        found: list[LocalProject] = []
        self.damaged = {}
        for folder in sorted(self.root.iterdir()):
            if folder.name.startswith(".") or not folder.is_dir():
                continue  # staging and half-deleted folders are never projects
            if not (folder / PROJECT_FILE).exists():
                continue
            try:
                found.append(LocalProject.load(folder))
            except ProjectError as exc:
                self.damaged[folder] = exc.message
        found.sort(key=lambda p: p.updated, reverse=True)
        return found

    def find_by_midi(self, midi: Path) -> LocalProject | None:
        """The newest project made from a file with the same content as ``midi`` (opening
        the same song twice reopens its project instead of making a copy); None when there
        is none or ``midi`` cannot be read (creating a project then says why)."""
        try:
            wanted = _sha256(midi)
        except OSError:
            return None
        for project in self.projects():
            try:
                if _sha256(project.midi_path) == wanted:
                    return project
            except OSError:
                continue
        return None

    def find(self, project_id: str) -> LocalProject | None:
        folder = self.root / project_id
        if not (folder / PROJECT_FILE).exists():
            return None
        try:
            return LocalProject.load(folder)
        except ProjectError:
            return None

    def import_midi(
        self,
        midi: Path,
        *,
        audio: Path | None = None,
        on_created: Callable[[LocalProject], None] | None = None,
    ) -> OpHandle:
        """Create a project from ``midi`` in the background; errors go to the banner."""
        root = self.root
        defaults = self._settings.default_render_settings

        def create(ctx: object) -> LocalProject:
            return LocalProject.create(root, midi, audio=audio, settings=defaults)

        def created(project: LocalProject) -> None:
            self._settings.add_recent_file(project.folder)
            app_signals().projects_changed.emit()
            self.project_created.emit(project)
            if on_created is not None:
                on_created(project)

        def retry() -> None:
            self.import_midi(midi, audio=audio, on_created=on_created)

        def failed(exc: Exception) -> None:
            app_signals().error_raised.emit(
                ErrorReport(
                    f"Could not open {midi.name}: {user_message(exc)}",
                    # Trying a damaged file again gives the same answer; a full disk may not.
                    retry=None if isinstance(exc, InputError) else retry,
                    title="This MIDI file cannot be used",
                )
            )

        return Operation(self, create, created).failure(failed).run_in_background()

    def rename(self, project: LocalProject, name: str) -> None:
        project.rename(name)
        app_signals().projects_changed.emit()

    def duplicate(self, project: LocalProject) -> LocalProject:
        copy = project.duplicate()
        app_signals().projects_changed.emit()
        return copy

    def delete(self, project: LocalProject) -> None:
        project.delete()
        self.forget_recent(project.folder)
        app_signals().projects_changed.emit()

    def delete_damaged(self, folder: Path) -> None:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        app_signals().projects_changed.emit()

    def recent_projects(self) -> list[LocalProject]:
        """Recently opened projects that still exist, most recent first."""
        recent: list[LocalProject] = []
        for entry in self._settings.recent_files:
            folder = Path(entry)
            if (folder / PROJECT_FILE).exists():
                try:
                    recent.append(LocalProject.load(folder))
                except ProjectError:
                    continue
        return recent

    def remember_opened(self, project: LocalProject) -> None:
        self._settings.add_recent_file(project.folder)
        self._settings.last_project = project.id

    def forget_recent(self, folder: Path) -> None:
        resolved = str(folder.resolve())
        self._settings.recent_files = [f for f in self._settings.recent_files if f != resolved]


class LibraryView(QWidget):
    """The project list: open, new from MIDI, drag a .mid in, rename, duplicate, delete."""

    open_requested = Signal(object)  # LocalProject

    def __init__(self, library: ProjectLibrary, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.library = library
        self.setObjectName("library")
        self.setAcceptDrops(True)

        self.new_button = QPushButton(icon("open"), "Open MIDI…")
        self.new_button.setToolTip("Start a project from a MIDI file (Ctrl+O), or drop one here")
        self.new_button.clicked.connect(self.choose_midi)

        self.list = QListWidget()
        self.list.setObjectName("projectList")
        self.list.setIconSize(QSize(28, 28))
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._context_menu)
        # A click opens (it is a sidebar); Enter and double-click too, for the keyboard.
        self.list.itemClicked.connect(self._activated)
        self.list.itemActivated.connect(self._activated)
        self.list.setAcceptDrops(False)  # the view handles drops for the whole panel

        self.empty_hint = QLabel("No projects yet.\nOpen a MIDI file or drop one here.")
        self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_hint.setObjectName("emptyHint")
        self.empty_hint.setWordWrap(True)

        self.rename_action = self._action("Rename…", self.rename_selected, "F2")
        self.duplicate_action = self._action("Duplicate", self.duplicate_selected)
        self.delete_action = self._action("Delete…", self.delete_selected, "Delete")
        self.audio_action = self._action("Attach recording…", self.attach_audio)
        self.remove_audio_action = self._action("Remove recording", self.remove_audio)
        self.show_folder_action = self._action("Show in folder", self.show_selected_folder)
        for action in (self.rename_action, self.delete_action):
            self.addAction(action)

        buttons = QHBoxLayout()
        buttons.addWidget(self.new_button, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addLayout(buttons)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.empty_hint, 1)

        app_signals().projects_changed.connect(self.refresh)
        self.refresh()

    def _action(self, text: str, slot: Callable[[], None], shortcut: str = "") -> QAction:
        action = QAction(text, self)
        action.triggered.connect(slot)
        if shortcut:
            action.setShortcut(shortcut)
            # Only while the list has focus: Delete in a text field must stay a text edit.
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        return action

    # Listing ---------------------------------------------------------------------------

    def refresh(self) -> None:
        current = self.selected_project()
        self.list.clear()
        for project in self.library.projects():
            item = QListWidgetItem(icon("project"), self._describe(project))
            item.setData(Qt.ItemDataRole.UserRole, project)
            item.setToolTip(f"{project.name}\n{project.folder}")
            self.list.addItem(item)
            if current is not None and project.id == current.id:
                self.list.setCurrentItem(item)
        for folder, reason in self.library.damaged.items():
            item = QListWidgetItem(
                icon("warning"), f"{folder.name}\nDamaged — right-click to remove"
            )
            item.setData(Qt.ItemDataRole.UserRole, folder)
            item.setToolTip(reason)
            item.setForeground(Qt.GlobalColor.gray)
            self.list.addItem(item)
        empty = self.list.count() == 0
        self.empty_hint.setVisible(empty)
        self.list.setVisible(not empty)

    @staticmethod
    def _describe(project: LocalProject) -> str:
        details = [format_length(project.duration), f"{project.note_count:,} notes"]
        if project.audio_file:
            details.append("own recording")
        return f"{project.name}\n{' · '.join(details)}"

    def items(self) -> Iterable[QListWidgetItem]:
        return (self.list.item(i) for i in range(self.list.count()))

    def project_names(self) -> list[str]:
        return [
            data.name
            for item in self.items()
            if isinstance(data := item.data(Qt.ItemDataRole.UserRole), LocalProject)
        ]

    def select(self, project: LocalProject) -> None:
        for item in self.items():
            data = item.data(Qt.ItemDataRole.UserRole)
            if isinstance(data, LocalProject) and data.id == project.id:
                self.list.setCurrentItem(item)
                return

    def selected_project(self) -> LocalProject | None:
        item = self.list.currentItem()
        data = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        return data if isinstance(data, LocalProject) else None

    def _activated(self, item: QListWidgetItem) -> None:
        data = item.data(Qt.ItemDataRole.UserRole)
        if isinstance(data, LocalProject):
            self.open_requested.emit(data)

    # Creating --------------------------------------------------------------------------

    def choose_midi(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open MIDI", "", MIDI_FILTER)
        if path:
            self.import_paths([Path(path)])

    def import_paths(self, paths: list[Path]) -> None:
        for path in paths:
            self.library.import_midi(path, on_created=self._open_new)

    def _open_new(self, project: LocalProject) -> None:
        self.select(project)
        self.open_requested.emit(project)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if midi_paths(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = midi_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.import_paths(paths)

    # Editing ---------------------------------------------------------------------------

    def _context_menu(self, pos: QPoint) -> None:
        item = self.list.currentItem()
        if item is None:
            return
        menu = QMenu(self)
        data = item.data(Qt.ItemDataRole.UserRole)
        if isinstance(data, Path):
            menu.addAction("Remove damaged project", lambda: self._remove_damaged(data))
        else:
            menu.addAction("Open", lambda: self.open_requested.emit(data))
            menu.addSeparator()
            for action in (
                self.rename_action,
                self.duplicate_action,
                self.audio_action,
                self.remove_audio_action,
                self.show_folder_action,
            ):
                menu.addAction(action)
            self.remove_audio_action.setEnabled(bool(data.audio_file))
            menu.addSeparator()
            menu.addAction(self.delete_action)
        menu.popup(self.list.viewport().mapToGlobal(pos))

    def _run_edit(self, edit: Callable[[], object], what: str) -> None:
        """File edits are small and local; a failure is still explained, never a traceback."""
        try:
            edit()
        except (OSError, InputError) as exc:
            app_signals().error_raised.emit(
                ErrorReport(f"Could not {what}: {user_message(exc)}", title="Library")
            )
            self.refresh()

    def rename_selected(self) -> None:
        project = self.selected_project()
        if project is None:
            return
        name, ok = QInputDialog.getText(self, "Rename project", "Name:", text=project.name)
        if ok:
            self.rename(project, name)

    def rename(self, project: LocalProject, name: str) -> None:
        self._run_edit(lambda: self.library.rename(project, name), f"rename {project.name}")

    def duplicate_selected(self) -> None:
        project = self.selected_project()
        if project is not None:
            self._run_edit(lambda: self.library.duplicate(project), f"duplicate {project.name}")

    def delete_selected(self) -> None:
        project = self.selected_project()
        if project is None:
            return
        if confirm(
            self,
            "Delete project",
            f"Delete “{project.name}” and its files? This cannot be undone.",
            "Delete",
        ):
            self.delete(project)

    def delete(self, project: LocalProject) -> None:
        was_open = self._is_open(project)
        self._run_edit(lambda: self.library.delete(project), f"delete {project.name}")
        if was_open and self.library.find(project.id) is None:
            app_signals().project_closed.emit()

    def _is_open(self, project: LocalProject) -> bool:
        opened = getattr(self.window(), "current_project", None)
        return isinstance(opened, LocalProject) and opened.id == project.id

    def _remove_damaged(self, folder: Path) -> None:
        if confirm(
            self,
            "Remove damaged project",
            f"Remove the folder {folder.name}? Its files cannot be opened.",
            "Remove",
        ):
            self.library.delete_damaged(folder)

    def attach_audio(self) -> None:
        project = self.selected_project()
        if project is None:
            return
        path, _ = QFileDialog.getOpenFileName(self, "Attach your recording", "", AUDIO_FILTER)
        if path:
            self.set_audio(project, Path(path))

    def remove_audio(self) -> None:
        project = self.selected_project()
        if project is not None:
            self.set_audio(project, None)

    def set_audio(self, project: LocalProject, audio: Path | None) -> None:
        def edit() -> None:
            project.set_audio(audio)
            app_signals().projects_changed.emit()
            if self._is_open(project):
                self.open_requested.emit(project)  # reload so the preview plays the recording

        self._run_edit(edit, "attach the recording")

    def show_selected_folder(self) -> None:
        project = self.selected_project()
        if project is not None:
            from .local_render import show_in_folder

            show_in_folder(project.midi_path)


__all__ = [
    "AUDIO_SUFFIXES",
    "LibraryView",
    "ProjectLibrary",
    "format_length",
    "midi_paths",
]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
