"""The render pages in a browser's shoes (TestClient over https, the sign-in cookie): the
progress page without JavaScript, cancelling through its CSRF'd form, the finished video in
the page, failures in words a user can act on, the list of your renders, and who may see
what (someone else's render is the 404 page)."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from notefall.server.kit.db import Database, transaction_scope
from notefall.server.kit.settings import Settings
from notefall.server.renders import keys
from notefall.server.renders.models import Render
from sqlalchemy import update

from tests.support.render_farm import (
    project_with_midi,
    running_workers,
    submit_render,
    wait_for_status,
)

from .conftest import TestClient, create_app, signed_in_headers
from .test_browser_session import browser_sign_in, hidden_field

pytestmark = pytest.mark.one_backend

CSRF_REFUSED = "Not allowed"  # the 403 page; its words are the layout's


@pytest.fixture
def browser(settings: Settings) -> Iterator[TestClient]:
    # https: the sign-in cookie is Secure, so an http client would never send it back.
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        yield client


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    db = Database(settings.database_url)
    yield db
    db.dispose()


def sign_in_as(browser: TestClient, settings: Settings, email: str) -> dict[str, str]:
    """A confirmed account, signed in with the browser; its bearer headers for the API."""
    headers = signed_in_headers(browser, settings, email)
    assert browser_sign_in(browser, email).status_code == 303
    return headers


def queued_render(browser: TestClient, headers: dict[str, str], name: str = "Clair de lune") -> str:
    project_id = project_with_midi(browser, headers, name=name)
    return str(submit_render(browser, headers, project_id)["id"])


def set_render(database: Database, render_id: str, **values: object) -> None:
    with transaction_scope(database) as session:
        session.execute(update(Render).where(Render.id == uuid.UUID(render_id)).values(**values))


def status_of(database: Database, render_id: str) -> str:
    with transaction_scope(database) as session:
        render = session.get(Render, uuid.UUID(render_id))
        assert render is not None
        return render.status


def finish_render(browser: TestClient, database: Database, render_id: str, video: bytes) -> None:
    """The row and files a worker's finalize step leaves behind."""
    storage = browser.app.state.storage  # type: ignore[attr-defined]
    storage.put(keys.output(render_id, "mp4"), video)
    storage.put(keys.thumbnail(render_id), b"\xff\xd8a still\xff\xd9")
    now = datetime.now(UTC)
    set_render(
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
        output_duration=75.0,
        output_codec="h264",
        width=256,
        height=144,
        fps=24,
        format="mp4",
        expires_at=now + timedelta(days=7),
    )


