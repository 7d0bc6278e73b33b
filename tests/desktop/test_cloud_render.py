"""One cloud render end to end: a local project goes up to a real server, a real worker
renders it, the desktop follows it over the WebSocket, downloads the video and the tray
tells the user. Also: a submit that could not reach the server is retried with the same
Idempotency-Key and makes one render, not two."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from notefall.common.settings import RenderSettings
from notefall.common.video.ffmpeg import probe
from notefall.desktop.cloud.api import CloudClient
from notefall.desktop.cloud.cloud_panel import CloudPanel
from notefall.desktop.cloud.links import ProjectLinks
from notefall.desktop.cloud.renders import CloudRenders
from notefall.desktop.cloud.session import CloudSession
from notefall.desktop.cloud.tokens import FileTokenStore, Tokens
from notefall.desktop.cloud.watcher import RenderWatcher
from notefall.desktop.project import LocalProject
from notefall.desktop.tray import Tray
from PySide6.QtCore import QUrl

from tests.desktop.cloud_server import PASSWORD, CloudServer, CuttableProxy, running_cloud_server
from tests.support.render_farm import FAST_SETTINGS, tiny_midi

pytestmark = pytest.mark.xdist_group("desktop-cloud")

# Bounds for waiting on a real worker (not speed assertions).
RENDER_WAIT_MS = 240_000


@pytest.fixture
def server(tmp_path: Path) -> Iterator[CloudServer]:
    with running_cloud_server(tmp_path / "server") as running:
        running.sign_up("ada@example.com")
        yield running


@pytest.fixture
def session(server: CloudServer, desktop_env: Path, tmp_path: Path) -> CloudSession:
    store = FileTokenStore(desktop_env)
    cloud = CloudSession(server.url, desktop_env, tmp_path / "downloads", store=store)
    cloud.client.sign_in_with_password("ada@example.com", PASSWORD)
    return cloud


@pytest.fixture
def project(tmp_path: Path) -> LocalProject:
    midi = tmp_path / "Tiny song.mid"
    midi.write_bytes(tiny_midi(3.0))
    fast = RenderSettings(resolution="256x144", fps=24, preset="draft")
    return LocalProject.create(tmp_path / "library", midi, name="Tiny song", settings=fast)


def test_a_cloud_render_finishes_downloads_and_notifies_from_the_tray(
    qtbot,
    server: CloudServer,
    session: CloudSession,
    project: LocalProject,
    tmp_path: Path,
    screenshot,
):
    server.start_worker()
    renders = CloudRenders(session)
    opened: list[QUrl] = []
    tray = Tray(renders=renders, open_url=opened.append, tray_available=False)
    states: list[str] = []
    tray.state_changed.connect(states.append)
    seen: list[tuple[str, float]] = []
    renders.progress.connect(lambda job: seen.append((job.status, job.percent)))
    panel = CloudPanel(session, renders, tmp_path / "library")
    qtbot.addWidget(panel)
    panel.resize(640, 420)
    panel.show()
    panel.tabs.setCurrentIndex(1)
    shown: list[str] = []

    def row_status(job: object) -> None:
        if panel.render_list.topLevelItemCount():
            shown.append(panel.render_list.topLevelItem(0).text(1))

    renders.progress.connect(row_status)

    with qtbot.waitSignal(tray.notified, timeout=RENDER_WAIT_MS) as notified:
        job = renders.submit(project)
        qtbot.waitUntil(lambda: job.render_id is not None or bool(job.error), timeout=60_000)
        assert job.render_id, job.error
        assert renders.has_active()
        # The window may be closed now: with a tray, it would hide instead of quitting.
        assert Tray(renders=renders, tray_available=True).should_hide_on_close()
    message = notified.args[0]

    assert not message.failed, message.text
    assert message.title == "Video ready" and "Tiny song" in message.text
    assert job.status == "succeeded" and job.output is not None
    assert job.output.parent == tmp_path / "downloads"
    assert tray.messages == [message] and tray.recent[0] is message
    assert states[0] == "rendering" and states[-1] == "idle"
    # Progress came over the WebSocket: running states with a percent that only grows.
    running = [percent for status, percent in seen if status == "running"]
    assert running and running == sorted(running)
    assert not renders.has_active()

    video = probe(job.output)
    assert (video.width, video.height) == (256, 144)
    assert video.video_codec == "h264" and video.audio_codec is not None
    assert video.duration is not None and video.duration > 2

    # Clicking the notification opens the video in the user's player.
    tray.open_message(message)
    assert opened == [QUrl.fromLocalFile(str(job.output))]
    # The cloud copy of the project is linked: a second submit updates it, no new project.
    projects = session.client.projects()
    assert [p["name"] for p in projects] == ["Tiny song"]
    assert projects[0]["song"]["note_count"] > 0

    # The cloud panel showed the live progress in the render's row, then it is ready in the
    # history and can be downloaded again.
    assert any(text.startswith("Rendering ") for text in shown), shown
    qtbot.waitUntil(
        lambda: (
            panel.render_list.topLevelItemCount() == 1
            and "KB" in panel.render_list.topLevelItem(0).text(3)  # the history's own answer
        ),
        timeout=20_000,
    )
    row = panel.render_list.topLevelItem(0)
    assert row.text(1) == "Ready" and row.text(2) == "256×144" and "KB" in row.text(3)
    panel.render_list.setCurrentItem(row)
    assert panel.download_button.isEnabled()
    qtbot.wait(50)
    screenshot(panel, "cloud-history")
    with qtbot.waitSignal(renders.finished, timeout=60_000) as again:
        panel.download_button.click()
    second = again.args[0].output
    assert second != job.output and second.read_bytes() == job.output.read_bytes()


def test_a_submit_that_never_reached_the_server_is_retried_with_the_same_key(
    qtbot, server: CloudServer, session: CloudSession, project: LocalProject
):
    renders = CloudRenders(session)
    tray = Tray(renders=renders, tray_available=False)
    real_url = session.client.server_url
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe_socket.getsockname()[1]}"
    offline: list[str] = []
    session.offline.connect(offline.append)
    # The same signed-in client, pointed at an address where nothing answers.
    session.client._http.base_url = dead  # type: ignore[assignment]
    session.client.server_url = dead

    with qtbot.waitSignal(renders.failed, timeout=30_000):
        job = renders.submit(project)
    assert job.status == "unsent" and "Cannot reach" in job.error and "Retry" in job.error
    assert offline and tray.messages[-1].failed
    key = job.idempotency_key

    session.client._http.base_url = real_url  # type: ignore[assignment]
    session.client.server_url = real_url
    with qtbot.waitSignal(renders.submitted, timeout=60_000):
        renders.retry(job)
    assert job.idempotency_key == key and job.render_id is not None
    # Sent again by hand with the same key: the server answers with the same render.
    again = session.client.submit_render(
        session.client.projects()[0]["id"], job.settings, job.idempotency_key
    )
    assert again["id"] == job.render_id
    assert len(session.client.renders()) == 1
    with qtbot.waitSignal(renders.failed, timeout=60_000):
        renders.cancel(job)
    assert job.status == "cancelled" and "cancelled" in job.error.lower()
    renders.shutdown()


def test_a_dropped_event_stream_reconnects_and_resumes_without_missing_or_repeating(
    qtbot, server: CloudServer, session: CloudSession, desktop_env: Path
):
    server.start_worker()
    proxy = CuttableProxy(int(server.url.rsplit(":", 1)[1]))
    try:
        tokens = session.client.tokens
        assert tokens is not None
        store = FileTokenStore(desktop_env)
        store.save(proxy.url, tokens)  # the same sign-in, reached through the proxy
        proxied = CloudClient(proxy.url, store)
        project_id = session.client.create_project("Long enough", {})["id"]
        midi = desktop_env / "song.mid"
        midi.write_bytes(tiny_midi(4.0))
        session.client.upload_file(project_id, "midi", midi)
        render = session.client.submit_render(project_id, FAST_SETTINGS, "drop-1")

        watcher = RenderWatcher(proxied, render["id"])
        messages: list[dict] = []
        connections: list[str] = []
        watcher.received.connect(messages.append)
        watcher.connection.connect(connections.append)
        with qtbot.waitSignal(watcher.ended, timeout=RENDER_WAIT_MS) as ended:
            watcher.start()
            qtbot.waitUntil(lambda: bool(messages), timeout=30_000)
            proxy.cut()  # right after the first snapshot: the network drops
        assert ended.args[0]["status"] == "succeeded"
        assert any(c.startswith("reconnecting") for c in connections), connections
        assert connections.count("connected") >= 2
        snapshots = [m for m in messages if m["type"] == "snapshot"]
        assert len(snapshots) >= 2  # one per connection
        ids = [tuple(map(int, m["id"].split("-"))) for m in messages if m["type"] != "snapshot"]
        assert ids == sorted(set(ids))  # every event once, in order
        assert messages[-1]["type"] == "state" and messages[-1]["status"] == "succeeded"
    finally:
        proxy.close()


def test_the_event_stream_refreshes_an_access_token_the_server_has_expired(
    qtbot, server: CloudServer, session: CloudSession, desktop_env: Path
):
    project_id = session.client.create_project("Queued only", {})["id"]
    midi = desktop_env / "song.mid"
    midi.write_bytes(tiny_midi(2.0))
    session.client.upload_file(project_id, "midi", midi)
    render = session.client.submit_render(project_id, FAST_SETTINGS, "expired-1")  # no worker
    before = session.client.tokens
    server.advance_clock(timedelta(minutes=16))  # the app still believes its token is fresh

    watcher = RenderWatcher(session.client, render["id"])
    messages: list[dict] = []
    watcher.received.connect(messages.append)
    with qtbot.waitSignal(watcher.ended, timeout=60_000) as ended:
        watcher.start()
        qtbot.waitUntil(lambda: bool(messages), timeout=30_000)  # closed 4401, refreshed, in
        assert session.client.tokens != before
        session.client.cancel_render(render["id"])
    assert ended.args[0]["status"] == "cancelled"
    assert messages[0]["type"] == "snapshot" and messages[0]["status"] == "queued"


def test_a_background_image_is_refused_before_anything_is_uploaded(
    qtbot, desktop_env: Path, tmp_path: Path
):
    image = tmp_path / "stage.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n")
    midi = tmp_path / "song.mid"
    midi.write_bytes(tiny_midi(2.0))
    project = LocalProject.create(
        tmp_path / "library", midi, settings=RenderSettings(background_image=str(image))
    )
    with socket.socket() as probe_socket:  # nothing listens: any upload would fail offline
        probe_socket.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe_socket.getsockname()[1]}"
    FileTokenStore(desktop_env).save(url, Tokens("access", "refresh", expires_at=4e9))
    renders = CloudRenders(CloudSession(url, desktop_env, tmp_path / "downloads"))
    with qtbot.waitSignal(renders.failed, timeout=20_000):
        job = renders.submit(project)
    assert "background image" in job.error and "Cannot reach" not in job.error
    assert job.status == "unsent" and job.render_id is None


def test_a_render_submitted_before_the_app_closed_is_followed_and_downloaded_after_restart(
    qtbot, server: CloudServer, session: CloudSession, project: LocalProject, tmp_path: Path
):
    before = CloudRenders(session)
    with qtbot.waitSignal(before.submitted, timeout=60_000):
        job = before.submit(project)
    before.shutdown()  # the app quits while the render waits for a worker
    server.start_worker()

    after = CloudRenders(session)  # the next start: picks the render up by itself
    tray = Tray(renders=after, tray_available=False)
    with qtbot.waitSignal(after.finished, timeout=RENDER_WAIT_MS) as finished:
        pass
    resumed = finished.args[0]
    assert resumed.render_id == job.render_id and resumed.output is not None
    assert resumed.output.parent == tmp_path / "downloads"
    assert tray.messages and not tray.messages[-1].failed
    # Done with it: the next start has nothing left to pick up.
    assert ProjectLinks(session.app_data, session.server_url).followed_renders() == {}
