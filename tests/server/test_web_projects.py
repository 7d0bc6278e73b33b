"""A project in the browser: creating one from a MIDI upload, its page (history, render,
share links, collaborators, presets, rename, delete) with the roles respected, the shared
view behind a link, and CSRF on every form."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from notefall.server.kit.app import create_app
from notefall.server.kit.db import Database, transaction_scope
from notefall.server.kit.settings import Settings
from notefall.server.renders import keys
from notefall.server.renders.models import Render
from notefall.server.web.account_pages import FORM_EXPIRED
from sqlalchemy import update

from tests.support.render_farm import tiny_midi

from .test_projects import PRELUDE, _stored_files, wav_bytes
from .web_pages import PROJECTS, TestClient, assert_page_headers, csrf_of, sign_in, visible_text

pytestmark = pytest.mark.one_backend


@pytest.fixture
def browser(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="https://testserver") as test_client:
        yield test_client


@pytest.fixture
def ada(browser: TestClient, settings: Settings) -> dict[str, str]:
    return sign_in(browser, settings, "ada@example.com")


def _new(browser: TestClient, name: str, midi: bytes | None, audio: bytes | None = None, **more):
    files = {}
    if midi is not None:
        files["midi"] = ("song.mid", midi, "audio/midi")
    if audio is not None:
        files["audio"] = ("take.wav", audio, "audio/wav")
    form = {"csrf_token": csrf_of(browser, "/projects/new"), "name": name, **more}
    return browser.post("/projects/new", data=form, files=files or None, follow_redirects=False)


def _project(browser: TestClient, headers: dict, name: str, **fields) -> str:
    created = browser.post(PROJECTS, json={"name": name, **fields}, headers=headers)
    assert created.status_code == 201, created.text
    project_id: str = created.json()["id"]
    files = {"file": ("song.mid", tiny_midi(), "audio/midi")}
    assert (
        browser.put(f"{PROJECTS}/{project_id}/midi", files=files, headers=headers).status_code
        == 200
    )
    return project_id


def _share(browser: TestClient, owner: dict, project_id: str, email: str, role: str) -> None:
    invite = {"email": email, "role": role}
    response = browser.post(f"{PROJECTS}/{project_id}/collaborators", json=invite, headers=owner)
    assert response.status_code == 201, response.text


def _post(browser: TestClient, path: str, **form):
    """Submit a form of the pages with the session's CSRF token, as the page would."""
    token = csrf_of(browser)
    return browser.post(path, data={"csrf_token": token, **form}, follow_redirects=False)


def test_a_project_is_created_from_a_midi_file_and_a_recording(
    browser: TestClient, settings: Settings, ada: dict
):
    created = _new(browser, "Prelude", PRELUDE.read_bytes(), wav_bytes(), tags="bach, practice")
    assert created.status_code == 303, created.text
    location = created.headers["location"]
    assert re.fullmatch(r"/projects/[0-9a-f-]{36}\?done=created", location)
    page = browser.get(location)
    assert_page_headers(page)
    text = visible_text(page)
    assert "Project created." in text
    assert "Prelude in C major, BWV 846" in text and "Length 2:06" in text and "Notes 549" in text
    assert "Recording pcm_s16le, 0:00" in text
    assert "bach" in text and "practice" in text
    assert len(_stored_files(settings)) == 3  # MIDI, recording, thumbnail


@pytest.mark.parametrize(
    ("midi", "audio", "words"),
    [
        (b"not a midi file at all", None, "MIDI file:"),
        (PRELUDE.read_bytes()[:6], None, "MIDI file:"),
        (PRELUDE.read_bytes(), b"this is no recording", "Recording:"),
    ],
)
def test_files_the_engine_cannot_read_are_explained_on_the_form_and_nothing_is_kept(
    browser: TestClient, settings: Settings, ada: dict, midi: bytes, audio: bytes | None, words: str
):
    refused = _new(browser, "Broken", midi, audio, tags="kept")
    assert refused.status_code in (400, 422), refused.text
    text = visible_text(refused)
    assert words in text and "Traceback" not in text
    assert (
        'value="Broken"' in refused.text and 'value="kept"' in refused.text
    )  # the form keeps them
    assert browser.get(PROJECTS, headers=ada).json()["total"] == 0
    assert _stored_files(settings) == []


