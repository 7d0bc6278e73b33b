"""Cloud renders from the desktop: upload the project, submit, watch, cancel, download.

``CloudRenders.submit(project)`` runs the upload and the submit as one background operation
with a fresh ``Idempotency-Key`` kept on the job: when the network fails half-way the job
stays ``unsent`` and ``retry(job)`` sends the same key again, so the server never makes two
renders of one click. Then a ``RenderWatcher`` follows the events and, on success, the video
is downloaded into the download folder. None of this needs the main window: it keeps going
while the window is hidden in the tray.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from notefall.desktop.ops import OpContext, Operation
from notefall.desktop.project import LocalProject
from notefall.desktop.signals import RenderNotice, app_signals
from PySide6.QtCore import QObject, Signal

from .api import CloudClient, new_idempotency_key
from .errors import CloudError, OfflineError, ProblemError
from .links import ProjectLinks
from .session import CloudSession
from .watcher import FINAL_STATUSES, RenderWatcher

log = logging.getLogger(__name__)

# Settings naming files on this computer: the server refuses them (it reads no local paths);
# the recording goes up as the project's audio instead.
LOCAL_FILE_SETTINGS = ("audio", "soundfont", "background_image")


@dataclass
class CloudRenderJob:
    """One cloud render as the desktop follows it."""

    project_name: str
    idempotency_key: str
    settings: dict[str, Any]
    project: LocalProject | None = None
    render_id: str | None = None
    #: unsent (not accepted yet), queued, running, downloading, succeeded, failed, cancelled, dead
    status: str = "unsent"
    stage: str = ""
    percent: float = 0.0
    eta_seconds: float | None = None
    message: str = ""
    error: str = ""
    output: Path | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def active(self) -> bool:
        return not self.finished and self.status != "unsent"


def cloud_settings(project: LocalProject) -> dict[str, Any]:
    """The project's settings as the server takes them (no local file paths)."""
    data = project.settings.model_dump(mode="json", exclude_defaults=True)
    if data.get("background_image"):
        raise CloudError(
            "Cloud renders cannot use a background image yet: the server takes no image "
            "upload. Remove the background image or render this one on your computer."
        )
    if data.get("soundfont"):
        raise CloudError(
            "Cloud renders use the server's General MIDI sounds: remove the SoundFont from "
            "this project's settings or render it on your computer."
        )
    return {name: value for name, value in data.items() if name not in LOCAL_FILE_SETTINGS}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def upload_project(
    client: CloudClient, links: ProjectLinks, project: LocalProject, settings: dict[str, Any]
) -> str:
    """Create or update the project's cloud copy; files go up only when they changed."""
    cloud_id = links.cloud_id(project.id)
    remote: dict[str, Any] | None = None
    if cloud_id is not None:
        try:
            remote = client.update_project(cloud_id, name=project.name, settings=settings)
        except ProblemError as error:
            if error.status != 404:
                raise
            remote = None  # deleted on the server (or in the browser): make a new one
    if remote is None:
        remote = client.create_project(project.name, settings)
        cloud_id = str(remote["id"])
        links.link(project.id, cloud_id)
    assert cloud_id is not None
    song = remote.get("song") or {}
    if song.get("midi_sha256") != sha256_of(project.midi_path):
        client.upload_file(cloud_id, "midi", project.midi_path)
    audio = remote.get("audio") or {}
    if project.audio_path is not None:
        digest = sha256_of(project.audio_path)
        if audio.get("sha256") != digest:
            client.upload_file(cloud_id, "audio", project.audio_path)
        links.set_uploaded_audio(project.id, digest)
    elif audio and audio.get("sha256") == links.uploaded_audio(project.id):
        # The user removed the recording this app had uploaded: remove it in the cloud too.
        # A recording added in the browser (never uploaded from here) is left alone.
        client.delete_audio(cloud_id)
        links.set_uploaded_audio(project.id, None)
    return cloud_id


