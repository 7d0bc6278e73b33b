"""The render pipeline end to end: real API, real worker processes, real Redis and FFmpeg.

The helpers here (a farm's settings, submitting a project, waiting for a render, reading
its events) are shared by test_render_cancel.py and test_render_retries.py.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis
from fastapi.testclient import TestClient
from notefall.common.pipeline import render_video
from notefall.common.tiers import Tier, limits_for
from notefall.common.video.ffmpeg import framemd5, probe
from notefall.common.video.segments import count_frames
from notefall.server.admin.service import AdminService
from notefall.server.kit.app import create_app
from notefall.server.kit.db import Database, transaction_scope
from notefall.server.kit.mail import Outbox
from notefall.server.kit.models import utcnow
from notefall.server.kit.settings import Settings
from notefall.server.renders import keys, metrics, steps
from notefall.server.renders.models import Render, RenderStep
from notefall.server.renders.states import TERMINAL, RenderStatus, StepName, StepStatus
from notefall.server.renders.work import add_join_if_last, cloud_settings, complete_step
from notefall.server.retention.runner import run_retention
from notefall.server.storage.factory import storage_from_settings
from notefall.server.usage.models import ChargedFile
from sqlalchemy import select

from tests.server.conftest import (
    TEST_RATE_LIMIT_SCALE,
    body_of,
    make_settings,
    outbox_messages,
    signed_in_headers,
)
from tests.support.midi_factory import make_midi
from tests.support.render_farm import Worker, running_workers

# Tiny, fast renders: a few one-second segments of a small picture.
RENDER_SETTINGS = {"resolution": "256x144", "fps": 24, "preset": "draft"}
# Four notes over two seconds (120 bpm): with lead-in and tail, a few seconds of video.
SONG = make_midi([(0, 1, 60, 90, 0), (1, 1, 64, 90, 0), (2, 1, 67, 90, 0), (3, 1, 72, 90, 0)])
# A longer song, for tests that act while segments are rendering.
LONG_SONG = make_midi([(beat, 1, 48 + beat % 24, 90, 0) for beat in range(24)])
RENDERS = "/api/v1/renders"


# Settings and clients ------------------------------------------------------------------------


@pytest.fixture
def farm_settings(tmp_path: Path, migrated_url: str, redis_url: str) -> Settings:
    return farm(tmp_path, migrated_url, redis_url)


def farm(tmp_path: Path, migrated_url: str, redis_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "redis_url": redis_url,
        "rate_limit_scale": TEST_RATE_LIMIT_SCALE,
        "render_segment_seconds": 1.0,
        "render_retry_base_seconds": 0.2,
        "render_retry_cap_seconds": 5.0,
        "render_heartbeat_seconds": 0.4,
    }
    values.update(overrides)
    return make_settings(tmp_path / "data", migrated_url, **values)


@pytest.fixture
def farm_client(farm_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(farm_settings)) as test_client:
        yield test_client


def set_tier(settings: Settings, email: str, tier: Tier) -> None:
    database = Database(settings.database_url)
    try:
        with transaction_scope(database) as session:
            AdminService(session, Outbox(settings.outbox_dir), utcnow()).set_tier(email, tier)
    finally:
        database.dispose()


def new_project(
    client: TestClient, headers: dict[str, str], midi: bytes, name: str = "Etude"
) -> str:
    response = client.post("/api/v1/projects", json={"name": name}, headers=headers)
    assert response.status_code == 201, response.text
    project_id = str(response.json()["id"])
    files = {"file": ("song.mid", midi, "audio/midi")}
    upload = client.put(f"/api/v1/projects/{project_id}/midi", files=files, headers=headers)
    assert upload.status_code == 200, upload.text
    return project_id


def submit(
    client: TestClient,
    headers: dict[str, str],
    project_id: str,
    settings: dict[str, Any] | None = None,
) -> uuid.UUID:
    body = {"project_id": project_id, "settings": settings or RENDER_SETTINGS}
    response = client.post(RENDERS, json=body, headers=headers)
    assert response.status_code == 202, response.text
    return uuid.UUID(response.json()["id"])


def user_with_project(
    client: TestClient, settings: Settings, email: str, midi: bytes = SONG, tier: Tier | None = None
) -> tuple[dict[str, str], str]:
    headers = signed_in_headers(client, settings, email)
    if tier is not None:
        set_tier(settings, email, tier)
    return headers, new_project(client, headers, midi)


# Reading the farm's state --------------------------------------------------------------------


class Farm:
    """The database, storage and Redis a test inspects (its own connections)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.database = Database(settings.database_url)
        self.storage = storage_from_settings(settings, clock=utcnow)
        assert settings.redis_url is not None
        self.redis = redis.Redis.from_url(settings.redis_url)

    def close(self) -> None:
        self.database.dispose()
        self.redis.close()

    def render(self, render_id: uuid.UUID) -> Render:
        with transaction_scope(self.database) as session:
            render = session.get(Render, render_id)
            assert render is not None
            session.expunge(render)
            return render

    def steps(self, render_id: uuid.UUID) -> list[RenderStep]:
        with transaction_scope(self.database) as session:
            rows = list(
                session.scalars(
                    select(RenderStep)
                    .where(RenderStep.render_id == render_id)
                    .order_by(RenderStep.name, RenderStep.index)
                )
            )
            for row in rows:
                session.expunge(row)
            return rows

    def charged(self, owner_id: uuid.UUID) -> dict[str, int]:
        """The owner's charged render files (their project's MIDI aside)."""
        with transaction_scope(self.database) as session:
            rows = session.scalars(select(ChargedFile).where(ChargedFile.owner_id == owner_id))
            return {row.key: row.bytes for row in rows if row.key.startswith("renders/")}

    def stored(self, render_id: uuid.UUID) -> list[str]:
        return list(self.storage.keys(keys.render_folder(render_id).rstrip("/")))

    def events(self, render_id: uuid.UUID) -> list[dict[str, str]]:
        entries = self.redis.xrange(keys.events(render_id))
        return [{k.decode(): v.decode() for k, v in fields.items()} for _id, fields in entries]

    def events_until_the_end(
        self, render_id: uuid.UUID, timeout: float = 10
    ) -> list[dict[str, str]]:
        """The render's events once its final state event is in (it is published just
        after the commit that ended the render)."""
        deadline = time.monotonic() + timeout
        while True:
            events = self.events(render_id)
            ended = [e for e in events if e["type"] == "state" and e["status"] in TERMINAL]
            if ended or time.monotonic() > deadline:
                return events
            time.sleep(0.02)

    def wait_for(
        self,
        render_id: uuid.UUID,
        done: Callable[[Render], bool],
        timeout: float = 60,
        workers: list[Worker] | None = None,
    ) -> Render:
        deadline = time.monotonic() + timeout
        while True:
            render = self.render(render_id)
            if done(render):
                return render
            if time.monotonic() > deadline:
                logs = "\n".join(w.log()[-4000:] for w in workers or [])
                raise AssertionError(
                    f"render {render_id} is {render.status}/{render.stage} after {timeout} s; "
                    f"steps: {[(s.name, s.index, s.status, s.deliveries) for s in self.steps(render_id)]}"
                    f"\n{logs}"
                )
            time.sleep(0.05)

    def wait_until_ended(
        self, render_id: uuid.UUID, timeout: float = 60, workers: list[Worker] | None = None
    ) -> Render:
        return self.wait_for(
            render_id, lambda r: RenderStatus(r.status) in TERMINAL, timeout, workers
        )