def test_the_form_asks_for_a_name_and_a_midi_file(browser: TestClient, ada: dict):
    assert "Name your project." in visible_text(_new(browser, " ", tiny_midi()))
    assert "Choose the song's MIDI file (.mid)." in visible_text(_new(browser, "Song", None))
    too_long = _new(browser, "x" * 201, tiny_midi())
    assert too_long.status_code == 400
    assert "Name: must be at most 200 characters." in visible_text(too_long)
    assert browser.get(PROJECTS, headers=ada).json()["total"] == 0


def test_someone_elses_project_is_the_404_page(browser: TestClient, settings: Settings, ada: dict):
    adas = _project(browser, ada, "Ada's")
    sign_in(browser, settings, "bob@example.com")
    for path in (f"/projects/{adas}", f"/projects/{adas}/delete", f"/projects/{uuid.uuid4()}"):
        page = browser.get(path)
        assert page.status_code == 404, path
        assert_page_headers(page)
        assert "You have no project with this id." in visible_text(page)
    refused = _post(browser, f"/projects/{adas}/rename", name="Mine now")
    assert refused.status_code == 404
    assert browser.get(f"{PROJECTS}/{adas}", headers=ada).json()["name"] == "Ada's"


def test_a_viewer_sees_the_project_but_no_forms_and_cannot_change_it(
    browser: TestClient, settings: Settings, ada: dict
):
    adas = _project(browser, ada, "Recital")
    _share(browser, ada, adas, "bob@example.com", "viewer")
    sign_in(browser, settings, "bob@example.com")
    page = browser.get(f"/projects/{adas}")
    assert page.status_code == 200
    text = visible_text(page)
    assert "Shared with you · viewer" in text and "Tiny song" in text
    assert 'action="/projects/' not in page.text  # no rename, render, share or delete forms
    assert "Download settings preset" in text  # reading is allowed

    refused = _post(browser, f"/projects/{adas}/rename", name="Bob's now")
    assert refused.status_code == 403
    assert "As a viewer of this project you cannot change this project" in visible_text(refused)
    assert browser.get(f"{PROJECTS}/{adas}", headers=ada).json()["name"] == "Recital"
    assert _post(browser, f"/projects/{adas}/delete").status_code == 403


def test_an_editor_renames_and_retags_but_cannot_share_or_delete(
    browser: TestClient, settings: Settings, ada: dict
):
    adas = _project(browser, ada, "Draft")
    _share(browser, ada, adas, "bob@example.com", "editor")
    sign_in(browser, settings, "bob@example.com")
    page = browser.get(f"/projects/{adas}")
    assert f'action="/projects/{adas}/rename"' in page.text
    assert "Create share link" not in page.text and "Delete project" not in page.text

    saved = _post(browser, f"/projects/{adas}/rename", name="Final", tags="recital, live")
    assert saved.headers["location"] == f"/projects/{adas}?done=saved"
    project = browser.get(f"{PROJECTS}/{adas}", headers=ada).json()
    assert (project["name"], project["tags"]) == ("Final", ["recital", "live"])
    refused = _post(browser, f"/projects/{adas}/share-links")
    assert refused.status_code == 403 and "ask its owner" in visible_text(refused)


def test_a_share_link_is_shown_once_opens_without_sign_in_and_dies_when_revoked(
    browser: TestClient, settings: Settings, ada: dict
):
    adas = _project(browser, ada, "Nocturne")
    created = _post(browser, f"/projects/{adas}/share-links", days="7")
    assert created.status_code == 201
    url = re.search(
        r'id="new-share-url" class="mono">|value="(https?://[^"]+/s/[^"]+)"', created.text
    )
    found = re.search(r'value="(http://notefall\.test/s/[^"]+)"', created.text)
    assert url and found
    shared_path = found.group(1).removeprefix(settings.public_url)
    assert "shown only this once" in visible_text(created)
    # Only its hash is kept: the project page never shows the link again.
    assert shared_path not in browser.get(f"/projects/{adas}").text

    with TestClient(create_app(settings), base_url="https://testserver") as visitor:
        shared = visitor.get(shared_path)
        assert shared.status_code == 200
        assert_page_headers(shared)
        assert "Nocturne" in visible_text(shared) and "Tiny song" in visible_text(shared)
        assert "Sign out" not in shared.text

        link_id = re.search(
            rf"/projects/{adas}/share-links/([0-9a-f-]+)/revoke",
            browser.get(f"/projects/{adas}").text,
        )
        assert link_id
        revoked = _post(browser, f"/projects/{adas}/share-links/{link_id.group(1)}/revoke")
        assert revoked.headers["location"] == f"/projects/{adas}?done=revoked"
        gone = visitor.get(shared_path)
        assert gone.status_code == 404
        assert "There is no shared project at this address" in visible_text(gone)
        assert visitor.get("/s/made-up-token").status_code == 404


