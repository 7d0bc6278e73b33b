"""Real render workers for tests: ``notefall worker`` processes started and stopped by a test.

Each worker is its own process group (``start_new_session``), so a test can kill a worker
together with its pool children and their FFmpeg grandchildren, as a machine loss would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from notefall.server.kit.settings import Settings

from tests.server.conftest import TEST_SECRET_KEY


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that makes a worker process use ``settings`` (NOTEFALL_* variables)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTEFALL_")}
    env.update(
        NOTEFALL_DATA_DIR=str(settings.data_dir),
        NOTEFALL_DATABASE_URL=settings.database_url,
        NOTEFALL_REDIS_URL=str(settings.redis_url),
        NOTEFALL_STORAGE_URL=settings.storage_url,
        NOTEFALL_SECRET_KEY=TEST_SECRET_KEY,
        NOTEFALL_PUBLIC_URL=settings.public_url,
        NOTEFALL_ENVIRONMENT="test",
        NOTEFALL_RATE_LIMIT_SCALE=str(settings.rate_limit_scale),
        NOTEFALL_RENDER_SEGMENT_SECONDS=str(settings.render_segment_seconds),
        NOTEFALL_RENDER_RETRY_BASE_SECONDS=str(settings.render_retry_base_seconds),
        NOTEFALL_RENDER_RETRY_CAP_SECONDS=str(settings.render_retry_cap_seconds),
        NOTEFALL_RENDER_MAX_DELIVERIES=str(settings.render_max_deliveries),
        NOTEFALL_RENDER_HEARTBEAT_SECONDS=str(settings.render_heartbeat_seconds),
        NOTEFALL_RENDER_STALE_SECONDS=str(settings.render_stale_seconds),
        NOTEFALL_RENDER_REQUEUE_GRACE_SECONDS=str(settings.render_requeue_grace_seconds),
        NOTEFALL_RECONCILE_EVERY_SECONDS=str(settings.reconcile_every_seconds),
    )
    env.update(extra)
    return env


class Worker:
    """One ``notefall worker`` process; its output goes to a log file the test can show."""

    def __init__(
        self,
        settings: Settings,
        log_dir: Path,
        *,
        concurrency: int = 1,
        queues: Sequence[str] | None = None,
        name: str = "worker",
        env: dict[str, str] | None = None,
    ) -> None:
        self.log_path = log_dir / f"{name}-{time.monotonic_ns()}.log"
        command = [sys.executable, "-m", "notefall.cli", "worker", "-c", str(concurrency)]
        if queues:
            command += ["-Q", ",".join(queues)]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                env=env or worker_env(settings),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill_group(self) -> None:
        """kill -9 of the worker, its pool children and anything they started (machine loss)."""
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM (a warm shutdown) and wait; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill_group()
            raise AssertionError(f"worker did not stop within {timeout} s:\n{self.log()}") from None


@contextmanager
def running_workers(
    settings: Settings, log_dir: Path, count: int = 1, **kwargs: object
) -> Iterator[list[Worker]]:
    """``count`` workers for the duration of the block; stopped (and their groups killed) after."""
    workers = [
        Worker(settings, log_dir, name=f"worker{n}", **kwargs)  # type: ignore[arg-type]
        for n in range(count)
    ]
    try:
        yield workers
    finally:
        for worker in workers:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        for worker in workers:
            with suppress(subprocess.TimeoutExpired):
                worker.process.wait(30)
            worker.kill_group()


# Driving renders through the HTTP API (helpers for every render test) ------------------------

API = "/api/v1"
# Small and quick: what a test render should ask for unless it tests something else.
FAST_SETTINGS: dict[str, object] = {"resolution": "256x144", "fps": 24, "preset": "draft"}


def tiny_midi(seconds: float = 2.0, *, pitch: int = 60) -> bytes:
    """A MIDI file of a few notes lasting about ``seconds`` (at 120 bpm: 2 beats a second)."""
    from tests.support.midi_factory import make_midi

    beats = max(1, round(seconds * 2))
    notes = [(beat, 0.9, pitch + (beat % 5), 90, 0) for beat in range(beats)]
    return make_midi(notes=notes, title="Tiny song")


def project_with_midi(
    client: Any,
    headers: dict[str, str],
    midi_bytes: bytes | None = None,
    name: str = "Render test",
    settings: dict[str, object] | None = None,
) -> str:
    """A new project of the user in ``headers`` with a MIDI file uploaded; its id."""
    body: dict[str, object] = {"name": name}
    if settings is not None:
        body["settings"] = settings
    created = client.post(f"{API}/projects", json=body, headers=headers)
    assert created.status_code == 201, created.text
    project_id: str = created.json()["id"]
    files = {"file": ("song.mid", midi_bytes or tiny_midi(), "audio/midi")}
    uploaded = client.put(f"{API}/projects/{project_id}/midi", files=files, headers=headers)
    assert uploaded.status_code == 200, uploaded.text
    return project_id


def submit_render(
    client: Any,
    headers: dict[str, str],
    project_id: str,
    settings: dict[str, object] | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    """POST /api/v1/renders (``FAST_SETTINGS`` unless ``settings`` is given); the render,
    asserting it was accepted (202) or answered with an existing render (200)."""
    request_headers = dict(headers)
    if key is not None:
        request_headers["Idempotency-Key"] = key
    body = {"project_id": project_id, "settings": FAST_SETTINGS if settings is None else settings}
    response = client.post(f"{API}/renders", json=body, headers=request_headers)
    assert response.status_code in (200, 202), response.text
    render: dict[str, Any] = response.json()
    return render


def wait_for_status(
    client: Any,
    headers: dict[str, str],
    render_id: str,
    statuses: str | Sequence[str],
    timeout: float = 60,
) -> dict[str, Any]:
    """Poll GET /api/v1/renders/{id} until its status is one of ``statuses``; the render.
    Fails with the last state seen when ``timeout`` seconds pass first."""
    wanted = {statuses} if isinstance(statuses, str) else set(statuses)
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"{API}/renders/{render_id}", headers=headers)
        assert response.status_code == 200, response.text
        render: dict[str, Any] = response.json()
        if render["status"] in wanted:
            return render
        if time.monotonic() > deadline:
            raise AssertionError(
                f"render {render_id} is {render['status']} ({render['stage']}, "
                f"{render['percent']}%) after {timeout} s, not {sorted(wanted)}: {render}"
            )
        time.sleep(0.1)