@pytest.fixture
def inspect(farm_settings: Settings) -> Iterator[Farm]:
    farm_view = Farm(farm_settings)
    yield farm_view
    farm_view.close()


def ffmpeg_children(worker: Worker) -> list[psutil.Process]:
    """FFmpeg processes the worker started (each in its own process group, so: descendants)."""
    try:
        parent = psutil.Process(worker.pid)
        descendants = parent.children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for process in descendants:
        try:
            if process.name().startswith("ffmpeg") and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except psutil.NoSuchProcess:
            continue
    return found


def log_events(events: list[dict[str, str]]) -> list[dict[str, str]]:
    return [event for event in events if event["type"] == "log"]


def assert_no_step_ran_twice_at_once(events: list[dict[str, str]]) -> None:
    """Between a step's ``started`` and its end (finished/failed/stopped) no other
    delivery of the same step starts."""
    running: dict[str, str] = {}
    for event in log_events(events):
        step, message = event["step"], event["message"]
        if " started on " in message:
            assert step not in running, f"{step} started again while running: {message}"
            running[step] = event["worker"]
        elif " on " in message:
            running.pop(step, None)


# Tests ---------------------------------------------------------------------------------------


def test_a_render_runs_to_success_across_two_workers(
    farm_client: TestClient, farm_settings: Settings, inspect: Farm, tmp_path: Path
):
    headers, project_id = user_with_project(farm_client, farm_settings, "ada@example.com")
    render_id = submit(farm_client, headers, project_id)
    with running_workers(farm_settings, tmp_path, count=2) as workers:
        render = inspect.wait_until_ended(render_id, workers=workers)
    assert render.status == RenderStatus.SUCCEEDED, render.error_message
    assert render.percent == 100.0 and render.stage is None
    assert render.finished_at is not None and render.expires_at is not None
    # Free plan: kept for its 7 days.
    assert render.expires_at - render.finished_at == timedelta(days=7)

    # Several segments, each run once, joined into one video.
    steps = inspect.steps(render_id)
    segments = [s for s in steps if s.name == StepName.SEGMENT]
    assert render.segment_count == len(segments) >= 3
    assert all(s.status == StepStatus.DONE and s.deliveries == 1 for s in steps)
    assert {s.name for s in steps} == {n.value for n in StepName}

    # Output metadata read from the file itself.
    assert (render.width, render.height, render.fps, render.format) == (256, 144, 24, "mp4")
    assert render.output_codec == "h264"
    assert render.frame_count is not None and render.output_duration is not None
    assert render.output_duration == pytest.approx(render.frame_count / 24, abs=0.05)

    # The downloadable video has exactly the planned frames.
    download = farm_client.get(f"{RENDERS}/{render_id}/download", headers=headers)
    assert download.status_code == 200 and download.history, download.text  # redirected
    video = tmp_path / "video.mp4"
    video.write_bytes(download.content)
    assert render.output_bytes == video.stat().st_size
    assert count_frames(video) == render.frame_count
    info = probe(video)
    assert info.has_audio and (info.width, info.height) == (256, 144)

    # A thumbnail, the usage charged, and nothing else left in storage.
    assert render.thumbnail_key == keys.thumbnail(render_id)
    thumb = inspect.storage.get(render.thumbnail_key)
    assert thumb[:3] == b"\xff\xd8\xff"  # JPEG
    charged = inspect.charged(render.owner_id)
    assert charged[render.output_key] == render.output_bytes
    assert charged[render.thumbnail_key] == len(thumb)
    assert sorted(inspect.stored(render_id)) == sorted([render.output_key, render.thumbnail_key])

    # Events: running, progress that only moves forward, one log pair per step, succeeded.
    events = inspect.events_until_the_end(render_id)
    states = [e["status"] for e in events if e["type"] == "state"]
    assert states[0] == "queued" and "running" in states and states[-1] == "succeeded"
    percents = [float(e["percent"]) for e in events if e["type"] == "progress"]
    assert percents and percents == sorted(percents)
    started = [e for e in log_events(events) if " started on " in e["message"]]
    assert len(started) == len(steps)
    assert {e["worker"] for e in started} <= {s.worker for s in steps}
    assert any(
        e["message"].startswith(f"segment 1 of {len(segments)} started on ") for e in started
    )
    assert_no_step_ran_twice_at_once(events)

    # Counted for /metrics.
    assert inspect.redis.hget(metrics.OUTCOMES_KEY, "succeeded") == b"1"
    assert inspect.redis.hget(metrics.RENDER_SECONDS_KEY, "720p|count") == b"1"

    # The owner hears about it (default preferences).
    mail = [m for m in outbox_messages(farm_settings) if "is ready" in str(m["Subject"])]
    assert len(mail) == 1 and str(render_id) in body_of(mail[0])