def test_expired_share_links_are_the_404_page(browser: TestClient, settings: Settings, ada: dict):
    adas = _project(browser, ada, "Short-lived")
    created = _post(browser, f"/projects/{adas}/share-links", days="1")
    found = re.search(r'value="http://notefall\.test(/s/[^"]+)"', created.text)
    assert found
    later = datetime.now(UTC) + timedelta(days=1, minutes=1)
    browser.app.state.clock = lambda: later  # type: ignore[attr-defined]
    browser.cookies.clear()
    assert browser.get(found.group(1)).status_code == 404


def test_the_owner_invites_changes_roles_and_removes_collaborators(
    browser: TestClient, settings: Settings, ada: dict
):
    adas = _project(browser, ada, "Duet")
    invited = _post(
        browser, f"/projects/{adas}/collaborators", email="Grace@Example.com", role="viewer"
    )
    assert invited.headers["location"] == f"/projects/{adas}?done=invited"
    page = browser.get(invited.headers["location"])
    assert "Invitation sent." in visible_text(page) and "grace@example.com invited" in visible_text(
        page
    )
    member = re.search(rf"/projects/{adas}/collaborators/([0-9a-f-]+)/role", page.text)
    assert member
    changed = _post(
        browser, f"/projects/{adas}/collaborators/{member.group(1)}/role", role="editor"
    )
    assert changed.headers["location"] == f"/projects/{adas}?done=role"
    members = browser.get(f"{PROJECTS}/{adas}/collaborators", headers=ada).json()
    assert [(m["email"], m["role"]) for m in members] == [("grace@example.com", "editor")]

    again = _post(
        browser, f"/projects/{adas}/collaborators", email="grace@example.com", role="viewer"
    )
    assert again.status_code == 409 and "already a collaborator" in visible_text(again)
    bad = _post(browser, f"/projects/{adas}/collaborators", email="not an address", role="viewer")
    assert bad.status_code == 400 and "must be an email address" in visible_text(bad)

    removed = _post(browser, f"/projects/{adas}/collaborators/{member.group(1)}/remove")
    assert removed.headers["location"] == f"/projects/{adas}?done=removed"
    assert browser.get(f"{PROJECTS}/{adas}/collaborators", headers=ada).json() == []


def test_a_render_the_plan_does_not_include_is_refused_with_the_upgrade_link(
    browser: TestClient, ada: dict
):
    adas = _project(browser, ada, "Smooth", settings={"fps": 60})
    page = browser.get(f"/projects/{adas}")
    key = re.search(r'name="idempotency_key" value="([0-9a-f]+)"', page.text)
    assert key
    refused = browser.post(
        f"/projects/{adas}/render",
        data={"csrf_token": csrf_of(browser), "idempotency_key": key.group(1)},
    )
    assert refused.status_code == 403
    assert "Upgrade your plan" in visible_text(refused)
    assert 'href="http://notefall.test/billing"' in refused.text
    assert browser.get("/api/v1/renders", headers=ada).json()["total"] == 0


def test_rendering_goes_to_the_renders_page_and_history_offers_the_download(
    browser: TestClient, settings: Settings, ada: dict
):
    adas = _project(browser, ada, "Etude")
    page = browser.get(f"/projects/{adas}")
    assert "Not rendered yet." in visible_text(page)
    key = re.search(r'name="idempotency_key" value="([0-9a-f]+)"', page.text)
    assert key
    form = {"csrf_token": csrf_of(browser), "idempotency_key": key.group(1)}
    submitted = browser.post(f"/projects/{adas}/render", data=form, follow_redirects=False)
    assert submitted.status_code == 303
    render_id = submitted.headers["location"].removeprefix("/renders/")
    # The same form sent twice (a double click) is the same render.
    again = browser.post(f"/projects/{adas}/render", data=form, follow_redirects=False)
    assert again.headers["location"] == f"/renders/{render_id}"

    history = browser.get(f"/projects/{adas}")
    assert "queued" in visible_text(history) and "/download" not in history.text
    refused = browser.get(f"/projects/{adas}/renders/{render_id}/download")
    assert (
        refused.status_code == 409
        and "its video is ready once it has succeeded" in visible_text(refused)
    )

    _succeed(browser, settings, render_id, b"a video")
    page = browser.get(f"/projects/{adas}")
    assert "succeeded" in visible_text(page) and "256×144" in visible_text(page)
    download = browser.get(f"/projects/{adas}/renders/{render_id}/download", follow_redirects=False)
    assert download.status_code == 303
    assert download.headers["location"].startswith(settings.public_url + "/files/renders/")
    assert f'href="/renders/{render_id}"' in page.text


