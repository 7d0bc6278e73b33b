"""Submitting renders through the HTTP API, on every backend, with a real Redis: the checks
(settings, plan, MIDI), what is written (row, step, input copies) and published (the step's
message after commit, a state event), idempotency keys, duplicate detection, and a submit
that still succeeds while Redis is down."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from notefall.server.accounts.models import User
from notefall.server.kit.app import create_app
from notefall.server.kit.db import Database, transaction_scope
from notefall.server.kit.models import utcnow
from notefall.server.kit.redis_server import RedisServer
from notefall.server.kit.settings import Settings
from notefall.server.renders import keys
from notefall.server.renders.models import Render, RenderStep
from notefall.server.renders.service import RenderService
from notefall.server.storage.factory import storage_from_settings
from sqlalchemy import select, update

from tests.support.midi_factory import make_midi
from tests.support.render_farm import FAST_SETTINGS, project_with_midi, submit_render

from .conftest import TestClient, make_settings, signed_in_headers
from .test_app import assert_problem

RENDERS = "/api/v1/renders"
PROJECTS = "/api/v1/projects"


@pytest.fixture
def ada(client: TestClient, settings: Settings) -> dict[str, str]:
    return signed_in_headers(client, settings, "ada@example.com")


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    db = Database(settings.database_url)
    yield db
    db.dispose()


def _post(client: TestClient, headers: dict, body: dict, key: str | None = None):
    if key is not None:
        headers = {**headers, "Idempotency-Key": key}
    return client.post(RENDERS, json=body, headers=headers)


def _queued_task_ids(redis_url: str, queue: str) -> list[str]:
    """The task ids of the messages waiting in a Celery queue on Redis (every priority key)."""
    client = redis.Redis.from_url(redis_url)
    try:
        ids = []
        for name in client.scan_iter(match=f"{queue}*"):
            if client.type(name) != b"list":
                continue
            for raw in client.lrange(name, 0, -1):
                ids.append(json.loads(raw)["headers"]["id"])
        return ids
    finally:
        client.close()


def _events(redis_url: str, render_id: str) -> list[dict[str, str]]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return [fields for _id, fields in client.xrange(keys.events(render_id))]
    finally:
        client.close()


def _rows(database: Database, model: type, **where: object) -> list:
    with transaction_scope(database) as session:
        query = select(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return list(session.scalars(query))


def _stored(settings: Settings, key: str) -> Path:
    return settings.data_dir / "storage" / key


def _files(settings: Settings) -> list[Path]:
    return sorted(p for p in (settings.data_dir / "storage").rglob("*") if p.is_file())


def test_a_submit_writes_a_queued_render_and_publishes_its_prepare_step_after_commit(
    client: TestClient, settings: Settings, ada: dict, database: Database
):
    midi = make_midi(notes=[(0, 1, 60, 90, 0), (1, 1, 64, 90, 0)], title="Two notes")
    project_id = project_with_midi(client, ada, midi, name="Étude")
    response = _post(client, ada, {"project_id": project_id, "settings": FAST_SETTINGS})
    assert response.status_code == 202, response.text
    render = response.json()
    assert response.headers["location"] == f"{RENDERS}/{render['id']}"
    assert render["status"] == "queued" and render["stage"] is None
    assert render["project_id"] == project_id and render["project_name"] == "Étude"
    assert (render["tier"], render["queue"]) == ("free", "render.free")
    # The effective settings: every field, with the free plan's watermark forced on.
    assert render["settings"]["resolution"] == "256x144" and render["settings"]["fps"] == 24
    assert render["settings"]["watermark"] is True and render["settings"]["theme"] == "aurora"
    assert render["output"] is None and render["error"] is None
    assert render["segments"] == {"done": 0, "total": None}
    assert render["links"] == {
        "events": f"{RENDERS}/{render['id']}/events",
        "download": None,
        "thumbnail": None,
    }
    assert client.get(f"{RENDERS}/{render['id']}", headers=ada).json() == render

    # The step's message waits in the free queue, under a task id naming the step.
    task_ids = _queued_task_ids(str(settings.redis_url), "render.free")
    assert len(task_ids) == 1 and task_ids[0].startswith(f"render.{render['id']}.1.prepare.0.")
    [step] = _rows(database, RenderStep, render_id=uuid.UUID(render["id"]))
    assert (step.name, step.status, step.attempt) == ("prepare", "pending", 1)
    assert step.enqueued_at is not None
    [row] = _rows(database, Render, id=uuid.UUID(render["id"]))
    assert row.period == row.created_at.strftime("%Y-%m")
    assert row.input_midi_key == keys.input_midi(render["id"]) and row.input_audio_key is None
    assert _stored(settings, row.input_midi_key).read_bytes() == midi
    assert [e["type"] for e in _events(str(settings.redis_url), render["id"])] == ["state"]
    assert _events(str(settings.redis_url), render["id"])[0]["status"] == "queued"


def test_the_request_settings_are_laid_over_the_projects(
    client: TestClient, ada: dict, database: Database
):
    project_id = project_with_midi(client, ada, settings={"theme": "neon", "fps": 30})
    render = submit_render(client, ada, project_id, {"resolution": "256x144", "preset": "draft"})
    assert render["settings"]["theme"] == "neon" and render["settings"]["fps"] == 30
    assert render["settings"]["resolution"] == "256x144"
    assert render["settings"]["preset"] == "draft"


def test_a_free_users_first_render_with_no_settings_gets_the_best_the_plan_renders(
    client: TestClient, ada: dict
):
    project_id = project_with_midi(client, ada)
    render = submit_render(client, ada, project_id, {})
    # The schema's default is 1080p; Free renders 720p, so unset means 720p, not a refusal.
    assert render["status"] == "queued"
    assert (render["settings"]["resolution"], render["settings"]["fps"]) == ("720p", 30)
    assert render["settings"]["watermark"] is True
    # Asked for explicitly, 1080p is still refused.
    body = {"project_id": project_id, "settings": {"resolution": "1080p"}}
    assert_problem(_post(client, ada, body), 403, "resolution_not_in_plan")


def test_settings_are_checked_like_a_projects(client: TestClient, ada: dict):
    project_id = project_with_midi(client, ada)
    for settings, words in [
        ({"resolution": "256x144", "sparkles": True}, "sparkles"),
        ({"fps": 23}, "23 fps is not offered"),
        ({"theme": "no-such-theme"}, "no-such-theme"),
        ({"audio": "/etc/passwd"}, "audio: files on the server cannot be named in settings"),
        ({"soundfont": "/x.sf2"}, "soundfont: files on the server cannot be named in settings"),
        ({"background_image": "/x.png"}, "background_image: files on the server cannot"),
        ({"format": "webm", "codec": "h264"}, "webm files cannot hold h264"),
        # Only this song tells: the MIDI lasts about two seconds.
        ({"start": 60}, "start 60 s is after the song ends"),
    ]:
        response = _post(client, ada, {"project_id": project_id, "settings": settings})
        body = assert_problem(response, 422, "invalid_settings")
        assert words in body["detail"], (settings, body["detail"])
    body = assert_problem(
        _post(client, ada, {"project_id": project_id, "settings": {}, "priority": 9}),
        422,
        "invalid_request",
    )
    assert "priority" in body["detail"]


def test_a_project_needs_a_midi_file(client: TestClient, ada: dict):
    project = client.post(PROJECTS, json={"name": "Empty"}, headers=ada).json()
    body = assert_problem(
        _post(client, ada, {"project_id": project["id"], "settings": FAST_SETTINGS}),
        409,
        "project_has_no_midi",
    )
    assert "'Empty' has no MIDI file yet" in body["detail"]
    assert f"PUT /api/v1/projects/{project['id']}/midi" in body["detail"]


LONG_SONG = make_midi(notes=[(0, 1, 60, 90, 0), (1400, 1, 62, 90, 0)])  # about 11.7 minutes


@pytest.mark.parametrize(
    ("asked", "code", "words"),
    [
        ({"resolution": "1080p"}, "resolution_not_in_plan", "1920x1080 is above the 720p"),
        ({"fps": 60}, "frame_rate_not_in_plan", "60 fps is above the 30 fps"),
        ({"format": "mov"}, "format_not_in_plan", "MOV is not included in your Free plan"),
        (
            {"format": "webm", "transparent": True},
            "transparency_not_in_plan",
            "Transparent video is not included",
        ),
        ({}, "video_too_long_for_plan", "your Free plan renders up to 10 minutes"),
    ],
)
def test_what_the_plan_does_not_include_is_refused_with_an_upgrade_link(
    client: TestClient, ada: dict, asked: dict, code: str, words: str
):
    midi = LONG_SONG if code == "video_too_long_for_plan" else None
    project_id = project_with_midi(client, ada, midi)
    body = {"project_id": project_id, "settings": {**FAST_SETTINGS, **asked}}
    problem = assert_problem(_post(client, ada, body), 403, code)
    assert words in problem["detail"] and "Upgrade your plan" in problem["detail"]
    assert problem["upgrade_url"] == "http://notefall.test/billing"
    assert client.get(RENDERS, headers=ada).json()["total"] == 0


def test_an_idempotency_key_returns_the_same_render_even_after_it_ended(
    client: TestClient, ada: dict, database: Database
):
    project_id = project_with_midi(client, ada)
    body = {"project_id": project_id, "settings": FAST_SETTINGS}
    first = _post(client, ada, body, key="order-42")
    assert first.status_code == 202 and "idempotent-replayed" not in first.headers
    again = _post(client, ada, body, key="order-42")
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]

    assert client.post(f"{RENDERS}/{first.json()['id']}/cancel", headers=ada).status_code == 200
    after = _post(client, ada, body, key="order-42")
    assert after.status_code == 200 and after.json()["id"] == first.json()["id"]
    assert after.json()["status"] == "cancelled"

    other = {"project_id": project_id, "settings": {**FAST_SETTINGS, "fps": 30}}
    problem = assert_problem(
        _post(client, ada, other, key="order-42"), 422, "idempotency_key_reused"
    )
    assert first.json()["id"] in problem["detail"] and "use a new key" in problem["detail"]
    assert len(_rows(database, Render)) == 1


@pytest.mark.parametrize("key", ["", "x" * 201, "two words", "clé", "tab\there"])
def test_an_idempotency_key_is_one_to_200_visible_ascii_characters(
    client: TestClient, ada: dict, key: str
):
    project_id = project_with_midi(client, ada)
    body = {"project_id": project_id, "settings": FAST_SETTINGS}
    headers = {**ada, "Idempotency-Key": key.encode()}
    problem = assert_problem(
        client.post(RENDERS, json=body, headers=headers), 422, "invalid_idempotency_key"
    )
    assert "1 to 200 visible ASCII characters" in problem["detail"]
    assert _post(client, ada, body, key="x" * 200).status_code == 202


def _at_once(count: int, call) -> list:
    """Run ``call()`` in ``count`` threads released together; their results."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(index: int) -> None:
        barrier.wait()
        results[index] = call()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_the_same_new_key_sent_twice_at_once_makes_one_render(
    client: TestClient, settings: Settings, ada: dict, database: Database
):
    project_id = project_with_midi(client, ada)
    body = {"project_id": project_id, "settings": FAST_SETTINGS}
    responses = _at_once(2, lambda: _post(client, ada, body, key="same-key"))
    assert sorted(r.status_code for r in responses) == [200, 202], [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert len(_rows(database, Render)) == 1
    assert len(_queued_task_ids(str(settings.redis_url), "render.free")) == 1


def test_an_equal_render_still_queued_or_kept_is_returned_instead_of_a_new_one(
    client: TestClient, settings: Settings, ada: dict, database: Database
):
    project_id = project_with_midi(client, ada)
    body = {"project_id": project_id, "settings": FAST_SETTINGS}
    first = _post(client, ada, body)
    assert first.status_code == 202
    render_id = first.json()["id"]
    # The same effective settings written differently are the same render.
    same = {"project_id": project_id, "settings": {**FAST_SETTINGS, "theme": "aurora"}}
    duplicate = _post(client, ada, same)
    assert duplicate.status_code == 200 and duplicate.headers["notefall-duplicate-of"] == render_id
    assert duplicate.json()["id"] == render_id

    # Cancelled: no longer an equal render to share.
    assert client.post(f"{RENDERS}/{render_id}/cancel", headers=ada).status_code == 200
    second = _post(client, ada, body)
    assert second.status_code == 202 and second.json()["id"] != render_id
    second_id = second.json()["id"]

    # Succeeded and kept: shared; its video deleted: a new render.
    def finish(expires_at: datetime) -> None:
        with transaction_scope(database) as session:
            session.execute(
                update(Render)
                .where(Render.id == uuid.UUID(second_id))
                .values(
                    status="succeeded",
                    output_key=keys.output(second_id, "mp4"),
                    expires_at=expires_at,
                )
            )

    finish(datetime.now(UTC) + timedelta(days=1))
    kept = _post(client, ada, body)
    assert kept.status_code == 200 and kept.headers["notefall-duplicate-of"] == second_id
    finish(datetime.now(UTC) - timedelta(seconds=1))
    fresh = _post(client, ada, body)
    assert fresh.status_code == 202 and fresh.json()["id"] not in (render_id, second_id)

    # The same song with other settings, or another recording, is another render.
    assert len(_rows(database, Render)) == 3


def test_the_same_song_in_another_project_gets_its_own_render(
    client: TestClient, ada: dict, database: Database
):
    first_project = project_with_midi(client, ada)
    first = _post(client, ada, {"project_id": first_project, "settings": FAST_SETTINGS})
    assert first.status_code == 202
    with transaction_scope(database) as session:
        session.execute(
            update(Render)
            .where(Render.id == uuid.UUID(first.json()["id"]))
            .values(
                status="succeeded",
                output_key=keys.output(first.json()["id"], "mp4"),
                expires_at=datetime.now(UTC) + timedelta(days=1),
            )
        )
    twin_project = project_with_midi(client, ada)  # the same MIDI file, the same settings
    twin = _post(client, ada, {"project_id": twin_project, "settings": FAST_SETTINGS})
    assert twin.status_code == 202, twin.text
    assert "notefall-duplicate-of" not in twin.headers
    assert twin.json()["project_id"] == twin_project


def test_a_submit_succeeds_while_redis_is_down_and_leaves_the_step_pending(
    tmp_path: Path, migrated_url: str
):
    with RedisServer(tmp_path / "redis", persistent=False) as server:
        settings = make_settings(
            tmp_path / "data", migrated_url, redis_url=server.url, rate_limit_scale=1000.0
        )
        with TestClient(create_app(settings)) as client:
            ada = signed_in_headers(client, settings, "ada@example.com")
            project_id = project_with_midi(client, ada)
            server.stop()
            started = time.monotonic()
            response = _post(client, ada, {"project_id": project_id, "settings": FAST_SETTINGS})
            elapsed = time.monotonic() - started
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    # Refused connections fail at once: the submit does not wait on retries.
    assert elapsed < 3.0
    database = Database(settings.database_url)
    try:
        [step] = _rows(database, RenderStep)
        assert step.status == "pending" and step.enqueued_at is not None
    finally:
        database.dispose()


def test_a_submit_whose_transaction_rolls_back_publishes_nothing_and_leaves_no_copies(
    client: TestClient, settings: Settings, ada: dict, database: Database
):
    """The service inside a transaction that fails after it returned (as a request failing
    later would): the step's message and the state event are never sent, the input
    copies are deleted again, and no row is left."""
    project_id = project_with_midi(client, ada)
    storage = storage_from_settings(settings, clock=utcnow)
    client_redis = redis.Redis.from_url(str(settings.redis_url))
    files_before = _files(settings)
    try:
        with (
            pytest.raises(RuntimeError, match="later failure"),
            transaction_scope(database) as session,
        ):
            user = session.scalars(select(User)).one()
            service = RenderService(session, storage, settings, client_redis)
            submitted = service.submit(user, uuid.UUID(project_id), FAST_SETTINGS)
            render_id = submitted.render.id
            assert _stored(settings, keys.input_midi(render_id)).exists()
            raise RuntimeError("later failure")
        assert client_redis.exists(keys.events(render_id)) == 0
    finally:
        client_redis.close()
    assert _queued_task_ids(str(settings.redis_url), "render.free") == []
    assert _rows(database, Render) == [] and _rows(database, RenderStep) == []
    assert _files(settings) == files_before