def assert_page(response, status: int, *texts: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    assert "Traceback" not in response.text
    for text in texts:
        assert text in response.text, response.text


def attribute(page: str, tag: str, name: str) -> str:
    found = re.search(rf"<{tag}\b[^>]*\b{name}=\"([^\"]*)\"", page)
    assert found, f"no <{tag} {name}=...> in the page"
    return html.unescape(found.group(1))


def test_a_signed_out_visitor_is_sent_to_sign_in_and_back(browser: TestClient):
    render_id = uuid.uuid4()
    for path in (f"/renders/{render_id}", "/renders"):
        response = browser.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/signin?next=" + path.replace("/", "%2F")


def test_a_queued_render_shows_its_state_without_javascript(
    browser: TestClient, settings: Settings
):
    ada = sign_in_as(browser, settings, "ada@example.com")
    render_id = queued_render(browser, ada)
    page = browser.get(f"/renders/{render_id}")
    assert_page(page, 200, "Clair de lune", "Waiting for a worker", "256x144")
    assert attribute(page.text, "progress", "value") == "0"
    # Without the script: a refresh link to the same page, and the cancel form.
    assert f'href="/renders/{render_id}" data-field="refresh"' in page.text
    assert f'action="/renders/{render_id}/cancel"' in page.text
    assert hidden_field(page.text, "csrf_token")
    assert '<script src="/static/js/render_progress.js" defer>' in page.text
    assert "<video" in page.text and 'data-field="video" hidden' in page.text
    assert 'data-render-id="' + render_id + '"' in page.text


def test_a_running_render_shows_stage_percent_and_eta(
    browser: TestClient, settings: Settings, database: Database
):
    ada = sign_in_as(browser, settings, "ada@example.com")
    render_id = queued_render(browser, ada)
    set_render(
        database, render_id, status="running", stage="rendering", percent=42.4, eta_seconds=150
    )
    page = browser.get(f"/renders/{render_id}")
    assert_page(page, 200, "Drawing and encoding the frames", "42%", "about 3 min left")
    assert attribute(page.text, "progress", "value") == "42"


def test_someone_elses_render_and_a_made_up_id_are_the_404_page(
    browser: TestClient, settings: Settings
):
    ada = sign_in_as(browser, settings, "ada@example.com")
    render_id = queued_render(browser, ada)
    browser.cookies.clear()
    sign_in_as(browser, settings, "bob@example.com")
    for path in (f"/renders/{render_id}", f"/renders/{uuid.uuid4()}", "/renders/not-an-id"):
        page = browser.get(path)
        assert_page(page, 404, "Page not found")
        assert "Clair de lune" not in page.text
    # Nor can Bob cancel it: the same 404, and the render runs on.
    token = hidden_field(browser.get("/renders").text, "csrf_token")
    refused = browser.post(f"/renders/{render_id}/cancel", data={"csrf_token": token})
    assert_page(refused, 404)
    assert "Clair de lune" not in browser.get("/renders").text


def test_cancelling_needs_the_csrf_token_then_cancels_and_charges_nothing(
    browser: TestClient, settings: Settings, database: Database
):
    ada = sign_in_as(browser, settings, "ada@example.com")
    render_id = queued_render(browser, ada)
    refused = browser.post(f"/renders/{render_id}/cancel", data={"csrf_token": "forged"})
    assert_page(refused, 403, CSRF_REFUSED)
    assert status_of(database, render_id) == "queued"
    foreign = browser.post(
        f"/renders/{render_id}/cancel",
        data={"csrf_token": hidden_field(browser.get(f"/renders/{render_id}").text, "csrf_token")},
        headers={"Origin": "https://evil.example"},
    )
    assert_page(foreign, 403, "another site")
    assert status_of(database, render_id) == "queued"

    token = hidden_field(browser.get(f"/renders/{render_id}").text, "csrf_token")
    done = browser.post(
        f"/renders/{render_id}/cancel", data={"csrf_token": token}, follow_redirects=False
    )
    assert done.status_code == 303 and done.headers["location"] == f"/renders/{render_id}"
    assert status_of(database, render_id) == "cancelled"
    page = browser.get(f"/renders/{render_id}")
    assert_page(page, 200, "Cancelled", "nothing was charged", "render it again")
    assert "/cancel" not in page.text  # nothing left to cancel


def test_cancelling_a_finished_render_is_refused_with_the_reason(
    browser: TestClient, settings: Settings, database: Database
):
    ada = sign_in_as(browser, settings, "ada@example.com")
    render_id = queued_render(browser, ada)
    finish_render(browser, database, render_id, b"\x00\x00\x00\x18ftypmp42 the video")
    token = hidden_field(browser.get("/renders").text, "csrf_token")
    refused = browser.post(f"/renders/{render_id}/cancel", data={"csrf_token": token})
    assert_page(refused, 409, "already succeeded")
    assert status_of(database, render_id) == "succeeded"


def test_a_finished_render_plays_in_the_page_with_its_poster_and_download(
    browser: TestClient, settings: Settings, database: Database
):
    ada = sign_in_as(browser, settings, "ada@example.com")
    render_id = queued_render(browser, ada)
    video = b"\x00\x00\x00\x18ftypmp42 the finished video"
    finish_render(browser, database, render_id, video)
    page = browser.get(f"/renders/{render_id}")
    assert_page(page, 200, "Done", "Download video", "1:15", "256×144", "Kept until")
    assert 'data-field="video" hidden' not in page.text
    source = attribute(page.text, "video", "src")
    poster = attribute(page.text, "video", "poster")
    found = re.search(r'data-field="download" href="([^"]*)"', page.text)
    assert found is not None
    download = html.unescape(found.group(1))
    assert download == source
    # Signed links of this server's storage that serve the files.
    for link, body in ((source, video), (poster, b"\xff\xd8a still\xff\xd9")):
        parts = urlsplit(link)
        assert f"{parts.scheme}://{parts.netloc}" == settings.public_url
        served = browser.get(f"{parts.path}?{parts.query}")
        assert served.status_code == 200 and served.content == body
    assert 'data-field="cancel"' not in page.text


def test_a_video_past_its_retention_says_so_instead_of_a_broken_player(
    browser: TestClient, settings: Settings, database: Database
):
    ada = sign_in_as(browser, settings, "ada@example.com")
    render_id = queued_render(browser, ada)
    finish_render(browser, database, render_id, b"video")
    set_render(database, render_id, expires_at=datetime.now(UTC) - timedelta(days=1))
    page = browser.get(f"/renders/{render_id}")
    assert_page(page, 200, "was deleted on", "submit the render again")
    assert 'data-field="video" hidden' in page.text


def test_a_failed_render_shows_what_to_do(
    browser: TestClient, settings: Settings, database: Database
):
    ada = sign_in_as(browser, settings, "ada@example.com")
    render_id = queued_render(browser, ada)
    message = "The MIDI file has no notes; open it in your editor, add notes and upload it again."
    set_render(database, render_id, status="failed", error_code="empty_song", error_message=message)
    page = browser.get(f"/renders/{render_id}")
    assert_page(page, 200, "Failed", html.escape(message, quote=True))
    project_id = submit_project_of(database, render_id)
    assert f'href="/projects/{project_id}"' in page.text


def submit_project_of(database: Database, render_id: str) -> str:
    with transaction_scope(database) as session:
        render = session.get(Render, uuid.UUID(render_id))
        assert render is not None
        return str(render.project_id)


def test_your_renders_lists_yours_newest_first_with_their_status(
    browser: TestClient, settings: Settings, database: Database
):
    ada = sign_in_as(browser, settings, "ada@example.com")
    empty = browser.get("/renders")
    assert_page(empty, 200, "You have not rendered anything yet")
    first = queued_render(browser, ada, "Gymnopédie")
    set_render(database, first, status="failed", error_code="x", error_message="bad")
    second = queued_render(browser, ada, "Nocturne")
    page = browser.get("/renders")
    assert_page(page, 200, "2 renders", "Gymnopédie", "Nocturne", "Failed", "Waiting for a worker")
    assert page.text.index("Nocturne") < page.text.index("Gymnopédie")
    assert f'href="/renders/{first}"' in page.text and f'href="/renders/{second}"' in page.text
    assert 'aria-current="page"' in page.text and 'href="/renders" aria-current' in page.text
    # Nobody else sees them.
    browser.cookies.clear()
    sign_in_as(browser, settings, "bob@example.com")
    assert_page(browser.get("/renders"), 200, "You have not rendered anything yet")


def test_a_render_done_by_a_real_worker_is_playable_from_its_page(
    browser: TestClient, settings: Settings, tmp_path: Path
):
    ada = sign_in_as(browser, settings, "ada@example.com")
    render_id = queued_render(browser, ada)
    with running_workers(settings, tmp_path):
        wait_for_status(browser, ada, render_id, "succeeded", timeout=120)
    page = browser.get(f"/renders/{render_id}")
    assert_page(page, 200, "Done", "Download video")
    source = urlsplit(attribute(page.text, "video", "src"))
    served = browser.get(f"{source.path}?{source.query}")
    assert served.status_code == 200
    assert served.content[4:8] == b"ftyp"  # an MP4 FFmpeg wrote
