"""Workers record themselves (presence) and what they consume, through Celery signals, in
real ``notefall worker`` processes; /metrics counts them; a worker warns about a Redis that
may lose queued jobs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import redis
from notefall.server.jobs import enqueue
from notefall.server.kit.settings import Settings
from notefall.server.renders import keys
from notefall.server.renders.presence import (
    WORKER_GONE_SECONDS,
    alive_workers,
    check_redis_durability,
)
from notefall.server.renders.queues import RENDER_QUEUES

from tests.support.redis_server import task_result
from tests.support.render_farm import running_workers

from .conftest import TestClient
from .test_metrics import scrape, value

T = TypeVar("T")


def eventually(check: Callable[[], T], timeout: float = 30.0, what: str = "") -> T:
    """``check()``'s first truthy answer within ``timeout`` seconds (workers take a few to
    start); fails with ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        answer = check()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.2)


def test_a_running_worker_is_present_consumes_and_leaves_when_stopped(
    client: TestClient, settings: Settings, tmp_path: Path
):
    direct = redis.Redis.from_url(str(settings.redis_url))
    with running_workers(settings, tmp_path, count=1, concurrency=2) as (worker,):
        eventually(
            lambda: direct.hlen(keys.WORKERS) == 1,
            what=f"the worker records itself:\n{worker.log()}",
        )
        [(name, raw)] = direct.hgetall(keys.WORKERS).items()
        assert name.decode().endswith(f":{worker.pid}")  # host:pid of the main process
        entry = json.loads(raw)
        assert entry["concurrency"] == 2 and entry["busy"] == 0
        assert set(RENDER_QUEUES.values()) <= set(entry["queues"])
        assert time.time() - entry["seen_at"] < WORKER_GONE_SECONDS
        samples = scrape(client)
        assert value(samples, "notefall_workers_alive") == 1
        assert value(samples, "notefall_workers_capacity") == 2
        assert value(samples, "notefall_workers_busy") == 0

        assert direct.hget(keys.CONSUMED, "default") is None
        before = time.time()
        task_id = enqueue(settings, "notefall.ping", ["still here"])
        assert task_result(str(settings.redis_url), task_id) == "still here"
        consumed = eventually(lambda: direct.hget(keys.CONSUMED, "default"), what="consumption")
        assert float(consumed) >= before - 1
        assert value(scrape(client), "notefall_seconds_since_consumed") is not None
        worker.terminate()
        # A warm shutdown removes the worker's own record.
        assert direct.hlen(keys.WORKERS) == 0
        assert "appendonly" in worker.log()  # the test Redis keeps no AOF: warned at start
    direct.close()


def test_a_worker_not_seen_for_a_minute_counts_as_gone(redis_url: str):
    direct = redis.Redis.from_url(redis_url)
    now = time.time()
    for name, seen in [("box:1", now - 5), ("box:2", now - WORKER_GONE_SECONDS - 1)]:
        entry = {"queues": ["render.free"], "concurrency": 1, "busy": 1, "seen_at": seen}
        direct.hset(keys.WORKERS, name, json.dumps(entry))
    direct.hset(keys.WORKERS, "box:3", "not json")
    assert [worker.name for worker in alive_workers(direct, now)] == ["box:1"]
    direct.close()


def test_the_worker_warns_when_redis_may_evict_or_lose_jobs(redis_url: str):
    direct = redis.Redis.from_url(redis_url)
    try:
        direct.config_set("maxmemory-policy", "allkeys-lru")
        warnings = check_redis_durability(direct)
        assert any("set maxmemory-policy noeviction" in w for w in warnings)
        assert any("appendonly yes" in w for w in warnings)  # the test Redis runs without AOF
        direct.config_set("maxmemory-policy", "noeviction")
        direct.config_set("appendonly", "yes")
        assert check_redis_durability(direct) == []
    finally:
        direct.config_set("maxmemory-policy", "noeviction")
        direct.config_set("appendonly", "no")
        direct.close()
