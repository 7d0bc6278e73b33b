"""Renders after submit, on every backend with a real Redis: listing and history, one
render, cancelling, downloads through signed links, who may see what (everyone else gets
the 404 of a missing render), and deleting an account with its renders' files."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
import pytest
import redis
from notefall.server.accounts.models import User
from notefall.server.kit.db import Database, transaction_scope
from notefall.server.kit.settings import Settings
from notefall.server.renders import keys, metrics
from notefall.server.renders.models import Render, RenderStep
from sqlalchemy import select, update

from tests.support.render_farm import (
    FAST_SETTINGS,
    project_with_midi,
    submit_render,
    tiny_midi,
    wait_for_status,
)

from .conftest import TestClient, signed_in_headers
from .test_app import assert_problem

RENDERS = "/api/v1/renders"
PROJECTS = "/api/v1/projects"
PASSWORD = "falling notes over a grand piano"  # signed_in_headers' password


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    db = Database(settings.database_url)
    yield db
    db.dispose()


@pytest.fixture
def ada(client: TestClient, settings: Settings) -> dict[str, str]:
    return signed_in_headers(client, settings, "ada@example.com")


@pytest.fixture
def bob(client: TestClient, settings: Settings) -> dict[str, str]:
    return signed_in_headers(client, settings, "bob@example.com")


def _set(database: Database, render_id: str, **values: object) -> None:
    with transaction_scope(database) as session:
        session.execute(update(Render).where(Render.id == uuid.UUID(render_id)).values(**values))


def _row(database: Database, render_id: str) -> Render:
    with transaction_scope(database) as session:
        render = session.get(Render, uuid.UUID(render_id))
        assert render is not None
        return render


def _pro(database: Database, email: str) -> None:
    with transaction_scope(database) as session:
        session.execute(update(User).where(User.email == email).values(tier="enterprise"))


def _succeed(client: TestClient, database: Database, render_id: str, video: bytes) -> None:
    """Finish a render as a worker's finalize would: the video and a still in storage."""
    storage = client.app.state.storage  # type: ignore[attr-defined]
    storage.put(keys.output(render_id, "mp4"), video)
    storage.put(keys.thumbnail(render_id), b"\xff\xd8a still\xff\xd9")
    now = datetime.now(UTC)
    _set(
        database,
        render_id,
        status="succeeded",
        stage=None,
        percent=100.0,
        started_at=now - timedelta(seconds=5),
        finished_at=now,
        output_key=keys.output(render_id, "mp4"),
        thumbnail_key=keys.thumbnail(render_id),
        output_bytes=len(video),
        output_duration=4.5,
        output_codec="h264",
        width=256,
        height=144,
        fps=24,
        format="mp4",
        segment_count=1,
        segments_done=1,
        expires_at=now + timedelta(days=7),
    )


def _follow(client: TestClient, response: httpx.Response) -> httpx.Response:
    """GET the signed link a redirect points at (the link names the public URL's host)."""
    assert response.status_code == 307, response.text
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}" == "http://notefall.test"
    return client.get(f"{location.path}?{location.query}")


