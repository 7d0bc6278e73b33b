"""WebSocket /api/v1/renders/{id}/events: snapshot, live events, resume, clean close, auth.

Renders are written straight into the database (the row is what the snapshot reads) and
events are published with events.publish, as workers do, to the test's real Redis.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
import redis
from notefall.server.accounts.models import User
from notefall.server.kit.db import Database, transaction_scope
from notefall.server.kit.models import utcnow
from notefall.server.kit.redis_server import free_port
from notefall.server.kit.settings import Settings
from notefall.server.renders import events, queues, steps, websocket
from notefall.server.renders.models import Render
from notefall.server.renders.states import RenderStatus, StepName
from sqlalchemy import select
from starlette.websockets import WebSocketDisconnect

from .conftest import TestClient, create_app, make_settings, signed_in_headers
from .test_browser_session import browser, browser_sign_in  # noqa: F401  (fixture)


def user_id_of(settings: Settings, email: str) -> uuid.UUID:
    database = Database(settings.database_url)
    try:
        with database.sessions() as session:
            return session.scalars(select(User.id).where(User.email == email)).one()
    finally:
        database.dispose()


def create_render(
    settings: Settings,
    owner_id: uuid.UUID,
    *,
    status: RenderStatus = RenderStatus.QUEUED,
    queue: str = queues.queue_for("free"),
    age_seconds: float = 0.0,
    step_enqueued_seconds_ago: float | None = None,
    **fields: Any,
) -> uuid.UUID:
    """A render row (and its pending prepare step, published ``step_enqueued_seconds_ago``)
    written the way the submit service writes it, without the message."""
    database = Database(settings.database_url)
    now = utcnow()
    try:
        with transaction_scope(database) as session:
            render = Render(
                owner_id=owner_id,
                project_name="Clair de lune",
                status=status.value,
                tier="free",
                queue=queue,
                settings={"resolution": "256x144", "fps": 24, "preset": "draft"},
                fingerprint="f" * 64,
                midi_sha256="m" * 64,
                input_midi_key="renders/x/input.mid",
                period=now.strftime("%Y-%m"),
                created_at=now - timedelta(seconds=age_seconds),
                **fields,
            )
            session.add(render)
            session.flush()
            if step_enqueued_seconds_ago is not None:
                step = steps.add_step(session, render, StepName.PREPARE)
                step.enqueued_at = now - timedelta(seconds=step_enqueued_seconds_ago)
            return render.id
    finally:
        database.dispose()


@pytest.fixture
def owner(client: TestClient, settings: Settings) -> tuple[dict[str, str], uuid.UUID]:
    headers = signed_in_headers(client, settings, "pianist@example.com")
    return headers, user_id_of(settings, "pianist@example.com")


@pytest.fixture
def redis_client(settings: Settings):
    client = redis.Redis.from_url(str(settings.redis_url))
    yield client
    client.close()


def events_url(render_id: uuid.UUID, **query: str) -> str:
    suffix = "&".join(f"{k}={v}" for k, v in query.items())
    return f"/api/v1/renders/{render_id}/events" + (f"?{suffix}" if suffix else "")


def close_of(client: TestClient, url: str, headers: dict[str, str]) -> WebSocketDisconnect:
    """How the server closed a socket that got no message (a refused one)."""
    with (
        client.websocket_connect(url, headers=headers) as socket,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        socket.receive_json()
    return closed.value


def test_snapshot_first_then_live_events_until_the_render_ends(
    client: TestClient, settings: Settings, owner, redis_client
):
    headers, owner_id = owner
    render_id = create_render(
        settings,
        owner_id,
        status=RenderStatus.RUNNING,
        stage="rendering",
        percent=12.5,
        segment_count=4,
        segments_done=1,
    )
    first = events.publish(redis_client, render_id, "state", status="running", stage="preparing")
    with client.websocket_connect(events_url(render_id), headers=headers) as socket:
        snapshot = socket.receive_json()
        assert snapshot["type"] == "snapshot"
        assert snapshot["id"] == first  # the last event at that moment: resume after it
        assert snapshot["status"] == "running" and snapshot["stage"] == "rendering"
        assert snapshot["percent"] == 12.5 and snapshot["eta_seconds"] is None
        assert snapshot["segments"] == {"done": 1, "total": 4}
        assert snapshot["output"] is None and snapshot["error"] is None

        progress = events.publish(
            redis_client,
            render_id,
            "progress",
            status="running",
            stage="rendering",
            percent=40.0,
            eta_seconds=12,
        )
        live = socket.receive_json()
        assert live["id"] == progress and live["type"] == "progress"
        assert live["percent"] == 40.0 and live["eta_seconds"] == 12.0
        assert live["error_code"] is None

        events.publish(
            redis_client,
            render_id,
            "state",
            status="failed",
            message="The MIDI file has no notes; add some and submit again.",
            error_code="empty_song",
        )
        final = socket.receive_json()
        assert final["status"] == "failed" and final["error_code"] == "empty_song"
        assert "submit again" in final["message"]
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()
    assert closed.value.code == 1000


def test_a_reconnecting_client_receives_only_the_events_after_the_last_it_saw(
    client: TestClient, settings: Settings, owner, redis_client
):
    headers, owner_id = owner
    render_id = create_render(settings, owner_id, status=RenderStatus.RUNNING, stage="rendering")
    seen = events.publish(redis_client, render_id, "progress", status="running", percent=10.0)
    missed = [
        events.publish(redis_client, render_id, "progress", status="running", percent=p)
        for p in (20.0, 30.0)
    ]
    url = events_url(render_id, last_event_id=str(seen))
    with client.websocket_connect(url, headers=headers) as socket:
        assert socket.receive_json()["type"] == "snapshot"
        replayed = [socket.receive_json() for _ in missed]
        assert [m["id"] for m in replayed] == missed
        assert [m["percent"] for m in replayed] == [20.0, 30.0]
        done = events.publish(redis_client, render_id, "state", status="succeeded", percent=100.0)
        assert socket.receive_json()["id"] == done
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()
    assert closed.value.code == 1000


def test_a_finished_render_gets_its_snapshot_and_a_clean_close(
    client: TestClient, settings: Settings, owner
):
    headers, owner_id = owner
    render_id = create_render(
        settings,
        owner_id,
        status=RenderStatus.SUCCEEDED,
        percent=100.0,
        output_duration=3.0,
        output_bytes=12345,
        output_codec="h264",
        width=256,
        height=144,
        fps=24,
        format="mp4",
    )
    with client.websocket_connect(events_url(render_id), headers=headers) as socket:
        snapshot = socket.receive_json()
        assert snapshot["status"] == "succeeded"
        assert snapshot["id"] == "0-0"  # no event was ever published
        assert snapshot["output"]["bytes"] == 12345 and snapshot["output"]["codec"] == "h264"
        assert snapshot["output"]["download"] == f"/api/v1/renders/{render_id}/download"
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()
    assert closed.value.code == 1000


def test_without_credentials_the_socket_closes_with_4401(
    client: TestClient, settings: Settings, owner
):
    _headers, owner_id = owner
    render_id = create_render(settings, owner_id)
    for url, headers in [
        (events_url(render_id), {}),
        (events_url(render_id), {"Authorization": "Bearer not-a-token"}),
        (events_url(render_id, access_token="not-a-token"), {}),
    ]:
        closed = close_of(client, url, headers)
        assert closed.code == 4401
        assert "Bearer" in closed.reason


def test_someone_elses_or_a_missing_render_closes_with_4404(
    client: TestClient, settings: Settings, owner
):
    _headers, owner_id = owner
    render_id = create_render(settings, owner_id)
    stranger = signed_in_headers(client, settings, "stranger@example.com")
    for target in (render_id, uuid.uuid4()):
        closed = close_of(client, events_url(target), stranger)
        assert closed.code == 4404
        assert "no render with this id" in closed.reason


def test_the_access_token_query_parameter_authenticates(
    client: TestClient, settings: Settings, owner
):
    headers, owner_id = owner
    render_id = create_render(settings, owner_id, status=RenderStatus.CANCELLED)
    token = headers["Authorization"].removeprefix("Bearer ")
    with client.websocket_connect(events_url(render_id, access_token=token)) as socket:
        assert socket.receive_json()["status"] == "cancelled"


def test_the_browser_sign_in_cookie_authenticates_but_not_from_another_site(
    browser: TestClient,  # noqa: F811
    settings: Settings,
):
    signed_in_headers(browser, settings, "listener@example.com")
    assert browser_sign_in(browser, "listener@example.com").status_code == 303
    cookie = {"cookie": f"notefall_session={browser.cookies['notefall_session']}"}
    render_id = create_render(
        settings,
        user_id_of(settings, "listener@example.com"),
        status=RenderStatus.DEAD,
        error_code="render_dead",
        error_message="Set aside for our operators.",
    )
    with browser.websocket_connect(events_url(render_id), headers=cookie) as socket:
        snapshot = socket.receive_json()
        assert snapshot["status"] == "dead"
        assert snapshot["error"] == {
            "code": "render_dead",
            "message": "Set aside for our operators.",
        }
    other_site = {**cookie, "origin": "https://evil.example"}
    assert close_of(browser, events_url(render_id), other_site).code == 4401


def test_without_redis_the_render_is_watched_from_the_database(
    tmp_path, migrated_url: str, redis_url: str
):
    # The app whose Redis is down; accounts are made through a working app on the same database.
    working = make_settings(tmp_path / "a", migrated_url, redis_url=redis_url)
    down = make_settings(
        tmp_path / "b", migrated_url, redis_url=f"redis://127.0.0.1:{free_port()}/0"
    )
    with TestClient(create_app(working)) as up_client:
        headers = signed_in_headers(up_client, working, "offline@example.com")
    render_id = create_render(
        working, user_id_of(working, "offline@example.com"), status=RenderStatus.RUNNING
    )
    database = Database(migrated_url)
    with (
        TestClient(create_app(down)) as client,
        client.websocket_connect(events_url(render_id), headers=headers) as socket,
    ):
        snapshot = socket.receive_json()
        assert snapshot["status"] == "running" and snapshot["id"] is None
        with transaction_scope(database) as session:
            row = session.get(Render, render_id)
            assert row is not None
            row.percent = 55.0
        assert socket.receive_json()["percent"] == 55.0
        with transaction_scope(database) as session:
            row = session.get(Render, render_id)
            assert row is not None
            row.status = RenderStatus.SUCCEEDED.value
        assert socket.receive_json()["status"] == "succeeded"
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()
    database.dispose()
    assert closed.value.code == 1000


def test_a_quiet_render_gets_pings_and_ends_even_if_its_final_event_was_lost(
    client: TestClient, settings: Settings, owner, monkeypatch: pytest.MonkeyPatch
):
    # Shorter waits than production's 15 s, so the test does not idle.
    monkeypatch.setattr(websocket, "KEEPALIVE_SECONDS", 0.4)
    monkeypatch.setattr(websocket, "BLOCK_MILLISECONDS", 200)
    headers, owner_id = owner
    render_id = create_render(settings, owner_id, status=RenderStatus.RUNNING, stage="joining")
    database = Database(settings.database_url)
    with client.websocket_connect(events_url(render_id), headers=headers) as socket:
        snapshot = socket.receive_json()
        ping = socket.receive_json()
        assert ping == {"id": snapshot["id"], "type": "ping"}
        # The render ends, but Redis never got its final event (say, it restarted empty).
        with transaction_scope(database) as session:
            row = session.get(Render, render_id)
            assert row is not None
            row.status = RenderStatus.SUCCEEDED.value
        final = socket.receive_json()
        while final["type"] == "ping":
            final = socket.receive_json()
        assert final["type"] == "snapshot" and final["status"] == "succeeded"
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()
    database.dispose()
    assert closed.value.code == 1000