def test_the_segmented_render_equals_a_one_pass_render(
    farm_client: TestClient, farm_settings: Settings, inspect: Farm, tmp_path: Path
):
    """Frame count and timestamps equal for the default H.264 MP4; pictures equal too for
    ProRes, which codes every frame on its own (a lossy inter-frame codec starts each
    segment with a keyframe where a one-pass file has a predicted frame)."""
    # Pro: no forced watermark (the local render uses the very same settings) and MOV.
    headers, project_id = user_with_project(
        farm_client, farm_settings, "ada@example.com", tier=Tier.PRO
    )
    prores = {**RENDER_SETTINGS, "format": "mov", "codec": "prores"}
    render_ids = [
        submit(farm_client, headers, project_id),
        submit(farm_client, headers, project_id, prores),
    ]
    with running_workers(farm_settings, tmp_path, count=2) as workers:
        renders = [inspect.wait_until_ended(r, workers=workers) for r in render_ids]
    for render in renders:
        assert render.status == RenderStatus.SUCCEEDED, render.error_message
        assert render.segment_count is not None and render.segment_count >= 3
        assert render.output_key is not None and render.format is not None
        cloud = tmp_path / f"cloud.{render.format}"
        cloud.write_bytes(inspect.storage.get(render.output_key))
        local = tmp_path / f"local.{render.format}"
        settings = cloud_settings(render.settings)
        assert settings.watermark is False
        render_video(SONG, local, settings, name="Etude")

        cloud_frames, local_frames = framemd5(cloud), framemd5(local)
        assert len(cloud_frames) == len(local_frames) == render.frame_count
        assert [(f.pts, f.time_base) for f in cloud_frames] == [
            (f.pts, f.time_base) for f in local_frames
        ]
        if render.format == "mov":
            assert render.output_codec == "prores"
            assert [f.md5 for f in cloud_frames] == [f.md5 for f in local_frames]


