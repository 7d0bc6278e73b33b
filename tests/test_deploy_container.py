"""The image's worker liveness check (packaging/docker/container.py) against a real Redis: a
worker that recorded itself and works, or has nothing to do, is alive; one idle while its
queues fill, or one that stopped recording itself, is not. (The whole image, with a real
worker, is exercised in tests/test_deploy_image.py.)"""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import redis
from notefall.server.renders import keys
from notefall.server.renders.presence import WORKER_GONE_SECONDS

from tests.support.redis_server import running_redis

CONTAINER_TOOL = Path(__file__).resolve().parents[1] / "packaging" / "docker" / "container.py"
HOST = "notefall-worker-7d9c6-x2x9q"  # a pod's name is its host name


def load_container_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("notefall_container", CONTAINER_TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


container = load_container_tool()


@pytest.fixture
def redis_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[redis.Redis]:
    with running_redis(tmp_path / "redis") as server:
        monkeypatch.setenv("NOTEFALL_REDIS_URL", server.url)
        monkeypatch.setenv("NOTEFALL_DATA_DIR", str(tmp_path / "data"))
        client = redis.Redis.from_url(server.url)
        yield client
        client.close()


def record_worker(client: redis.Redis, name: str, busy: int, seen_ago: float = 1.0) -> None:
    """What a worker's presence thread writes (server/renders/presence.py)."""
    entry = {
        "queues": ["default", "render.free", "render.pro"],
        "concurrency": 2,
        "busy": busy,
        "seen_at": time.time() - seen_ago,
        "pid": 7,
    }
    client.hset(keys.WORKERS, name, json.dumps(entry))


def test_a_worker_running_tasks_is_alive(redis_client: redis.Redis):
    record_worker(redis_client, f"{HOST}:7", busy=2)
    redis_client.rpush("render.pro", "a waiting step")
    assert "running 2 task(s)" in container.worker_alive(HOST)


def test_an_idle_worker_with_empty_queues_is_alive(redis_client: redis.Redis):
    record_worker(redis_client, f"{HOST}:7", busy=0)
    redis_client.rpush("render.enterprise", "a step for a queue it does not consume")
    assert "idle and its queues are empty" in container.worker_alive(HOST)


def test_an_idle_worker_while_its_queues_hold_work_is_not_alive(redis_client: redis.Redis):
    record_worker(redis_client, f"{HOST}:7", busy=0)
    redis_client.rpush("render.free", "step 1", "step 2")
    with pytest.raises(container.Unhealthy, match=r"idle while messages wait \(render.free 2\)"):
        container.worker_alive(HOST)


def test_a_worker_that_stopped_recording_itself_is_not_alive(redis_client: redis.Redis):
    record_worker(redis_client, f"{HOST}:7", busy=1, seen_ago=WORKER_GONE_SECONDS + 5)
    # Another pod's worker being fine says nothing about this one.
    record_worker(redis_client, "notefall-worker-7d9c6-other:9", busy=1)
    with pytest.raises(container.Unhealthy, match=r"no worker on .* recorded itself"):
        container.worker_alive(HOST)


def test_the_check_answers_one_line_and_exit_1_when_redis_does_not_answer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("NOTEFALL_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("NOTEFALL_DATA_DIR", str(tmp_path))
    assert container.main(["worker-alive"]) == 1
    message = capsys.readouterr().err
    assert message.startswith("notefall-container: Redis does not answer")
    assert message.count("\n") == 1