def _succeed(browser: TestClient, settings: Settings, render_id: str, video: bytes) -> None:
    """Finish the render as a worker's finalize step would: its video in storage, its row."""
    storage = browser.app.state.storage  # type: ignore[attr-defined]
    storage.put(keys.output(render_id, "mp4"), video)
    database = Database(settings.database_url)
    with transaction_scope(database) as session:
        session.execute(
            update(Render)
            .where(Render.id == uuid.UUID(render_id))
            .values(
                status="succeeded",
                percent=100.0,
                output_key=keys.output(render_id, "mp4"),
                output_bytes=len(video),
                width=256,
                height=144,
                format="mp4",
                finished_at=datetime.now(UTC),
                expires_at=datetime.now(UTC) + timedelta(days=7),
            )
        )
    database.dispose()


def test_deleting_a_project_asks_first(browser: TestClient, settings: Settings, ada: dict):
    adas = _project(browser, ada, "Old take")
    asked = browser.get(f"/projects/{adas}/delete")
    assert "Delete “Old take”?" in visible_text(asked)
    deleted = _post(browser, f"/projects/{adas}/delete")
    assert deleted.headers["location"] == "/?deleted=1"
    assert browser.get(f"{PROJECTS}/{adas}", headers=ada).status_code == 404


def test_presets_download_and_import_on_the_page(browser: TestClient, ada: dict):
    adas = _project(browser, ada, "Look")
    preset = b'{"notefall_preset": 1, "settings": {"theme": "paper"}}'
    token = csrf_of(browser)
    done = browser.post(
        f"/projects/{adas}/settings/import",
        data={"csrf_token": token},
        files={"preset": ("look.notefall-preset.json", preset, "application/json")},
        follow_redirects=False,
    )
    assert done.headers["location"] == f"/projects/{adas}?done=settings"
    assert "Theme paper" in visible_text(browser.get(done.headers["location"]))
    exported = browser.get(f"{PROJECTS}/{adas}/settings/export")  # the page's download link
    assert exported.json()["settings"] == {"theme": "paper"}
    bad = browser.post(
        f"/projects/{adas}/settings/import",
        data={"csrf_token": token},
        files={"preset": ("x.json", b"[1, 2]", "application/json")},
    )
    assert bad.status_code == 422 and "this is not one" in visible_text(bad)


@pytest.mark.parametrize(
    "action",
    [
        "rename",
        "render",
        "share-links",
        "collaborators",
        "delete",
        "settings/import",
        "share-links/{other}/revoke",
        "collaborators/{other}/role",
        "collaborators/{other}/remove",
    ],
)
def test_every_project_form_refuses_a_missing_or_forged_csrf_token(
    browser: TestClient, ada: dict, action: str
):
    adas = _project(browser, ada, "Guarded")
    path = f"/projects/{adas}/" + action.format(other=uuid.uuid4())
    for token in (None, "forged"):
        form = {"name": "Hijacked", "email": "mallory@example.com", "role": "editor"}
        if token is not None:
            form["csrf_token"] = token
        refused = browser.post(path, data=form, follow_redirects=False)
        assert refused.status_code == 403, (path, refused.text)
        assert_page_headers(refused)
        assert FORM_EXPIRED in visible_text(refused)
    project = browser.get(f"{PROJECTS}/{adas}", headers=ada).json()
    assert project["name"] == "Guarded"
    assert browser.get(f"{PROJECTS}/{adas}/collaborators", headers=ada).json() == []
    for path in ("/projects/new", "/projects/bulk"):
        assert browser.post(path, data={"name": "x"}).status_code == 403
