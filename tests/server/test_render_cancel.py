"""Cancelling a running render: FFmpeg gone within 2 s, no files, no charge, no quota used."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient
from notefall.server.kit.settings import Settings
from notefall.server.renders.states import RenderStatus, StepStatus

from tests.server import test_render_pipeline as pipeline
from tests.server.test_render_pipeline import (
    LONG_SONG,
    RENDERS,
    Farm,
    ffmpeg_children,
    submit,
    user_with_project,
)
from tests.support.render_farm import running_workers

# The farm's fixtures, shared with the pipeline tests.
farm_settings = pipeline.farm_settings
farm_client = pipeline.farm_client
inspect = pipeline.inspect

CANCEL_DEADLINE_SECONDS = 2.0


def test_cancel_mid_render_kills_ffmpeg_and_leaves_nothing(
    farm_client: TestClient, farm_settings: Settings, inspect: Farm, tmp_path: Path
):
    headers, project_id = user_with_project(
        farm_client, farm_settings, "ada@example.com", midi=LONG_SONG
    )
    before = farm_client.get("/api/v1/usage", headers=headers).json()
    render_id = submit(farm_client, headers, project_id)
    with running_workers(farm_settings, tmp_path, count=2) as workers:
        inspect.wait_for(render_id, lambda r: r.stage == "rendering", workers=workers)
        # Cancel while a segment's FFmpeg is encoding.
        deadline = time.monotonic() + 30
        while not any(ffmpeg_children(w) for w in workers):
            assert time.monotonic() < deadline, "no segment's FFmpeg ever ran"
            time.sleep(0.01)
        answer = farm_client.post(f"{RENDERS}/{render_id}/cancel", headers=headers)
        cancelled_at = time.monotonic()
        assert answer.status_code == 200, answer.text
        while any(ffmpeg_children(w) for w in workers):
            elapsed = time.monotonic() - cancelled_at
            assert elapsed < CANCEL_DEADLINE_SECONDS, (
                f"FFmpeg still running {elapsed:.1f} s after cancel"
            )
            time.sleep(0.02)
        stopped_after = time.monotonic() - cancelled_at

        # The steps that were running stop and clean up after their last write.
        def settled() -> bool:
            steps = inspect.steps(render_id)
            return not inspect.stored(render_id) and all(
                s.status != StepStatus.RUNNING for s in steps
            )

        deadline = time.monotonic() + 10
        while not settled():
            assert time.monotonic() < deadline, (
                inspect.stored(render_id),
                workers[0].log()[-3000:],
            )
            time.sleep(0.05)
        assert all(w.process.poll() is None for w in workers)  # workers live on

    render = inspect.render(render_id)
    assert render.status == RenderStatus.CANCELLED
    assert render.output_key is None and render.thumbnail_key is None
    assert inspect.stored(render_id) == []
    assert inspect.charged(render.owner_id) == {}
    after = farm_client.get("/api/v1/usage", headers=headers).json()
    assert after["storage_bytes"] == before["storage_bytes"]
    assert after["renders"]["used_this_month"] == before["renders"]["used_this_month"]
    # No step finished after the cancel: no join, thumbnail or finalize ever came.
    names = {s.name for s in inspect.steps(render_id)}
    assert names <= {"prepare", "segment"}
    # The step that stops last logs it just before it cleans up: give the event a moment.
    deadline = time.monotonic() + 10
    while not [
        e for e in inspect.events(render_id)
        if e["type"] == "log" and "its render was cancelled" in e["message"]
    ]:  # fmt: skip
        assert time.monotonic() < deadline, "no running step reported the cancel"
        time.sleep(0.05)
    assert stopped_after < CANCEL_DEADLINE_SECONDS


def test_cancel_before_any_worker_starts_it(
    farm_client: TestClient, farm_settings: Settings, inspect: Farm, tmp_path: Path
):
    headers, project_id = user_with_project(farm_client, farm_settings, "ada@example.com")
    render_id = submit(farm_client, headers, project_id)
    assert farm_client.post(f"{RENDERS}/{render_id}/cancel", headers=headers).status_code == 200
    with running_workers(farm_settings, tmp_path, count=1) as workers:
        # The queued message is delivered, finds the render cancelled, and cleans up.
        deadline = time.monotonic() + 30
        while inspect.stored(render_id):
            assert time.monotonic() < deadline, workers[0].log()[-3000:]
            time.sleep(0.05)
    (prepare,) = inspect.steps(render_id)
    assert prepare.status == StepStatus.FAILED and prepare.deliveries == 0
    assert inspect.render(render_id).status == RenderStatus.CANCELLED
