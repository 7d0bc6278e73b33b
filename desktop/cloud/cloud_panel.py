"""The cloud panel: your cloud projects and your render history.

Open a cloud project into the local library, download a past render, cancel one that runs.
Opening reuses the local copy the project came from (linked, or found by the MIDI's SHA-256
in the library) and otherwise downloads the project's MIDI file and recording.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from notefall.common.settings import settings_from_mapping
from notefall.desktop.ops import OpContext, Operation
from notefall.desktop.project import PROJECT_FILE, LocalProject
from notefall.desktop.signals import app_signals
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .account_panel import _banner, human_bytes
from .errors import CloudError, OfflineError
from .links import ProjectLinks
from .renders import CloudRenderJob, CloudRenders, sha256_of
from .session import CloudSession

STATUS_TEXT = {
    "queued": "Queued",
    "running": "Rendering",
    "succeeded": "Ready",
    "failed": "Failed",
    "cancelled": "Cancelled",
    "dead": "Failed",
}


def short_date(value: str | None) -> str:
    if not value:
        return ""
    try:
        return datetime.fromisoformat(value).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return value


def resolution_of(render: dict[str, Any]) -> str:
    output = render.get("output") or {}
    if output.get("width") and output.get("height"):
        return f"{output['width']}×{output['height']}"
    return str((render.get("settings") or {}).get("resolution") or "")


def job_status_text(job: CloudRenderJob) -> str:
    if job.status == "running":
        eta = f", about {round(job.eta_seconds)} s left" if job.eta_seconds else ""
        return f"Rendering {job.percent:.0f}%{eta}"
    if job.status == "downloading":
        return "Downloading…"
    return STATUS_TEXT.get(job.status, job.status)


class CloudPanel(QWidget):
    def __init__(
        self,
        session: CloudSession,
        renders: CloudRenders,
        projects_dir: Path | Callable[[], Path],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.session = session
        self.renders = renders
        self._projects_dir = projects_dir
        self.projects_data: list[dict[str, Any]] = []
        self.renders_data: list[dict[str, Any]] = []

        self.offline_banner, self.offline_text, retry = _banner(
            "cloudOffline", "#fff7ed", "#fdba74", "#7c2d12"
        )
        retry.setText("Retry")
        retry.clicked.connect(self.refresh)
        self.signed_out_label = QLabel("Sign in (Account) to see your cloud projects and renders.")
        self.signed_out_label.setWordWrap(True)
        self.message = QLabel()
        self.message.setWordWrap(True)

        self.project_list = QTreeWidget()
        self.project_list.setHeaderLabels(["Project", "Song", "Notes", "Updated"])
        self.project_list.setRootIsDecorated(False)
        self.project_list.itemSelectionChanged.connect(self._update_buttons)
        self.project_list.itemDoubleClicked.connect(lambda *_: self.open_selected_project())
        self.open_button = QPushButton("Open in library")
        self.open_button.clicked.connect(self.open_selected_project)

        self.render_list = QTreeWidget()
        self.render_list.setHeaderLabels(["Project", "Status", "Resolution", "Size", "Date"])
        self.render_list.setRootIsDecorated(False)
        self.render_list.itemSelectionChanged.connect(self._update_buttons)
        self.download_button = QPushButton("Download")
        self.download_button.clicked.connect(self.download_selected_render)
        self.cancel_button = QPushButton("Cancel render")
        self.cancel_button.clicked.connect(self.cancel_selected_render)
        for tree in (self.project_list, self.render_list):
            tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
            tree.setAlternatingRowColors(True)

        projects_tab = QWidget()
        projects_layout = QVBoxLayout(projects_tab)
        projects_layout.addWidget(self.project_list)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.open_button)
        projects_layout.addLayout(row)
        renders_tab = QWidget()
        renders_layout = QVBoxLayout(renders_tab)
        renders_layout.addWidget(self.render_list)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.cancel_button)
        row.addWidget(self.download_button)
        renders_layout.addLayout(row)
        self.tabs = QTabWidget()
        self.tabs.addTab(projects_tab, "Projects")
        self.tabs.addTab(renders_tab, "Renders")
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)

        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(QLabel("<b>Cloud</b>"))
        top.addStretch(1)
        top.addWidget(self.refresh_button)
        layout.addLayout(top)
        layout.addWidget(self.offline_banner)
        layout.addWidget(self.signed_out_label)
        layout.addWidget(self.tabs)
        layout.addWidget(self.message)

        session.signed_in_changed.connect(self._signed_in_changed)
        renders.jobs_changed.connect(self.refresh)
        renders.progress.connect(self._job_progress)
        self._signed_in_changed(session.signed_in)

    def projects_dir(self) -> Path:
        folder = self._projects_dir() if callable(self._projects_dir) else self._projects_dir
        return Path(folder)

    def _signed_in_changed(self, signed_in: bool) -> None:
        self.signed_out_label.setVisible(not signed_in)
        self.tabs.setEnabled(signed_in)
        self.refresh_button.setEnabled(signed_in)
        if signed_in:
            self.refresh()
        else:
            self.project_list.clear()
            self.render_list.clear()
        self._update_buttons()

    # Lists -------------------------------------------------------------------------------

    def refresh(self) -> None:
        if not self.session.signed_in:
            return
        client = self.session.client

        def fetch(ctx: OpContext) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            return client.projects(), client.renders()

        Operation(self, fetch, self._show).failure(self._failed).run_in_background()

    def _failed(self, exc: Exception) -> None:
        if isinstance(exc, OfflineError):
            self.offline_text.setText(exc.message)
            self.offline_banner.show()
        else:
            self.session.report_failure(exc)

    def _show(self, lists: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> None:
        self.offline_banner.hide()
        self.projects_data, self.renders_data = lists
        self.project_list.clear()
        for project in self.projects_data:
            song = project.get("song") or {}
            item = QTreeWidgetItem(
                [
                    str(project.get("name", "")),
                    str(song.get("title") or ("no MIDI yet" if not song else "")),
                    str(song.get("note_count", "")),
                    short_date(project.get("updated_at")),
                ]
            )
            item.setData(0, Qt.ItemDataRole.UserRole, project)
            self.project_list.addTopLevelItem(item)
        self.render_list.clear()
        for render in self.renders_data:
            output = render.get("output") or {}
            status = str(render.get("status", ""))
            shown = STATUS_TEXT.get(status, status)
            if status == "running":
                shown = f"Rendering {render.get('percent', 0):.0f}%"
            item = QTreeWidgetItem(
                [
                    str(render.get("project_name") or ""),
                    shown,
                    resolution_of(render),
                    human_bytes(int(output["bytes"])) if output.get("bytes") else "",
                    short_date(render.get("created_at")),
                ]
            )
            error = render.get("error") or {}
            if error.get("message"):
                item.setToolTip(1, str(error["message"]))
            item.setData(0, Qt.ItemDataRole.UserRole, render)
            self.render_list.addTopLevelItem(item)
        self._update_buttons()

    def _job_progress(self, job: CloudRenderJob) -> None:
        """Live progress of a render this app follows, written into its row of the history."""
        for index in range(self.render_list.topLevelItemCount()):
            item = self.render_list.topLevelItem(index)
            if item is None:
                continue
            data = item.data(0, Qt.ItemDataRole.UserRole)
            if isinstance(data, dict) and str(data.get("id")) == job.render_id:
                item.setText(1, job_status_text(job))
                return

    def _selected(self, tree: QTreeWidget) -> dict[str, Any] | None:
        items = tree.selectedItems()
        if not items:
            return None
        data = items[0].data(0, Qt.ItemDataRole.UserRole)
        return data if isinstance(data, dict) else None

    def _update_buttons(self) -> None:
        project = self._selected(self.project_list)
        self.open_button.setEnabled(bool(project and project.get("song")))
        render = self._selected(self.render_list)
        links = (render or {}).get("links") or {}
        self.download_button.setEnabled(bool(links.get("download")))
        self.cancel_button.setEnabled(
            bool(render and render.get("status") in ("queued", "running"))
        )

    # Actions -----------------------------------------------------------------------------

    def download_selected_render(self) -> None:
        render = self._selected(self.render_list)
        if render is not None:
            self.message.setText(f"Downloading {render.get('project_name') or 'the video'}…")
            self.renders.download_render(render)

    def cancel_selected_render(self) -> None:
        render = self._selected(self.render_list)
        if render is None:
            return
        followed = [job for job in self.renders.jobs if job.render_id == str(render["id"])]
        if followed:
            self.renders.cancel(followed[0])  # its watcher sees the end and tells everyone
            return
        Operation(
            self,
            lambda ctx: self.session.client.cancel_render(str(render["id"])),
            lambda _: self.refresh(),
        ).failure(self._failed).run_in_background()

    def open_selected_project(self) -> None:
        project = self._selected(self.project_list)
        if project is not None:
            self.open_project(project)

    def open_project(self, remote: dict[str, Any]) -> None:
        """Bring a cloud project into the local library (or update its local copy) and open it."""
        song = remote.get("song") or {}
        if not song:
            self.message.setText(
                "This cloud project has no MIDI file yet, so there is nothing to open."
            )
            return
        links = ProjectLinks(self.session.app_data, self.session.server_url)
        root = self.projects_dir()
        client = self.session.client

        def op(ctx: OpContext) -> LocalProject:
            local = self._local_copy(remote, links, root)
            if local is not None:
                return self._materialize(remote, local, None, None, links, root)
            with tempfile.TemporaryDirectory(prefix="notefall-cloud-") as scratch:
                folder = Path(scratch)
                project_path = f"/projects/{remote['id']}"
                midi = client.download(f"{project_path}/midi", folder, "song.mid")
                audio = None
                if remote.get("audio"):
                    audio = client.download(f"{project_path}/audio", folder, "recording")
                return self._materialize(remote, None, midi, audio, links, root)

        def opened(project: LocalProject) -> None:
            self.message.setText(f"Opened {project.name} from the cloud.")
            app_signals().projects_changed.emit()
            app_signals().project_opened.emit(project)

        def failed(exc: Exception) -> None:
            self.message.setText(getattr(exc, "message", None) or str(exc))

        Operation(self, op, opened).failure(failed).run_in_background()

    @staticmethod
    def _local_copy(remote: dict[str, Any], links: ProjectLinks, root: Path) -> LocalProject | None:
        local_id = links.local_id(str(remote["id"]))
        if local_id and (root / local_id / PROJECT_FILE).exists():
            return LocalProject.load(root / local_id)
        wanted = (remote.get("song") or {}).get("midi_sha256")
        if not wanted or not root.is_dir():
            return None
        for folder in sorted(root.iterdir()):
            if folder.name.startswith(".") or not (folder / PROJECT_FILE).exists():
                continue
            try:
                candidate = LocalProject.load(folder)
                if sha256_of(candidate.midi_path) == wanted:
                    return candidate
            except Exception:
                continue
        return None

    @staticmethod
    def _materialize(
        remote: dict[str, Any],
        local: LocalProject | None,
        midi: Path | None,
        audio: Path | None,
        links: ProjectLinks,
        root: Path,
    ) -> LocalProject:
        settings = settings_from_mapping(dict(remote.get("settings") or {}))
        if local is None:
            assert midi is not None
            wanted = (remote.get("song") or {}).get("midi_sha256")
            if wanted and sha256_of(midi) != wanted:
                # The project's MIDI changed on the server between listing and download.
                raise CloudError(
                    "The cloud copy changed while it was downloading; refresh and open it again."
                )
            local = LocalProject.create(
                root, midi, name=str(remote["name"]), audio=audio, settings=settings
            )
        else:
            if settings != local.settings:
                local.set_settings(settings)
            if local.name != remote["name"]:
                local.rename(str(remote["name"]))
        links.link(local.id, str(remote["id"]))
        return local