def test_the_worker_applies_the_plan_and_the_mail_preferences(
    farm_client: TestClient, farm_settings: Settings, inspect: Farm, tmp_path: Path
):
    """A row that asks for no watermark still gets one: the worker re-applies the owner's
    plan. And no "ready" mail goes to an owner who turned it off."""
    headers, project_id = user_with_project(farm_client, farm_settings, "ada@example.com")
    preferences = {"render_finished": False, "render_failed": True, "billing": True, "news": False}
    answer = farm_client.put("/api/v1/me/notifications", json=preferences, headers=headers)
    assert answer.status_code == 200, answer.text
    render_id = submit(farm_client, headers, project_id)
    with transaction_scope(inspect.database) as session:
        row = session.get(Render, render_id)
        assert row is not None
        row.settings = {**row.settings, "watermark": False}
    with running_workers(farm_settings, tmp_path, count=1) as workers:
        render = inspect.wait_until_ended(render_id, workers=workers)
    assert render.status == RenderStatus.SUCCEEDED, render.error_message
    assert render.settings["watermark"] is True
    assert not [m for m in outbox_messages(farm_settings) if "is ready" in str(m["Subject"])]


def test_a_bad_midi_fails_at_once_with_a_clear_message(
    farm_client: TestClient, farm_settings: Settings, inspect: Farm, tmp_path: Path
):
    headers, project_id = user_with_project(farm_client, farm_settings, "ada@example.com")
    render_id = submit(farm_client, headers, project_id)
    # The input copy turns out unreadable (the API checked the project's file at submit).
    inspect.storage.put(keys.input_midi(render_id), b"MThd this is not a MIDI file")
    with running_workers(farm_settings, tmp_path, count=1) as workers:
        render = inspect.wait_until_ended(render_id, workers=workers)
    assert render.status == RenderStatus.FAILED
    assert render.error_code == "corrupt_midi"
    assert render.error_message is not None
    assert "Upload a different MIDI file to the project" in render.error_message
    (prepare,) = inspect.steps(render_id)
    assert prepare.deliveries == 1  # no retry
    assert inspect.charged(render.owner_id) == {}
    assert inspect.stored(render_id) == []
    events = inspect.events_until_the_end(render_id)
    assert events[-1]["type"] == "state" and events[-1]["error_code"] == "corrupt_midi"
    assert not any("retrying" in e["message"] for e in log_events(events))
    assert inspect.redis.hget(metrics.OUTCOMES_KEY, "failed") == b"1"
    assert inspect.redis.hget(metrics.COUNTERS_KEY, metrics.RETRIES_FIELD) is None
    mail = [m for m in outbox_messages(farm_settings) if "failed" in str(m["Subject"])]
    assert len(mail) == 1 and "Upload a different MIDI file" in body_of(mail[0])