def test_your_renders_newest_first_with_filters_and_pages(
    client: TestClient, ada: dict, bob: dict, database: Database
):
    _pro(database, "ada@example.com")
    first = project_with_midi(client, ada, name="First")
    second = project_with_midi(client, ada, tiny_midi(pitch=70), name="Second")
    made = [
        submit_render(client, ada, first, {**FAST_SETTINGS, "fps": fps})["id"] for fps in (24, 25)
    ]
    made.append(submit_render(client, ada, second)["id"])
    project_with_midi(client, bob, name="Bob's")
    submit_render(client, bob, project_with_midi(client, bob))
    _set(database, made[0], status="failed", error_code="unreadable_midi", error_message="x")

    page = client.get(RENDERS, headers=ada).json()
    assert [r["id"] for r in page["items"]] == made[::-1]
    assert (page["total"], page["limit"], page["offset"]) == (3, 20, 0)
    assert page["items"][0]["project_name"] == "Second"
    assert page["items"][2]["error"] == {"code": "unreadable_midi", "message": "x"}

    mine = client.get(RENDERS, params={"project_id": first}, headers=ada).json()
    assert [r["id"] for r in mine["items"]] == made[1::-1]
    queued = client.get(RENDERS, params={"status": "queued"}, headers=ada).json()
    assert [r["id"] for r in queued["items"]] == made[:0:-1]
    both = client.get(RENDERS, params=[("status", "queued"), ("status", "failed")], headers=ada)
    assert both.json()["total"] == 3
    paged = client.get(RENDERS, params={"limit": 2, "offset": 2}, headers=ada).json()
    assert [r["id"] for r in paged["items"]] == [made[0]] and paged["total"] == 3
    assert_problem(
        client.get(RENDERS, params={"status": "done"}, headers=ada), 422, "invalid_request"
    )
    assert_problem(client.get(RENDERS, params={"limit": 101}, headers=ada), 422, "invalid_request")


def test_a_projects_history_shows_its_owner_everyones_renders_and_an_editor_their_own(
    client: TestClient, settings: Settings, ada: dict, bob: dict, database: Database
):
    carol = signed_in_headers(client, settings, "carol@example.com")
    dave = signed_in_headers(client, settings, "dave@example.com")
    project_id = project_with_midi(client, ada, name="Shared")
    for email, role in [("bob@example.com", "editor"), ("carol@example.com", "viewer")]:
        invite = {"email": email, "role": role}
        response = client.post(f"{PROJECTS}/{project_id}/collaborators", json=invite, headers=ada)
        assert response.status_code == 201, response.text

    ada_render = submit_render(client, ada, project_id)
    # An editor renders it as their own: their plan, their quota, their render.
    bob_render = submit_render(client, bob, project_id, {**FAST_SETTINGS, "fps": 30})
    assert client.get(f"{RENDERS}/{bob_render['id']}", headers=bob).status_code == 200
    assert [r["id"] for r in client.get(RENDERS, headers=bob).json()["items"]] == [bob_render["id"]]
    assert_problem(client.get(f"{RENDERS}/{bob_render['id']}", headers=ada), 404, "not_found")
    with transaction_scope(database) as session:
        owners = {str(r.id): r.owner_id for r in session.scalars(select(Render))}
    assert owners[bob_render["id"]] != owners[ada_render["id"]]

    # A viewer may not render it; a stranger is told there is no such project.
    body = {"project_id": project_id, "settings": FAST_SETTINGS}
    problem = assert_problem(
        client.post(RENDERS, json=body, headers=carol), 403, "forbidden_for_role"
    )
    assert "As a viewer of this project you cannot render it" in problem["detail"]
    missing = {"project_id": str(uuid.uuid4()), "settings": FAST_SETTINGS}
    stranger = assert_problem(client.post(RENDERS, json=body, headers=dave), 404, "not_found")
    nothing = assert_problem(client.post(RENDERS, json=missing, headers=dave), 404, "not_found")
    assert stranger["detail"] == nothing["detail"]

    history = f"{PROJECTS}/{project_id}/renders"
    owner_view = client.get(history, headers=ada).json()
    assert [r["id"] for r in owner_view["items"]] == [bob_render["id"], ada_render["id"]]
    # Bob's render is listed for Ada, but its events and files are Bob's alone.
    links = {r["id"]: r["links"] for r in owner_view["items"]}
    assert links[bob_render["id"]]["events"] is None
    assert links[ada_render["id"]]["events"] == f"{RENDERS}/{ada_render['id']}/events"
    assert [r["id"] for r in client.get(history, headers=bob).json()["items"]] == [bob_render["id"]]
    assert client.get(history, headers=carol).json()["items"] == []
    assert_problem(client.get(history, headers=dave), 404, "not_found")
    queued = client.get(history, params={"status": "succeeded"}, headers=ada).json()
    assert queued["total"] == 0

    # History outlives the project: the name stays, the link goes.
    assert client.delete(f"{PROJECTS}/{project_id}", headers=ada).status_code == 204
    kept = client.get(f"{RENDERS}/{ada_render['id']}", headers=ada).json()
    assert kept["project_id"] is None and kept["project_name"] == "Shared"


