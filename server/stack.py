"""``notefall stack``, ``worker`` and ``beat``: the whole server on one machine, and its parts.

The stack runs every part as a child process (uvicorn through ``notefall serve``, N Celery
workers, one celery beat) next to an embedded Redis, with everything in one data folder.
Each child gets its own process group (a Ctrl-C in the terminal reaches only the stack,
which then stops the children in order) and, on Linux, is told to die with the stack
should the stack itself be killed, so no orphans are left behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from urllib.parse import urlparse

import httpx
from notefall.common.errors import InputError
from notefall.server.kit.redis_server import (
    RedisServer,
    RedisServerError,
    detach_and_die_with_parent,
)
from notefall.server.kit.settings import Settings, SettingsError, load_settings

# Celery's warm shutdown waits for running tasks; after this a child is killed.
STOP_TIMEOUT_SECONDS = 30.0
READY_TIMEOUT_SECONDS = 60.0


def settings_or_input_error(**overrides: object) -> Settings:
    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        raise InputError(str(exc), code="invalid_settings") from None


def _settings_with_redis(command: str) -> Settings:
    settings = settings_or_input_error()
    if not settings.redis_url:
        raise InputError(
            f"`notefall {command}` needs NOTEFALL_REDIS_URL (redis://host:port/db); "
            "`notefall stack` starts one for you",
            code="invalid_settings",
        )
    return settings


def worker(*, concurrency: int, queues: list[str] | None) -> None:
    from notefall.server.jobs.worker import run_worker

    run_worker(_settings_with_redis("worker"), concurrency=concurrency, queues=queues)


def beat() -> None:
    from notefall.server.jobs.worker import run_beat

    run_beat(_settings_with_redis("beat"))


def embedded_redis(settings: Settings) -> RedisServer:
    """A Redis that keeps its data (append-only file) in DATA_DIR/redis across restarts."""
    try:
        return RedisServer(settings.data_dir / "redis", persistent=True).start()
    except RedisServerError as exc:
        raise InputError(str(exc), code="redis_unavailable") from None


def mail_destination(settings: Settings) -> str:
    if settings.smtp_url:
        parsed = urlparse(settings.smtp_url)
        return f"mail goes to {parsed.scheme}://{parsed.hostname}:{parsed.port or ''}".rstrip(":")
    return f"mail lands in {settings.outbox_dir}"


def _spawn(arguments: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "notefall.cli", *arguments],
        env=env,
        stdin=subprocess.DEVNULL,
        # The parts' logs and banners go to stderr: stdout carries the stack's one line.
        stdout=sys.stderr.fileno(),
        preexec_fn=detach_and_die_with_parent,
    )


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every child (warm shutdown), wait, then SIGKILL what is left with its group."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(max(0.1, deadline - time.monotonic()))
        # The group too: a Celery pool process must not outlive its worker.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()


def _wait_until_ready(
    url: str, children: list[subprocess.Popen[bytes]], stopping: Callable[[], bool]
) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline and not stopping():
        if any(child.poll() is not None for child in children):
            return False
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    return False


def run_stack(data_dir: Path, *, host: str, port: int, workers: int) -> int:
    """Run until SIGINT/SIGTERM (exit 0) or until a part dies on its own (exit 1)."""
    # Here, not at the top: workers and beat import this module and need no Alembic.
    from notefall.server.migrations import upgrade_to_head

    data_dir = data_dir.expanduser().resolve()
    settings = settings_or_input_error(data_dir=data_dir)
    upgrade_to_head(settings.database_url)
    redis = None if settings.redis_url else embedded_redis(settings)
    redis_url = settings.redis_url or (redis.url if redis else "")
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    env = {**os.environ, "NOTEFALL_DATA_DIR": str(data_dir), "NOTEFALL_REDIS_URL": redis_url}
    # Links in mail, signed file links and the browser pages' origin check all start with the
    # public URL; unset, it would name the default port rather than the one asked for.
    env.setdefault("NOTEFALL_PUBLIC_URL", url)

    stop_requested = False

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stop_requested
        stop_requested = True

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    children: list[subprocess.Popen[bytes]] = []
    try:
        children.append(_spawn(["serve", "--no-migrate", "--host", host, "--port", str(port)], env))
        children += [_spawn(["worker", "-c", "1"], env) for _ in range(workers)]
        children.append(_spawn(["beat"], env))
        if not _wait_until_ready(url, children, lambda: stop_requested):
            if stop_requested:
                return 0
            print(
                "notefall: error: the stack did not start; see the messages above", file=sys.stderr
            )
            return 1
        print(
            f"Notefall is running at {url}: sign up at {url}/signup (the API: {url}/docs); "
            f"{mail_destination(settings)} (data in {data_dir}; Ctrl-C stops it)",
            flush=True,
        )
        while not stop_requested:
            if any(child.poll() is not None for child in children):
                print(
                    "notefall: error: a part of the stack stopped; stopping the rest",
                    file=sys.stderr,
                )
                return 1
            time.sleep(0.2)
        return 0
    finally:
        _stop(children)
        if redis:
            redis.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
