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