class CloudRenders(QObject):
    """Every cloud render of this session; the tray and the cloud panel listen to it."""

    submitted = Signal(object)  # CloudRenderJob accepted by the server
    progress = Signal(object)  # CloudRenderJob with new status/stage/percent
    finished = Signal(object)  # CloudRenderJob succeeded and downloaded (job.output)
    failed = Signal(object)  # CloudRenderJob failed, died, cancelled or could not be sent
    jobs_changed = Signal()

    def __init__(self, session: CloudSession, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.jobs: list[CloudRenderJob] = []
        self._watchers: dict[str, RenderWatcher] = {}
        session.signed_in_changed.connect(self._signed_in_changed)
        self.resume()

    @property
    def client(self) -> CloudClient:
        return self.session.client

    @property
    def active_jobs(self) -> list[CloudRenderJob]:
        return [job for job in self.jobs if job.active or job.status == "downloading"]

    def has_active(self) -> bool:
        return bool(self.active_jobs)

    # Submitting --------------------------------------------------------------------------

    def submit(self, project: LocalProject) -> CloudRenderJob:
        """Upload ``project`` and render it in the cloud (returns at once; watch the signals)."""
        job = CloudRenderJob(
            project_name=project.name,
            idempotency_key=new_idempotency_key(),
            settings={},
            project=project,
        )
        self.jobs.insert(0, job)
        self.jobs_changed.emit()
        self._send(job)
        return job

    def retry(self, job: CloudRenderJob) -> None:
        """Send an unsent job again with the same Idempotency-Key (no duplicate render)."""
        if job.status != "unsent" or job.project is None:
            return
        job.error = ""
        self._send(job)

    def _send(self, job: CloudRenderJob) -> None:
        project = job.project
        assert project is not None
        links = ProjectLinks(self.session.app_data, self.client.server_url)
        client = self.client

        def op(ctx: OpContext) -> dict[str, Any]:
            if not job.settings:
                job.settings = cloud_settings(project)
            ctx.report("uploading")
            cloud_id = upload_project(client, links, project, job.settings)
            ctx.report("submitting")
            return client.submit_render(cloud_id, job.settings, job.idempotency_key)

        def on_progress(stage: Any) -> None:
            job.stage = str(stage)
            self.progress.emit(job)

        Operation(self, op, lambda render: self._accepted(job, render)).progress(
            on_progress
        ).failure(lambda exc: self._not_sent(job, exc)).run_in_background()

    def _not_sent(self, job: CloudRenderJob, exc: Exception) -> None:
        job.status = "unsent"
        job.error = getattr(exc, "message", None) or str(exc)
        self.failed.emit(job)
        self.jobs_changed.emit()
        if isinstance(exc, OfflineError):
            self.session.offline.emit(exc.message)
        app_signals().render_failed.emit(RenderNotice("cloud", job.project_name, message=job.error))

    def _links(self) -> ProjectLinks:
        return ProjectLinks(self.session.app_data, self.client.server_url)

    def _accepted(self, job: CloudRenderJob, render: dict[str, Any]) -> None:
        job.render_id = str(render["id"])
        self._links().follow_render(job.render_id, job.project_name)
        self._apply(job, render)
        self.submitted.emit(job)
        self.jobs_changed.emit()
        app_signals().render_started.emit(
            RenderNotice("cloud", job.project_name, render_id=job.render_id)
        )
        self.session.reload()  # renders left this month changed
        if job.finished:  # a duplicate of a render that already succeeded
            self._ended(job, render)
        else:
            self.watch(job)

    # Following ---------------------------------------------------------------------------

    def watch(self, job: CloudRenderJob) -> None:
        assert job.render_id is not None
        watcher = RenderWatcher(self.client, job.render_id, self)
        watcher.received.connect(lambda message: self._event(job, message))
        watcher.ended.connect(lambda message: self._ended(job, message))
        watcher.failed.connect(lambda why: self._watch_failed(job, why))
        self._watchers[job.render_id] = watcher
        watcher.start()

    def _apply(self, job: CloudRenderJob, data: dict[str, Any]) -> None:
        for name in ("status", "stage", "message"):
            value = data.get(name)
            if isinstance(value, str) and value:
                setattr(job, name, value)
        percent = data.get("percent")
        if isinstance(percent, int | float):
            job.percent = max(job.percent, float(percent))
        eta = data.get("eta_seconds")
        job.eta_seconds = float(eta) if isinstance(eta, int | float) else None
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            job.error = str(error["message"])
        elif data.get("error_code") and data.get("message"):
            job.error = str(data["message"])

    def _event(self, job: CloudRenderJob, message: dict[str, Any]) -> None:
        if message.get("type") == "log":
            job.events.append(message)
            return
        self._apply(job, message)
        self.progress.emit(job)

    def _watch_failed(self, job: CloudRenderJob, why: str) -> None:
        self._watchers.pop(job.render_id or "", None)
        job.status = "failed"
        job.error = why
        self._failed(job)

    def _ended(self, job: CloudRenderJob, message: dict[str, Any]) -> None:
        self._watchers.pop(job.render_id or "", None)
        self._apply(job, message)
        if job.status == "succeeded":
            self.download(job)
        else:
            if not job.error:
                job.error = f"The render {job.status}."
            self._failed(job)

    def _failed(self, job: CloudRenderJob) -> None:
        if job.render_id:
            self._links().follow_render(job.render_id, None)
        self.progress.emit(job)
        self.failed.emit(job)
        self.jobs_changed.emit()
        app_signals().render_failed.emit(
            RenderNotice(
                "cloud", job.project_name, render_id=job.render_id or "", message=job.error
            )
        )
        self.session.reload()

    # Cancelling and downloading ----------------------------------------------------------

    def cancel(self, job: CloudRenderJob) -> None:
        if job.render_id is None or job.finished:
            return
        render_id = job.render_id

        def cancelled(render: dict[str, Any]) -> None:
            watcher = self._watchers.get(render_id)
            if watcher is None:  # the stream had dropped: end the job from the answer
                self._ended(job, render)

        # The watcher sees the final 'cancelled' state event and ends the job.
        Operation(self, lambda ctx: self.client.cancel_render(render_id), cancelled).failure(
            self.session.report_failure
        ).run_in_background()

    def download(self, job: CloudRenderJob) -> None:
        assert job.render_id is not None
        render_id = job.render_id
        job.status = "downloading"
        job.stage = "downloading"
        job.percent = 100.0
        self.progress.emit(job)
        folder = self.session.download_dir()
        client = self.client
        fallback = f"{job.project_name}.{job.settings.get('format', 'mp4')}"

        def op(ctx: OpContext) -> Path:
            return client.download(
                f"/renders/{render_id}/download",
                folder,
                fallback,
                progress=lambda done, total: ctx.report((done, total)),
                cancelled=lambda: ctx.cancelled,
            )

        def done(path: Path) -> None:
            self._links().follow_render(render_id, None)
            job.status = "succeeded"
            job.stage = "done"
            job.output = path
            self.progress.emit(job)
            self.finished.emit(job)
            self.jobs_changed.emit()
            app_signals().render_finished.emit(
                RenderNotice("cloud", job.project_name, render_id=render_id, output=path)
            )
            self.session.reload()  # storage changed

        def not_downloaded(exc: Exception) -> None:
            # The render itself succeeded: keep it so the cloud panel can download it again.
            job.status = "succeeded"
            job.error = "Rendered, but the download failed: " + (
                getattr(exc, "message", None) or str(exc)
            )
            self._failed(job)

        Operation(self, op, done).failure(not_downloaded).run_in_background()

    def download_render(self, render: dict[str, Any]) -> None:
        """Download a past render from the history (the cloud panel's button)."""
        job = CloudRenderJob(
            project_name=str(render.get("project_name") or "Render"),
            idempotency_key="",
            settings=dict(render.get("settings") or {}),
            render_id=str(render["id"]),
            status="succeeded",
        )
        self.jobs.insert(0, job)
        self.download(job)

    def _signed_in_changed(self, signed_in: bool) -> None:
        if signed_in:
            self.resume()

    def resume(self) -> None:
        """Pick up the renders this app submitted before it was last closed: follow the ones
        still running, download the ones that finished meanwhile."""
        if not self.session.signed_in:
            return
        followed = self._links().followed_renders()
        known = {job.render_id for job in self.jobs}
        client = self.client

        def fetch(ctx: OpContext) -> list[dict[str, Any]]:
            found = []
            for render_id in followed:
                if render_id in known:
                    continue
                try:
                    found.append(client.render(render_id))
                except ProblemError as error:
                    if error.status != 404:
                        raise
                    self._links().follow_render(render_id, None)  # gone from the server
            return found

        Operation(self, fetch, self._resumed).failure(
            self.session.report_failure
        ).run_in_background()

    def _resumed(self, renders: list[dict[str, Any]]) -> None:
        for render in renders:
            render_id = str(render["id"])
            if any(job.render_id == render_id for job in self.jobs):
                continue
            job = CloudRenderJob(
                project_name=str(render.get("project_name") or "Render"),
                idempotency_key="",
                settings=dict(render.get("settings") or {}),
                render_id=render_id,
            )
            self._apply(job, render)
            self.jobs.insert(0, job)
            if job.status in ("queued", "running"):
                app_signals().render_started.emit(
                    RenderNotice("cloud", job.project_name, render_id=render_id)
                )
                self.watch(job)
            elif job.status == "succeeded":
                self.download(job)
            else:
                self._links().follow_render(render_id, None)
        if renders:
            self.jobs_changed.emit()

    def shutdown(self) -> None:
        """Stop watching (the app quits); the renders go on on the server."""
        for watcher in list(self._watchers.values()):
            watcher.stop()
        self._watchers.clear()
