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


# Where a running stack leaves its Redis URL (relative to the data folder).
REDIS_URL_FILE = Path("redis") / "url"
# A part that stops on its own is started again after 1, 2, 4 … seconds (at most 30); one
# that stops this many times within RESTART_WINDOW_SECONDS stops the whole stack instead.
MAX_RESTARTS = 5
RESTART_WINDOW_SECONDS = 120.0


class Part:
    """One child of the stack, started again when it stops on its own: a worker killed by
    the kernel's OOM killer, say, must not take the API and every other worker with it."""

    def __init__(self, name: str, arguments: list[str]) -> None:
        self.name = name
        self.arguments = arguments
        self.process: subprocess.Popen[bytes] | None = None
        self.stops: list[float] = []
        self.restart_at: float | None = None

    def start(self, env: dict[str, str]) -> None:
        self.process = _spawn(self.arguments, env)
        self.restart_at = None

    def check(self, env: dict[str, str]) -> bool:
        """Restart the part when it has stopped and its back-off has passed; False when it
        stopped too often to keep trying."""
        now = time.monotonic()
        if self.restart_at is not None:
            if now >= self.restart_at:
                print(f"notefall: starting {self.name} again", file=sys.stderr, flush=True)
                self.start(env)
            return True
        if self.process is None or (code := self.process.poll()) is None:
            return True
        # Its pool children and FFmpeg must go with it before a new one starts.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.stops = [t for t in self.stops if now - t < RESTART_WINDOW_SECONDS] + [now]
        if len(self.stops) > MAX_RESTARTS:
            return False
        delay = min(30.0, 2.0 ** (len(self.stops) - 1))
        print(
            f"notefall: {self.name} stopped (exit {code}); starting it again in {delay:g} s",
            file=sys.stderr,
            flush=True,
        )
        self.restart_at = now + delay
        return True


def worker_arguments(workers: int) -> list[list[str]]:
    """``notefall worker`` arguments for each of ``workers`` processes. With two or more, the
    first takes the free queue first (queues.FREE_FIRST), so paid backlogs never starve the
    free tier; the others consume every queue, the plans in priority order."""
    from notefall.server.renders.queues import FREE_FIRST, PRIORITY_ORDER

    arguments = [["worker", "-c", "1"] for _ in range(workers)]
    if workers >= 2:
        arguments[0] += ["-Q", ",".join(FREE_FIRST)]
        print(
            f"notefall: worker 1 takes the free queue first: {', '.join(FREE_FIRST)}",
            file=sys.stderr,
        )
    rest = "workers 2.." if workers >= 2 else "the worker"
    print(
        f"notefall: {rest} take the plans in priority order: {', '.join(PRIORITY_ORDER)}",
        file=sys.stderr,
    )
    return arguments


def run_stack(data_dir: Path, *, host: str, port: int, workers: int) -> int:
    """Run until SIGINT/SIGTERM (exit 0), or until a part keeps stopping on its own (exit 1)."""
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
    parts = [Part("the API", ["serve", "--no-migrate", "--host", host, "--port", str(port)])]
    parts += [
        Part(f"worker {n}", arguments) for n, arguments in enumerate(worker_arguments(workers), 1)
    ]
    parts.append(Part("beat", ["beat"]))
    url_file = data_dir / REDIS_URL_FILE
    try:
        for part in parts:
            part.start(env)
        children = [part.process for part in parts if part.process is not None]
        if not _wait_until_ready(url, children, lambda: stop_requested):
            if stop_requested:
                return 0
            print(
                "notefall: error: the stack did not start; see the messages above", file=sys.stderr
            )
            return 1
        # Operators' commands (`notefall admin reconcile`, dead letters) run with the same
        # NOTEFALL_DATA_DIR find this Redis here; it is removed when the stack stops.
        if redis is not None:  # its own Redis only: a given URL may carry a password
            url_file.parent.mkdir(parents=True, exist_ok=True)
            url_file.touch(mode=0o600)
            url_file.write_text(redis_url + "\n", encoding="utf-8")
        print(
            f"Notefall is running at {url}: sign up at {url}/signup (the API: {url}/docs); "
            f"{mail_destination(settings)} (data in {data_dir}; Redis at {redis_url}; "
            "Ctrl-C stops it)",
            flush=True,
        )
        while not stop_requested:
            for part in parts:
                if not part.check(env):
                    print(
                        f"notefall: error: {part.name} keeps stopping; stopping the rest",
                        file=sys.stderr,
                    )
                    return 1
            time.sleep(0.2)
        return 0
    finally:
        _stop([part.process for part in parts if part.process is not None])
        if redis is not None:
            url_file.unlink(missing_ok=True)
        if redis:
            redis.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
