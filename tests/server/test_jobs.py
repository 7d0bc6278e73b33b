"""The job queue: a real Celery worker process on the test's real Redis, and a loud enqueue."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi import FastAPI
from notefall.server.jobs import QueueUnavailableError, celery_app, enqueue, every
from notefall.server.jobs.schedule import BEAT_SCHEDULE
from notefall.server.kit.errors import install_error_handlers
from notefall.server.kit.redis_server import free_port
from notefall.server.kit.settings import Environment, Settings, load_settings

from tests.support.redis_server import task_result

from .conftest import TestClient


def _settings(tmp_path: Path, redis_url: str | None) -> Settings:
    return load_settings(data_dir=tmp_path, redis_url=redis_url, environment=Environment.TEST)


@pytest.fixture
def worker(tmp_path: Path, redis_url: str) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTEFALL_")}
    env.update(NOTEFALL_REDIS_URL=redis_url, NOTEFALL_DATA_DIR=str(tmp_path))
    process = subprocess.Popen(
        [sys.executable, "-m", "notefall.cli", "worker", "-c", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
        # SIGTERM is a warm shutdown: the worker says goodbye and exits 0.
        assert process.returncode == 0, output.decode(errors="replace")


def test_a_real_worker_runs_an_enqueued_task(
    tmp_path: Path, redis_url: str, worker: subprocess.Popen[bytes]
):
    settings = _settings(tmp_path, redis_url)
    task_id = enqueue(settings, "notefall.ping", ["falling notes"])
    assert task_result(redis_url, task_id) == "falling notes"
    assert worker.poll() is None


def test_a_task_waits_in_redis_until_a_worker_comes(tmp_path: Path, redis_url: str):
    settings = _settings(tmp_path, redis_url)
    enqueue(settings, "notefall.ping")
    # Celery's Redis transport keeps a queue as a list named after it.
    assert redis.Redis.from_url(redis_url).llen("default") == 1


def test_enqueue_without_a_reachable_redis_fails_loudly(tmp_path: Path):
    down = _settings(tmp_path, f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(QueueUnavailableError, match="does not answer"):
        enqueue(down, "notefall.ping")
    with pytest.raises(QueueUnavailableError, match="NOTEFALL_REDIS_URL is unset"):
        enqueue(_settings(tmp_path, None), "notefall.ping")


def test_queue_unavailable_is_a_503_problem(tmp_path: Path):
    down = _settings(tmp_path, f"redis://127.0.0.1:{free_port()}/0")
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/start")
    def start() -> str:
        return enqueue(down, "notefall.ping")

    response = TestClient(app).post("/start")
    assert response.status_code == 503
    assert response.json()["code"] == "queue_unavailable"


def test_the_configuration_delivers_at_least_once():
    conf = celery_app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    timeout = conf.broker_transport_options["visibility_timeout"]
    assert conf.result_backend_transport_options["visibility_timeout"] == timeout
    assert conf.task_time_limit < timeout
    assert conf.accept_content == ["json"] and conf.timezone == "UTC"


def test_domains_register_periodic_tasks():
    every(300, "notefall.ping", name="test-ping", queue="default")
    try:
        assert celery_app.conf.beat_schedule["test-ping"] == {
            "task": "notefall.ping",
            "schedule": 300,
            # A chore not started within its interval is superseded by the next one.
            "options": {"queue": "default", "expires": 300},
        }
    finally:
        BEAT_SCHEDULE.pop("test-ping")
