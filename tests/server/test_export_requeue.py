"""A pending export whose queue message was lost is queued again by the periodic reconciler."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
import redis
from notefall.server.jobs.schedule import BEAT_SCHEDULE
from notefall.server.kit.models import utcnow
from notefall.server.kit.settings import Settings
from notefall.server.profile.export_job import EXPORT_TASK, stale_pending_exports
from notefall.server.profile.tasks import REQUEUE_AFTER, REQUEUE_TASK, requeue_stale_exports

from .conftest import TEST_SECRET_KEY, TestClient, signed_in_headers


def _queued_exports(redis_url: str) -> list[str]:
    messages = redis.Redis.from_url(redis_url).lrange("default", 0, -1)
    headers = [json.loads(m)["headers"] for m in messages]
    return [h["argsrepr"] for h in headers if h["task"] == EXPORT_TASK]


def test_a_lost_export_message_is_queued_again(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    headers = signed_in_headers(client, settings, "ada@example.com")
    export_id = client.post("/api/v1/me/export", headers=headers).json()["id"]
    assert len(_queued_exports(str(settings.redis_url))) == 1
    redis.Redis.from_url(str(settings.redis_url)).flushdb()  # the broker lost it

    now = utcnow()
    assert stale_pending_exports(settings, now, REQUEUE_AFTER) == []
    later = now + REQUEUE_AFTER + timedelta(seconds=1)
    assert stale_pending_exports(settings, later, REQUEUE_AFTER) == [uuid.UUID(export_id)]

    # The task itself, as beat runs it: settings from the environment, "now" from the clock.
    for name, value in {
        "DATA_DIR": str(settings.data_dir),
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": str(settings.redis_url),
        "SECRET_KEY": TEST_SECRET_KEY,
        "ENVIRONMENT": "test",
    }.items():
        monkeypatch.setenv(f"NOTEFALL_{name}", value)
    monkeypatch.setattr("notefall.server.profile.tasks.utcnow", lambda: later)
    assert requeue_stale_exports() == 1
    assert _queued_exports(str(settings.redis_url)) == [repr([export_id])]
    assert REQUEUE_TASK in BEAT_SCHEDULE