def test_retention_deletes_expired_videos_and_gives_back_their_storage(
    farm_client: TestClient, farm_settings: Settings, inspect: Farm, tmp_path: Path
):
    headers, project_id = user_with_project(farm_client, farm_settings, "ada@example.com")
    render_id = submit(farm_client, headers, project_id)
    with running_workers(farm_settings, tmp_path, count=1) as workers:
        render = inspect.wait_until_ended(render_id, workers=workers)
    assert render.status == RenderStatus.SUCCEEDED and render.expires_at is not None
    kept = [render.output_key, render.thumbnail_key]

    # A day before expiry nothing goes.
    report = run_retention(farm_settings, render.expires_at - timedelta(days=1))
    assert report.deleted.get("render_outputs") == 0 and not report.failed
    assert sorted(inspect.stored(render_id)) == sorted(kept)

    report = run_retention(farm_settings, render.expires_at + timedelta(seconds=1))
    assert report.deleted["render_outputs"] == 1 and not report.failed
    after = inspect.render(render_id)
    assert after.status == RenderStatus.SUCCEEDED  # the history stays
    assert after.output_key is None and after.thumbnail_key is None
    assert inspect.stored(render_id) == []
    assert inspect.charged(render.owner_id) == {}
    assert farm_client.get(f"{RENDERS}/{render_id}/download", headers=headers).status_code >= 400


@pytest.mark.parametrize("round_", range(4))
def test_of_two_segments_finishing_at_once_exactly_one_adds_the_join(
    farm_client: TestClient, farm_settings: Settings, inspect: Farm, round_: int
):
    """The last two segments complete in two transactions at the same moment: the render
    row's lock makes the second see the first, so the join is added once, never zero times."""
    headers, project_id = user_with_project(farm_client, farm_settings, f"ada{round_}@example.com")
    render_id = submit(farm_client, headers, project_id)
    with transaction_scope(inspect.database) as session:
        render = session.get(Render, render_id)
        assert render is not None
        (prepare,) = session.scalars(select(RenderStep).where(RenderStep.render_id == render_id))
        prepare.status = StepStatus.DONE.value
        render.segment_count = 2
        for index in range(2):
            steps.add_step(session, render, StepName.SEGMENT, index, first_frame=index * 24,
                           last_frame=index * 24 + 24)  # fmt: skip
    leases = []
    for index in range(2):
        ref = steps.StepRef(render_id, 1, StepName.SEGMENT, index)
        with transaction_scope(inspect.database) as session:
            lease = steps.claim(session, farm_settings, ref, worker=f"test:{index}")
            assert lease is not None
            leases.append(lease)
    barrier = threading.Barrier(2)
    failures: list[BaseException] = []

    def finish(lease: steps.Lease) -> None:
        try:
            barrier.wait()
            with transaction_scope(inspect.database) as session:
                complete_step(
                    session, lease, f"renders/{render_id}/work-1/segment-{lease.index}.mp4",
                    lambda s, r: add_join_if_last(s, farm_settings, r),
                )  # fmt: skip
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=finish, args=(lease,)) for lease in leases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    rows = inspect.steps(render_id)
    assert [s.status for s in rows if s.name == StepName.SEGMENT] == ["done", "done"]
    joins = [s for s in rows if s.name == StepName.JOIN]
    assert len(joins) == 1 and joins[0].status == StepStatus.PENDING
    assert joins[0].enqueued_at is not None  # published
    assert inspect.render(render_id).segments_done == 2


def test_a_render_that_ends_past_the_storage_quota_is_still_delivered_and_counted(
    farm_client: TestClient, farm_settings: Settings, inspect: Farm, tmp_path: Path
):
    """Submit checked room for the estimate; if other files filled it meanwhile, the finished
    video is kept and counted anyway (the work is done), and the owner is told."""
    headers, project_id = user_with_project(farm_client, farm_settings, "ada@example.com")
    render_id = submit(farm_client, headers, project_id)
    owner_id = inspect.render(render_id).owner_id
    with transaction_scope(inspect.database) as session:
        session.add(
            ChargedFile(key="projects/filler/big.wav", owner_id=owner_id,
                        bytes=limits_for(Tier.FREE).storage_quota_bytes, kind="audio")
        )  # fmt: skip
    with running_workers(farm_settings, tmp_path, count=1) as workers:
        render = inspect.wait_until_ended(render_id, workers=workers)
    assert render.status == RenderStatus.SUCCEEDED, render.error_message
    assert render.output_key is not None and render.output_bytes is not None
    assert inspect.charged(owner_id)[render.output_key] == render.output_bytes
    final = inspect.events_until_the_end(render_id)[-1]
    assert final["status"] == "succeeded" and "storage quota" in final["message"]