def test_cancelling_a_queued_render_ends_it_at_once_and_raises_the_flag_for_workers(
    client: TestClient, settings: Settings, ada: dict, database: Database
):
    project_id = project_with_midi(client, ada)
    render = submit_render(client, ada, project_id)
    response = client.post(f"{RENDERS}/{render['id']}/cancel", headers=ada)
    assert response.status_code == 200, response.text
    cancelled = response.json()
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"] is not None
    assert cancelled["error"] == {
        "code": "cancelled",
        "message": "You cancelled this render; nothing was charged.",
    }
    assert wait_for_status(client, ada, render["id"], "cancelled", timeout=1) == cancelled
    row = _row(database, render["id"])
    assert row.cancel_requested_at is not None
    with transaction_scope(database) as session:
        step_states = list(session.scalars(select(RenderStep.status)))
    assert step_states == ["failed"]  # no worker will take the prepare step now

    client_redis = redis.Redis.from_url(str(settings.redis_url), decode_responses=True)
    try:
        flag = keys.cancel_flag(render["id"])
        assert client_redis.get(flag) == "1"
        assert 24 * 3600 - 60 < client_redis.ttl(flag) <= 24 * 3600
        events = [f for _, f in client_redis.xrange(keys.events(render["id"]))]
        counted = client_redis.hgetall(metrics.OUTCOMES_KEY)
    finally:
        client_redis.close()
    assert [(e["type"], e["status"]) for e in events] == [
        ("state", "queued"),
        ("state", "cancelled"),
    ]
    assert counted == {"cancelled": "1"}  # notefall_renders_total{outcome="cancelled"}
    assert events[-1]["error_code"] == "cancelled"

    # Again: the same answer, nothing new.
    again = client.post(f"{RENDERS}/{render['id']}/cancel", headers=ada)
    assert again.status_code == 200 and again.json() == cancelled
    # The slot is free again: another render is accepted.
    assert (
        submit_render(client, ada, project_id, {**FAST_SETTINGS, "fps": 30})["id"] != render["id"]
    )


def test_cancelling_a_running_render_fails_its_running_steps_too(
    client: TestClient, ada: dict, database: Database
):
    render = submit_render(client, ada, project_with_midi(client, ada))
    _set(database, render["id"], status="running", stage="rendering", percent=40.0)
    with transaction_scope(database) as session:
        session.execute(update(RenderStep).values(status="running", lease="a" * 32))
    cancelled = client.post(f"{RENDERS}/{render['id']}/cancel", headers=ada).json()
    assert cancelled["status"] == "cancelled" and cancelled["eta_seconds"] is None
    with transaction_scope(database) as session:
        assert [(s.status, s.lease) for s in session.scalars(select(RenderStep))] == [
            ("failed", None)
        ]


@pytest.mark.parametrize(
    ("status", "words"),
    [
        ("succeeded", "This render already succeeded, so there is nothing to cancel; download it"),
        ("failed", "This render already failed, so there is nothing to cancel; submit it again"),
        ("dead", "already failed again and again and was set aside"),
    ],
)
def test_a_finished_render_cannot_be_cancelled(
    client: TestClient, ada: dict, database: Database, status: str, words: str
):
    render = submit_render(client, ada, project_with_midi(client, ada))
    _set(database, render["id"], status=status)
    problem = assert_problem(
        client.post(f"{RENDERS}/{render['id']}/cancel", headers=ada), 409, "render_finished"
    )
    assert words in problem["detail"]
    assert _row(database, render["id"]).status == status


