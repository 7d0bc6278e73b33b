"""The cloud panel against a real server: projects and render history listed, a cloud
project opened into the local library (by its MIDI's checksum, or downloaded with its
recording), and a queued render cancelled from the list."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from notefall.desktop.cloud.cloud_panel import CloudPanel
from notefall.desktop.cloud.renders import CloudRenders
from notefall.desktop.cloud.session import CloudSession
from notefall.desktop.cloud.tokens import FileTokenStore
from notefall.desktop.project import LocalProject
from notefall.desktop.signals import app_signals

from tests.desktop.cloud_server import PASSWORD, CloudServer, running_cloud_server
from tests.server.test_projects import wav_bytes
from tests.support.render_farm import FAST_SETTINGS, tiny_midi

pytestmark = pytest.mark.xdist_group("desktop-cloud")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[CloudServer]:
    with running_cloud_server(tmp_path / "server") as running:
        running.sign_up("ada@example.com")
        yield running


@pytest.fixture
def session(server: CloudServer, desktop_env: Path) -> CloudSession:
    cloud = CloudSession(
        server.url, desktop_env, desktop_env / "downloads", store=FileTokenStore(desktop_env)
    )
    cloud.client.sign_in_with_password("ada@example.com", PASSWORD)
    return cloud


def upload_project(server: CloudServer, name: str, midi: bytes, settings: dict) -> str:
    headers = server.bearer("ada@example.com")
    created = server.http.post(
        "/api/v1/projects", json={"name": name, "settings": settings}, headers=headers
    )
    assert created.status_code == 201, created.text
    project_id = created.json()["id"]
    files = {"file": ("song.mid", midi, "audio/midi")}
    answer = server.http.put(f"/api/v1/projects/{project_id}/midi", files=files, headers=headers)
    assert answer.status_code == 200, answer.text
    return str(project_id)


def make_panel(qtbot, session: CloudSession, library: Path, **kwargs) -> CloudPanel:
    panel = CloudPanel(session, CloudRenders(session), library, **kwargs)
    qtbot.addWidget(panel)
    panel.resize(640, 420)
    panel.show()
    return panel


def test_projects_and_renders_are_listed_and_a_queued_render_can_be_cancelled(
    qtbot, server: CloudServer, session: CloudSession, tmp_path: Path, screenshot
):
    project_id = upload_project(server, "Prelude", tiny_midi(2.0), {"theme": "classic"})
    render = session.client.submit_render(project_id, FAST_SETTINGS, "panel-1")  # no worker
    panel = make_panel(qtbot, session, tmp_path / "library")
    qtbot.waitUntil(lambda: panel.render_list.topLevelItemCount() == 1, timeout=20_000)
    project_row = panel.project_list.topLevelItem(0)
    assert project_row.text(0) == "Prelude" and project_row.text(1) == "Tiny song"
    render_row = panel.render_list.topLevelItem(0)
    assert render_row.text(0) == "Prelude" and render_row.text(1) == "Queued"
    assert render_row.text(2) == "256x144"
    panel.tabs.setCurrentIndex(1)
    panel.render_list.setCurrentItem(render_row)
    assert panel.cancel_button.isEnabled() and not panel.download_button.isEnabled()
    qtbot.wait(50)
    screenshot(panel, "cloud-renders")

    panel.cancel_button.click()
    qtbot.waitUntil(
        lambda: (
            panel.render_list.topLevelItemCount() == 1
            and panel.render_list.topLevelItem(0).text(1) == "Cancelled"
        ),
        timeout=20_000,
    )
    assert session.client.render(render["id"])["status"] == "cancelled"


def test_a_cloud_project_opens_from_the_matching_local_midi_with_the_cloud_settings(
    qtbot, server: CloudServer, session: CloudSession, tmp_path: Path
):
    midi_bytes = tiny_midi(2.0)
    source = tmp_path / "mine.mid"
    source.write_bytes(midi_bytes)
    library = tmp_path / "library"
    local = LocalProject.create(library, source, name="My copy")
    upload_project(server, "Prelude (cloud)", midi_bytes, {"theme": "neon", "fps": 24})
    panel = make_panel(qtbot, session, library)
    qtbot.waitUntil(lambda: panel.project_list.topLevelItemCount() == 1, timeout=20_000)
    opened: list[LocalProject] = []
    app_signals().project_opened.connect(opened.append)
    with qtbot.waitSignal(app_signals().project_opened, timeout=20_000):
        panel.open_project(panel.projects_data[0])
    # Found by the MIDI's checksum: the same local project, not a downloaded second copy.
    assert [p.name for p in library.iterdir() if not p.name.startswith(".")] == [local.folder.name]
    (project,) = opened
    assert project.folder == local.folder and project.name == "Prelude (cloud)"
    assert project.settings.theme == "neon" and project.settings.fps == 24
    assert LocalProject.load(local.folder).settings.theme == "neon"


def test_without_a_local_copy_the_midi_and_recording_are_downloaded_into_the_library(
    qtbot, server: CloudServer, session: CloudSession, tmp_path: Path
):
    midi_bytes = tiny_midi(2.0, pitch=64)
    project_id = upload_project(server, "Etude", midi_bytes, {"theme": "sunset"})
    take = wav_bytes(seconds=0.5)
    answer = server.http.put(
        f"/api/v1/projects/{project_id}/audio",
        files={"file": ("take.wav", take, "audio/wav")},
        headers=server.bearer("ada@example.com"),
    )
    assert answer.status_code == 200, answer.text
    library = tmp_path / "library"
    panel = make_panel(qtbot, session, library)
    qtbot.waitUntil(lambda: panel.project_list.topLevelItemCount() == 1, timeout=20_000)

    with qtbot.waitSignal(app_signals().project_opened, timeout=20_000) as opened:
        panel.open_project(panel.projects_data[0])
    project = opened.args[0]
    assert project.name == "Etude" and project.settings.theme == "sunset"
    assert project.midi_path.read_bytes() == midi_bytes
    assert project.audio_path is not None and project.audio_path.read_bytes() == take
    assert "Opened Etude from the cloud." in panel.message.text()
    # Opened again: the linked local copy, no second download.
    with qtbot.waitSignal(app_signals().project_opened, timeout=20_000) as again:
        panel.open_project(panel.projects_data[0])
    assert again.args[0].folder == project.folder
    assert len([p for p in library.iterdir() if not p.name.startswith(".")]) == 1
