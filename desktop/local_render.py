"""Render the open project on this computer: progress, ETA, cancel, "Show in folder".

The render runs in a child process (``render_process``) so drawing frames never
competes with the UI for the GIL; the child is driven from one background
``Operation`` that relays its JSON progress lines. Cancelling asks the child to stop
(the encoder then deletes its hidden partial file), so a cancelled or failed render
leaves nothing behind under the output name.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from notefall.common.errors import EncoderError, NotefallError, RenderCancelled
from notefall.common.settings import RenderSettings
from PySide6.QtCore import QProcess, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .ops import OpContext, Operation, OpHandle, user_message
from .project import LocalProject
from .resources import icon
from .signals import RenderNotice, app_signals

log = logging.getLogger(__name__)

RENDER_JOB_FLAG = "--render-job"  # how a frozen (PyInstaller) app runs the child
STOP_GRACE_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class RenderProgress:
    stage: str
    percent: float  # within the stage
    overall: float  # 0..100 over the whole render
    eta: float | None  # seconds left for the whole render, None until it can be told
    message: str = ""


@dataclass(frozen=True, slots=True)
class RenderDone:
    output: Path
    frames: int
    duration: float
    width: int
    height: int
    fps: int
    seconds: dict[str, float] = field(default_factory=dict)


def render_command() -> list[str]:
    if getattr(sys, "frozen", False):
        return [sys.executable, RENDER_JOB_FLAG]
    return [sys.executable, "-m", "notefall.desktop.render_process"]


def default_output_name(project: LocalProject, settings: RenderSettings) -> str:
    safe = "".join(c if c.isalnum() or c in " -_()" else "_" for c in project.name).strip()
    return f"{safe or 'Notefall'}.{settings.format.value}"


class _OverallEta:
    """Whole-render ETA from overall progress: stage ETAs alone jump at every stage change."""

    def __init__(self) -> None:
        self._started = time.monotonic()

    def __call__(self, overall: float) -> float | None:
        elapsed = time.monotonic() - self._started
        if overall >= 100.0:
            return 0.0
        if overall < 2.0 or elapsed < 1.0:
            return None
        return elapsed * (100.0 - overall) / overall


def run_render(
    ctx: OpContext, midi: Path, output: Path, settings: RenderSettings, name: str
) -> RenderDone:
    """The op: start the child, relay progress, pass cancel on. Raises the engine's errors."""
    proc = subprocess.Popen(
        render_command(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    job = {
        "midi": str(midi),
        "output": str(output),
        "settings": settings.model_dump(mode="json", exclude_defaults=True),
        "name": name,
    }
    proc.stdin.write(json.dumps(job) + "\n")
    proc.stdin.flush()
    stderr_lines: list[str] = []
    threading.Thread(
        target=lambda: stderr_lines.extend(proc.stderr),  # type: ignore[arg-type]
        daemon=True,
    ).start()
    watcher = threading.Thread(target=_pass_cancel_on, args=(ctx, proc), daemon=True)
    watcher.start()
    eta = _OverallEta()
    final: dict[str, Any] | None = None
    for line in proc.stdout:
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            continue
        if message.get("event") == "progress":
            overall = float(message["overall"])
            ctx.report(
                RenderProgress(
                    message["stage"], float(message["percent"]), overall, eta(overall),
                    message.get("message", ""),
                )
            )  # fmt: skip
        else:
            final = message
    proc.wait()
    if stderr_lines:
        log.info("render process said:\n%s", "".join(stderr_lines))
    return _outcome(final, proc.returncode, output, ctx)


def _pass_cancel_on(ctx: OpContext, proc: subprocess.Popen[str]) -> None:
    while proc.poll() is None:
        if ctx.cancelled:
            try:
                assert proc.stdin is not None
                proc.stdin.write("cancel\n")
                proc.stdin.flush()
            except (BrokenPipeError, ValueError, OSError):
                pass
            try:
                proc.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()  # it did not stop in time; the partial file is removed below
            return
        time.sleep(0.05)


def _outcome(final: dict[str, Any] | None, code: int, output: Path, ctx: OpContext) -> RenderDone:
    event = (final or {}).get("event")
    if event == "done" and final is not None:
        return RenderDone(
            Path(final["output"]), int(final["frames"]), float(final["duration"]),
            int(final["width"]), int(final["height"]), int(final["fps"]),
            dict(final.get("seconds") or {}),
        )  # fmt: skip
    _remove_partials(output)
    if event == "cancelled" or ctx.cancelled:
        raise RenderCancelled("The render was cancelled.")
    if event == "error" and final is not None:
        raise NotefallError(str(final["message"]), code=str(final.get("code") or "render_failed"))
    raise EncoderError(f"The render process stopped unexpectedly (exit code {code}).")


def _remove_partials(output: Path) -> None:
    # The encoder removes its partial file itself; this only matters if the child was killed.
    for stray in output.parent.glob(f".{output.stem}.partial-*{output.suffix}"):
        stray.unlink(missing_ok=True)


def show_in_folder(path: Path) -> None:
    """Open the file manager with ``path`` selected where the platform allows it."""
    path = Path(path)
    if sys.platform == "win32":
        QProcess.startDetached("explorer.exe", [f"/select,{path}"])
    elif sys.platform == "darwin":
        QProcess.startDetached("open", ["-R", str(path)])
    else:
        folder = path if path.is_dir() else path.parent
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))