def test_a_succeeded_render_downloads_through_a_signed_link_under_the_projects_name(
    client: TestClient, ada: dict, database: Database
):
    project_id = project_with_midi(client, ada, name="Clair de lune")
    render = submit_render(client, ada, project_id)
    _succeed(client, database, render["id"], b"\x00\x00\x00 ftyp a tiny video")

    got = client.get(f"{RENDERS}/{render['id']}", headers=ada).json()
    assert got["status"] == "succeeded" and got["segments"] == {"done": 1, "total": 1}
    assert got["output"] == {
        "duration": 4.5,
        "bytes": len(b"\x00\x00\x00 ftyp a tiny video"),
        "codec": "h264",
        "width": 256,
        "height": 144,
        "fps": 24,
        "format": "mp4",
    }
    assert got["links"]["download"] == f"{RENDERS}/{render['id']}/download"
    assert got["links"]["thumbnail"] == f"{RENDERS}/{render['id']}/thumbnail"

    redirect = client.get(got["links"]["download"], headers=ada, follow_redirects=False)
    assert "expires=" in redirect.headers["location"]
    video = _follow(client, redirect)
    assert video.status_code == 200 and video.content == b"\x00\x00\x00 ftyp a tiny video"
    disposition = unquote(video.headers["content-disposition"])
    assert "Clair de lune.mp4" in disposition and disposition.startswith("attachment;")
    still = _follow(
        client, client.get(got["links"]["thumbnail"], headers=ada, follow_redirects=False)
    )
    assert still.content == b"\xff\xd8a still\xff\xd9"

    # Once the plan's retention is over, the video is gone: 410, and no links.
    _set(database, render["id"], expires_at=datetime.now(UTC) - timedelta(minutes=1))
    problem = assert_problem(
        client.get(got["links"]["download"], headers=ada), 410, "render_expired"
    )
    assert "was deleted on" in problem["detail"] and "submit the render again" in problem["detail"]
    assert_problem(client.get(got["links"]["thumbnail"], headers=ada), 410, "render_expired")
    links = client.get(f"{RENDERS}/{render['id']}", headers=ada).json()["links"]
    assert (links["download"], links["thumbnail"]) == (None, None)
    # Purged from storage before its row says so: still 410, never a broken link.
    _set(database, render["id"], expires_at=datetime.now(UTC) + timedelta(days=1))
    client.app.state.storage.delete(keys.output(render["id"], "mp4"))  # type: ignore[attr-defined]
    assert_problem(client.get(got["links"]["download"], headers=ada), 410, "render_expired")


def test_a_render_without_a_video_is_not_downloadable(
    client: TestClient, ada: dict, database: Database
):
    render = submit_render(client, ada, project_with_midi(client, ada))
    for route in ("download", "thumbnail"):
        problem = assert_problem(
            client.get(f"{RENDERS}/{render['id']}/{route}", headers=ada), 409, "render_not_ready"
        )
        assert "This render is queued (0% done)" in problem["detail"]
    client.post(f"{RENDERS}/{render['id']}/cancel", headers=ada)
    problem = assert_problem(
        client.get(f"{RENDERS}/{render['id']}/download", headers=ada), 409, "render_has_no_video"
    )
    assert "This render was cancelled, so it has no video; submit it again" in problem["detail"]


