"""Transient failures retry with growing delays; a step that always fails ends dead."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import psutil
import pytest
from fastapi.testclient import TestClient
from notefall.server.kit.settings import Settings
from notefall.server.renders import keys, metrics
from notefall.server.renders.states import RenderStatus, StepName, StepStatus

from tests.server import test_render_pipeline as pipeline
from tests.server.conftest import outbox_messages
from tests.server.test_render_pipeline import (
    LONG_SONG,
    Farm,
    assert_no_step_ran_twice_at_once,
    farm,
    ffmpeg_children,
    log_events,
    submit,
    user_with_project,
)
from tests.support.render_farm import Worker, running_workers

farm_client = pipeline.farm_client
inspect = pipeline.inspect


@pytest.fixture
def farm_settings(tmp_path: Path, migrated_url: str, redis_url: str) -> Settings:
    # One segment for the whole song: the only encoding FFmpeg while the render is at its
    # "rendering" stage is that segment's, so each kill hits the same step however fast or
    # slow the machine is (with several short segments, one could finish before the kill).
    return farm(
        tmp_path, migrated_url, redis_url, render_max_deliveries=3, render_segment_seconds=60.0
    )


def kill_ffmpeg_of(worker: Worker, timeout: float = 30) -> psutil.Process:
    """SIGKILL the worker's FFmpeg as soon as one runs (an encoder crash, from its side)."""
    deadline = time.monotonic() + timeout
    while True:
        # An encoding job (it reports -progress), not a quick `ffmpeg -version` check.
        found = [p for p in ffmpeg_children(worker) if "-progress" in _cmdline(p)]
        if found:
            found[0].send_signal(signal.SIGKILL)
            return found[0]
        assert time.monotonic() < deadline, f"no FFmpeg ran:\n{worker.log()[-3000:]}"
        time.sleep(0.005)


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return []


def test_a_crashed_encoder_is_retried_with_growing_delays(
    farm_client: TestClient, farm_settings: Settings, inspect: Farm, tmp_path: Path
):
    headers, project_id = user_with_project(
        farm_client, farm_settings, "ada@example.com", midi=LONG_SONG
    )
    render_id = submit(farm_client, headers, project_id)
    with running_workers(farm_settings, tmp_path, count=1) as workers:
        (worker,) = workers
        inspect.wait_for(render_id, lambda r: r.stage == "rendering", workers=workers)
        # One worker: the segment it runs now is the one whose FFmpeg dies, twice.
        kill_ffmpeg_of(worker)
        victim = next(s for s in inspect.steps(render_id) if s.deliveries >= 1
                      and s.name == StepName.SEGMENT and s.status != StepStatus.DONE)  # fmt: skip
        inspect.wait_for(
            render_id,
            lambda r: any(
                s.index == victim.index and s.name == victim.name and s.deliveries == 2
                and s.status == StepStatus.RUNNING for s in inspect.steps(render_id)
            ),
            workers=workers,
        )  # fmt: skip
        kill_ffmpeg_of(worker)
        render = inspect.wait_until_ended(render_id, timeout=90, workers=workers)
    assert render.status == RenderStatus.SUCCEEDED, render.error_message

    step = next(
        s for s in inspect.steps(render_id) if (s.name, s.index) == (victim.name, victim.index)
    )
    assert step.status == StepStatus.DONE and step.deliveries == 3
    others = [s for s in inspect.steps(render_id) if s.id != step.id]
    assert all(s.deliveries == 1 for s in others)

    events = inspect.events_until_the_end(render_id)
    retries = [e for e in log_events(events) if "retrying in" in e["message"]]
    assert [e["step"] for e in retries] == [f"segment:{step.index}"] * 2
    assert all("FFmpeg" in e["message"] for e in retries)
    first, second = (float(e["retry_in"]) for e in retries)
    # Base 0.2 s: the first wait is in [0.1, 0.2), the second in [0.2, 0.4).
    assert 0.1 <= first < 0.2 <= second < 0.4
    assert second > first
    assert_no_step_ran_twice_at_once(events)
    assert not inspect.redis.lrange(keys.DEAD_LETTERS, 0, -1)
    assert inspect.redis.hget(metrics.COUNTERS_KEY, metrics.RETRIES_FIELD) == b"2"


def test_a_poison_step_goes_to_the_dead_letters_after_its_deliveries(
    farm_client: TestClient, farm_settings: Settings, inspect: Farm, tmp_path: Path
):
    headers, project_id = user_with_project(farm_client, farm_settings, "ada@example.com")
    before = farm_client.get("/api/v1/usage", headers=headers).json()
    render_id = submit(farm_client, headers, project_id)
    # Prepare will fail with a storage error on every delivery.
    inspect.storage.delete(keys.input_midi(render_id))
    with running_workers(farm_settings, tmp_path, count=1) as workers:
        render = inspect.wait_until_ended(render_id, workers=workers)
    assert render.status == RenderStatus.DEAD
    assert render.error_code == "render_dead"
    (prepare,) = inspect.steps(render_id)
    # Three deliveries ran and failed; the fourth found the limit passed.
    assert prepare.deliveries == 4 and prepare.status == StepStatus.FAILED
    assert prepare.error is not None and "FileNotFoundError" in prepare.error

    (entry,) = [json.loads(e) for e in inspect.redis.lrange(keys.DEAD_LETTERS, 0, -1)]
    assert entry["render_id"] == str(render_id) and entry["step"] == "prepare:0"
    assert "delivered 4 times" in entry["reason"] and "FileNotFoundError" in entry["reason"]

    retries = [e for e in log_events(inspect.events(render_id)) if "retrying in" in e["message"]]
    delays = [float(e["retry_in"]) for e in retries]
    assert len(delays) == 3 and delays == sorted(delays)

    assert inspect.charged(render.owner_id) == {}
    after = farm_client.get("/api/v1/usage", headers=headers).json()
    assert after["storage_bytes"] == before["storage_bytes"]
    assert after["renders"]["used_this_month"] == before["renders"]["used_this_month"]
    assert inspect.events_until_the_end(render_id)[-1]["status"] == "dead"
    assert inspect.redis.hget(metrics.OUTCOMES_KEY, "dead") == b"1"
    mail = [m for m in outbox_messages(farm_settings) if "failed" in str(m["Subject"])]
    assert len(mail) == 1