def describe_progress(progress: RenderProgress) -> str:
    text = f"{progress.stage.capitalize()} — {progress.overall:.0f}%"
    if progress.eta is not None and progress.overall < 100:
        text += f" · {format_eta(progress.eta)} left"
    return text


def format_eta(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"about {seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"about {minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"about {hours} h {minutes:02d} min"


class LocalRenderPanel(QWidget):
    """Progress of the local render, with Cancel while running and Show in folder after."""

    finished = Signal(object)  # RenderDone
    failed = Signal(str)
    cancelled = Signal()
    running_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("localRender")
        self._handle: OpHandle | None = None
        self._output: Path | None = None
        self._project_name = ""
        self.last_progress: RenderProgress | None = None

        self.title = QLabel("No render running")
        self.title.setObjectName("renderTitle")
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.status = QLabel("Render the open project with Ctrl+R.")
        self.status.setObjectName("renderStatus")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.bar.hide()
        self.cancel_button = QPushButton(icon("stop"), "Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.hide()
        self.folder_button = QPushButton(icon("folder"), "Show in folder")
        self.folder_button.clicked.connect(self._show_folder)
        self.folder_button.hide()
        self.open_button = QPushButton("Play video")
        self.open_button.clicked.connect(self._open_video)
        self.open_button.hide()
        self.retry_button = QPushButton("Try again")
        self.retry_button.clicked.connect(self.retry)
        self.retry_button.hide()
        self._last_start: tuple[LocalProject, Path, RenderSettings | None] | None = None

        buttons = QHBoxLayout()
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.folder_button)
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.retry_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.addWidget(self.title)
        layout.addWidget(self.bar)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        layout.addStretch(1)

    @property
    def running(self) -> bool:
        return self._handle is not None and not self._handle.done

    @property
    def output(self) -> Path | None:
        return self._output

    def start(
        self, project: LocalProject, output: Path, settings: RenderSettings | None = None
    ) -> OpHandle | None:
        """Render ``project`` to ``output``; returns None if a render is already running."""
        if self.running:
            app_signals().status_message.emit("A local render is already running.")
            return None
        self._last_start = (project, Path(output), settings)
        settings = settings or project.render_settings()
        self._output = Path(output)
        self._project_name = project.name
        self.last_progress = None
        midi, name = project.midi_path, project.name
        self.title.setText(f"Rendering “{project.name}”")
        self.bar.setValue(0)
        self.bar.show()
        self.cancel_button.setEnabled(True)
        self.cancel_button.show()
        self.folder_button.hide()
        self.open_button.hide()
        self.retry_button.hide()
        self._set_status("Starting…")
        self._handle = (
            Operation(
                self,
                lambda ctx: run_render(ctx, midi, self._output_path(), settings, name),
                self._done,
            )
            .progress(self._progress)
            .failure(self._failed)
            .cancellable(self._cancelled)
            .run_in_background()
        )
        self.running_changed.emit(True)
        app_signals().render_started.emit(RenderNotice("local", name, output=self._output))
        return self._handle

    def retry(self) -> None:
        if self._last_start is not None and not self.running:
            project, output, settings = self._last_start
            self.start(project, output, settings)

    def _set_status(self, text: str, *, error: bool = False) -> None:
        # Long paths have no spaces to wrap at; a zero-width space after each slash gives them some.
        self.status.setText(text.replace("/", "/\u200b").replace("\\", "\\\u200b"))
        self.status.setToolTip(text)
        self.status.setStyleSheet("color: #e5484d;" if error else "")

    def status_text(self) -> str:
        """The status line as written (without the invisible wrap points)."""
        return self.status.text().replace("\u200b", "")

    def _output_path(self) -> Path:
        assert self._output is not None
        return self._output

    def cancel(self) -> None:
        if self._handle is not None and not self._handle.done:
            self._handle.cancel()
            self.cancel_button.setEnabled(False)
            self._set_status("Cancelling…")

    def _progress(self, progress: RenderProgress) -> None:
        self.last_progress = progress
        self.bar.setValue(round(progress.overall * 10))
        self._set_status(describe_progress(progress))

    def _finish_ui(self) -> None:
        self.bar.hide()
        self.cancel_button.hide()
        self.running_changed.emit(False)

    def _done(self, result: RenderDone) -> None:
        self._finish_ui()
        self.title.setText(f"“{self._project_name}” is ready")
        self._set_status(
            f"{result.output.name} · {result.width}x{result.height} · {result.fps} fps · "
            f"{result.duration:.1f} s"
        )
        self.folder_button.show()
        self.open_button.show()
        self.finished.emit(result)
        app_signals().render_finished.emit(
            RenderNotice("local", self._project_name, output=result.output)
        )

    def _failed(self, exc: Exception) -> None:
        self._finish_ui()
        message = user_message(exc)
        self.title.setText(f"“{self._project_name}” could not be rendered")
        self._set_status(message, error=True)
        self.retry_button.show()
        self.failed.emit(message)
        app_signals().render_failed.emit(
            RenderNotice("local", self._project_name, output=None, message=message)
        )

    def _cancelled(self) -> None:
        self._finish_ui()
        self.title.setText("Render cancelled")
        self._set_status("Nothing was saved.")
        self.retry_button.show()
        self.cancelled.emit()

    def _show_folder(self) -> None:
        if self._output is not None:
            show_in_folder(self._output)

    def _open_video(self) -> None:
        if self._output is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self._output)))


__all__ = ["LocalRenderPanel", "RenderDone", "RenderProgress", "run_render", "show_in_folder"]
