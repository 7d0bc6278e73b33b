"""/readyz names the part that does not answer: here Redis, which rate limits and queues need,
and the workers, which must prove they consume when render work waits."""

import time
from pathlib import Path

import redis
from notefall.server.jobs import enqueue
from notefall.server.kit.redis_server import free_port
from notefall.server.kit.settings import Settings
from notefall.server.renders import keys

from tests.support.redis_server import task_result
from tests.support.render_farm import running_workers

from .conftest import TestClient, create_app, make_settings, signed_in_headers
from .test_app import assert_problem
from .test_render_events import create_render, user_id_of
from .test_worker_presence import eventually


def test_readyz_is_503_when_redis_does_not_answer(tmp_path: Path, migrated_url: str):
    down = make_settings(tmp_path, migrated_url, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(create_app(down)) as client:
        body = assert_problem(client.get("/readyz"), 503, "redis_unreachable")
        assert "NOTEFALL_REDIS_URL" in body["detail"]
        assert client.get("/healthz").status_code == 200


def test_readyz_is_ready_when_redis_answers(client: TestClient):
    assert client.get("/readyz").json() == {"status": "ready"}


def test_readyz_is_ready_with_no_work_and_no_worker(client: TestClient, settings: Settings):
    # A quiet farm: nothing consumed ever, nothing waiting.
    signed_in_headers(client, settings, "quiet@example.com")
    recent = settings.worker_stale_seconds / 2
    create_render(
        settings, user_id_of(settings, "quiet@example.com"), step_enqueued_seconds_ago=recent
    )
    assert client.get("/readyz").json() == {"status": "ready"}


def test_readyz_fails_when_work_waits_and_no_worker_consumes_until_one_does(
    client: TestClient, settings: Settings, tmp_path: Path
):
    signed_in_headers(client, settings, "stuck@example.com")
    old = settings.worker_stale_seconds + 60
    create_render(
        settings, user_id_of(settings, "stuck@example.com"), step_enqueued_seconds_ago=old
    )
    body = assert_problem(client.get("/readyz"), 503, "no_worker_consuming")
    assert "notefall worker" in body["detail"] and "no worker is consuming" in body["detail"]

    # A consumption older than the window does not count either.
    direct = redis.Redis.from_url(str(settings.redis_url))
    direct.hset(keys.CONSUMED, "default", time.time() - settings.worker_stale_seconds - 5)
    assert_problem(client.get("/readyz"), 503, "no_worker_consuming")

    with running_workers(settings, tmp_path, count=1):
        task_id = enqueue(settings, "notefall.ping")
        assert task_result(str(settings.redis_url), task_id) == "pong"
        eventually(lambda: direct.hget(keys.CONSUMED, "default"), what="consumption recorded")
    direct.close()
    # The worker finished a task: the farm consumes (the waiting render is the reconciler's).
    assert client.get("/readyz").json() == {"status": "ready"}