def test_other_users_get_the_404_of_a_missing_render_everywhere(
    client: TestClient, ada: dict, bob: dict, database: Database
):
    project_id = project_with_midi(client, ada)
    render = submit_render(client, ada, project_id)
    _succeed(client, database, render["id"], b"video")
    missing_id = str(uuid.uuid4())
    for method, route in [
        ("GET", ""),
        ("POST", "/cancel"),
        ("GET", "/download"),
        ("GET", "/thumbnail"),
    ]:
        theirs = assert_problem(
            client.request(method, f"{RENDERS}/{render['id']}{route}", headers=bob),
            404,
            "not_found",
        )
        missing = assert_problem(
            client.request(method, f"{RENDERS}/{missing_id}{route}", headers=bob), 404, "not_found"
        )
        assert theirs["detail"] == missing["detail"] == "You have no render with this id."
    assert client.get(RENDERS, headers=bob).json()["total"] == 0
    assert_problem(client.get(f"{PROJECTS}/{project_id}/renders", headers=bob), 404, "not_found")
    assert _row(database, render["id"]).status == "succeeded"


def _stored(settings: Settings) -> set[str]:
    root = settings.data_dir / "storage"
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_deleting_an_account_deletes_its_renders_and_their_files(
    client: TestClient, settings: Settings, ada: dict, bob: dict, database: Database
):
    _pro(database, "ada@example.com")
    project_id = project_with_midi(client, ada)
    done = submit_render(client, ada, project_id)
    _succeed(client, database, done["id"], b"video")
    unfinished = submit_render(client, ada, project_id, {**FAST_SETTINGS, "fps": 30})
    storage = client.app.state.storage  # type: ignore[attr-defined]
    # A worker's intermediate files of the unfinished render.
    storage.put(keys.prepared_audio(unfinished["id"], 1), b"wav")
    segment = keys.segment(unfinished["id"], 1, 0, "mp4")
    storage.put(segment, b"segment")
    with transaction_scope(database) as session:
        session.execute(
            update(RenderStep)
            .where(RenderStep.render_id == uuid.UUID(unfinished["id"]))
            .values(output_key=segment)
        )
    bob_render = submit_render(client, bob, project_with_midi(client, bob))
    assert any(unfinished["id"] in key for key in _stored(settings))

    response = client.request("DELETE", "/api/v1/me", json={"password": PASSWORD}, headers=ada)
    assert response.status_code == 204, response.text
    left = _stored(settings)
    assert not [key for key in left if done["id"] in key or unfinished["id"] in key]
    assert any(bob_render["id"] in key for key in left)
    with transaction_scope(database) as session:
        assert [str(r.id) for r in session.scalars(select(Render))] == [bob_render["id"]]


def test_the_render_folder_names_every_file_of_a_render(tmp_path: Path):
    render_id = uuid.uuid4()
    folder = keys.render_folder(render_id)
    for key in (
        keys.input_midi(render_id),
        keys.input_audio(render_id),
        keys.output(render_id, "mp4"),
        keys.thumbnail(render_id),
        keys.prepared_audio(render_id, 2),
    ):
        assert key.startswith(folder)


def test_a_cancel_waits_for_a_writer_that_holds_the_database(
    client: TestClient, ada: dict, database: Database
):
    """Another writer (a worker's step) holds the write lock while the cancel arrives: the
    cancel waits for it instead of failing (SQLite refuses a reading transaction that wants
    to write then; the service starts its transaction again)."""
    render = submit_render(client, ada, project_with_midi(client, ada))
    holding = threading.Event()
    answers: list[httpx.Response] = []

    with database.engine.connect() as connection:
        writer = connection.begin()
        connection.execute(
            update(Render)
            .where(Render.id == uuid.UUID(render["id"]))
            .values(heartbeat_at=datetime.now(UTC))
        )
        connection.execute(update(User).values(name=User.name))
        holding.set()

        def cancel() -> None:
            answers.append(client.post(f"{RENDERS}/{render['id']}/cancel", headers=ada))

        thread = threading.Thread(target=cancel)
        thread.start()
        # Let the cancel read and reach its first write while the lock is held.
        thread.join(0.5)
        writer.commit()
    thread.join(30)
    assert holding.is_set() and len(answers) == 1
    assert answers[0].status_code == 200, answers[0].text
    assert answers[0].json()["status"] == "cancelled"
