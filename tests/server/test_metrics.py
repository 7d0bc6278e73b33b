"""GET /metrics: the farm's gauges and counters, from real Redis and the real database."""

from __future__ import annotations

import uuid
from datetime import timedelta

import redis
from notefall.server.jobs import enqueue
from notefall.server.kit.db import Database, transaction_scope
from notefall.server.kit.models import utcnow
from notefall.server.kit.redis_server import free_port
from notefall.server.kit.settings import Settings
from notefall.server.renders import keys, metrics, steps
from notefall.server.renders.models import RenderStep
from notefall.server.renders.states import RenderStatus, StepName, StepStatus
from prometheus_client.parser import text_string_to_metric_families

from .conftest import TestClient, create_app, make_settings, signed_in_headers
from .test_render_events import create_render, user_id_of


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics: (name, sorted labels) -> value."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_queue_length_counts_every_priority_bucket_and_the_unacked_hash(
    client: TestClient, settings: Settings
):
    for priority in (None, 0, 5, 9):
        enqueue(
            settings,
            steps.STEP_TASK,
            args=["x", 1, "prepare", 0],
            queue="render.free",
            priority=priority,
        )
    enqueue(settings, steps.STEP_TASK, args=["y", 1, "prepare", 0], queue="render.pro")
    samples = scrape(client)
    assert value(samples, "notefall_redis_up") == 1
    # kombu put these in three different lists (buckets 0, 3/6 and 9): all are counted.
    assert value(samples, "notefall_queue_length", queue="render.free") == 4
    assert value(samples, "notefall_queue_length", queue="render.pro") == 1
    assert value(samples, "notefall_queue_length", queue="render.enterprise") == 0
    assert value(samples, "notefall_queue_unacked") == 0


def test_dead_letters_and_workers_come_from_redis(client: TestClient, settings: Settings):
    direct = redis.Redis.from_url(str(settings.redis_url))
    for n in range(3):
        direct.rpush(keys.DEAD_LETTERS, f'{{"render_id": "{uuid.uuid4()}", "n": {n}}}')
    samples = scrape(client)
    direct.close()
    assert value(samples, "notefall_dead_letters") == 3
    assert value(samples, "notefall_workers_alive") == 0
    assert value(samples, "notefall_workers_busy") == 0


def test_counters_and_the_duration_histogram_add_up_across_processes(
    client: TestClient, settings: Settings
):
    # Two clients stand for two worker processes: they add to the same numbers.
    first = redis.Redis.from_url(str(settings.redis_url))
    second = redis.Redis.from_url(str(settings.redis_url))
    metrics.record_outcome(first, "succeeded")
    metrics.record_outcome(second, RenderStatus.SUCCEEDED)
    metrics.record_outcome(second, "dead")
    metrics.record_outcome(first, "no-such-outcome")  # ignored, never raised
    metrics.record_retry(first)
    metrics.record_retry(second)
    metrics.observe_render_seconds(first, "256x144", 4.0)
    metrics.observe_render_seconds(second, "256x144", 45.0)
    metrics.observe_render_seconds(first, "1080p", 700.0)
    metrics.observe_render_seconds(second, "1080x1920", 10.0)  # vertical 1080p
    first.close()
    second.close()
    samples = scrape(client)
    assert value(samples, "notefall_renders_total", outcome="succeeded") == 2
    assert value(samples, "notefall_renders_total", outcome="dead") == 1
    assert value(samples, "notefall_renders_total", outcome="failed") == 0
    assert value(samples, "notefall_render_retries_total") == 2
    bucket = "notefall_render_seconds_bucket"
    assert value(samples, bucket, resolution="720p", le="5.0") == 1
    assert value(samples, bucket, resolution="720p", le="30.0") == 1
    assert value(samples, bucket, resolution="720p", le="60.0") == 2
    assert value(samples, bucket, resolution="720p", le="+Inf") == 2
    assert value(samples, "notefall_render_seconds_sum", resolution="720p") == 49.0
    # Sizes are filed by class: any WxH a user picks adds no new series.
    assert value(samples, "notefall_render_seconds_count", resolution="1080p") == 2
    assert value(samples, bucket, resolution="1080p", le="600.0") == 1


def test_recording_with_redis_down_is_silent():
    down = redis.Redis(port=free_port(), socket_connect_timeout=0.5)
    metrics.record_outcome(down, "failed")
    metrics.record_retry(down)
    metrics.observe_render_seconds(down, "720p", 3.0)


def test_database_gauges_renders_by_status_oldest_queued_and_stale_steps(
    client: TestClient, settings: Settings
):
    signed_in_headers(client, settings, "gauges@example.com")
    owner = user_id_of(settings, "gauges@example.com")
    create_render(settings, owner, age_seconds=300)
    create_render(settings, owner, age_seconds=20)
    running = create_render(settings, owner, status=RenderStatus.RUNNING, queue="render.pro")
    create_render(settings, owner, status=RenderStatus.DEAD)
    database = Database(settings.database_url)
    with transaction_scope(database) as session:
        stale = RenderStep(
            render_id=running,
            attempt=1,
            name=StepName.SEGMENT.value,
            index=0,
            status=StepStatus.RUNNING.value,
            deliveries=1,
            fraction=0.2,
            heartbeat_at=utcnow() - timedelta(seconds=settings.render_stale_seconds + 30),
        )
        fresh = RenderStep(
            render_id=running,
            attempt=1,
            name=StepName.SEGMENT.value,
            index=1,
            status=StepStatus.RUNNING.value,
            deliveries=1,
            fraction=0.2,
            heartbeat_at=utcnow(),
        )
        session.add_all([stale, fresh])
    database.dispose()
    samples = scrape(client)
    assert value(samples, "notefall_database_up") == 1
    assert value(samples, "notefall_renders_by_status", status="queued") == 2
    assert value(samples, "notefall_renders_by_status", status="running") == 1
    assert value(samples, "notefall_renders_by_status", status="dead") == 1
    assert value(samples, "notefall_renders_by_status", status="succeeded") == 0
    assert value(samples, "notefall_renders_running") == 1
    oldest = value(samples, "notefall_oldest_queued_seconds", queue="render.free")
    assert oldest is not None and 300 <= oldest < 400
    assert value(samples, "notefall_oldest_queued_seconds", queue="render.pro") == 0
    assert value(samples, "notefall_stale_steps") == 1


def test_metrics_answer_when_redis_is_down(tmp_path, migrated_url: str):
    down = make_settings(tmp_path, migrated_url, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(create_app(down)) as client:
        samples = scrape(client)
    assert value(samples, "notefall_redis_up") == 0
    assert value(samples, "notefall_queue_length", queue="render.free") is None
    # What the database knows is still reported.
    assert value(samples, "notefall_database_up") == 1
    assert value(samples, "notefall_renders_running") == 0


def test_any_size_is_filed_under_a_few_resolution_classes():
    classes = [metrics.resolution_class(r) for r in ("256x144", "720p", "1920x1080", "1080x1920")]
    assert classes == ["720p", "720p", "1080p", "1080p"]
    assert metrics.resolution_class("2560x1600") == "2160p"
    assert metrics.resolution_class("4096x4096") == "other"
    assert metrics.resolution_class("nonsense") == "other"
