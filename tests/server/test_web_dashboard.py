"""The dashboard at /: projects with their facts, search, tags, sort, pages, bulk delete and
tag (CSRF'd, delete confirmed first), the plan and storage; and the pages' headers and
friendly error pages."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest
from notefall.server.kit.app import create_app
from notefall.server.kit.settings import Settings
from notefall.server.web.account_pages import FORM_EXPIRED
from sqlalchemy import event

from tests.support.render_farm import tiny_midi

from .conftest import make_settings
from .web_pages import (
    PROJECTS,
    TestClient,
    assert_page_headers,
    csrf_of,
    sign_in,
    visible_text,
)

pytestmark = pytest.mark.one_backend


@pytest.fixture
def browser(settings: Settings) -> Iterator[TestClient]:
    # https: the sign-in cookie is Secure, so an http client would never send it back.
    with TestClient(create_app(settings), base_url="https://testserver") as test_client:
        yield test_client


@pytest.fixture
def ada(browser: TestClient, settings: Settings) -> dict[str, str]:
    return sign_in(browser, settings, "ada@example.com")


def _project(browser: TestClient, headers: dict, name: str, *, midi: bool = False, **fields) -> str:
    created = browser.post(PROJECTS, json={"name": name, **fields}, headers=headers)
    assert created.status_code == 201, created.text
    project_id: str = created.json()["id"]
    if midi:
        files = {"file": ("song.mid", tiny_midi(61), "audio/midi")}
        uploaded = browser.put(f"{PROJECTS}/{project_id}/midi", files=files, headers=headers)
        assert uploaded.status_code == 200, uploaded.text
    return project_id


def _names(page) -> list[str]:
    """The project names on the grid, in order."""
    return [
        html.unescape(name)
        for name in re.findall(
            r'<div class="card-title">.*?<a href="/projects/[^"]+">([^<]+)</a>', page.text, re.S
        )
    ]


def _api_names(browser: TestClient, headers: dict) -> list[str]:
    items = browser.get(PROJECTS, params={"sort": "name", "shared": "all"}, headers=headers).json()[
        "items"
    ]
    return [p["name"] for p in items]


def test_a_signed_out_visitor_is_sent_to_sign_in_and_back(browser: TestClient):
    response = browser.get("/?q=prelude", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=%2F%3Fq%3Dprelude"
    page = browser.get("/projects/new", follow_redirects=False)
    assert page.headers["location"] == "/signin?next=%2Fprojects%2Fnew"


def test_a_new_user_sees_an_empty_dashboard_with_a_new_project_button(
    browser: TestClient, ada: dict
):
    page = browser.get("/")
    assert page.status_code == 200
    assert_page_headers(page)
    text = visible_text(page)
    assert "No projects yet" in text
    assert 'href="/projects/new"' in page.text
    assert "Free" in text and "5 of 5 renders left this month" in text
    assert re.search(r'<meter id="storage-meter" min="0" max="\d+"[^>]* value="0"', page.text)
    assert 'aria-current="page">Dashboard' in page.text  # the nav knows where you are
    assert 'href="#content"' in page.text  # the skip link


def test_projects_show_their_length_last_render_size_and_a_lazy_thumbnail(
    browser: TestClient, settings: Settings, ada: dict
):
    _project(browser, ada, "Empty one")
    _project(browser, ada, "Nocturne", midi=True, tags=["Chopin"])
    page = browser.get("/")
    text = visible_text(page)
    assert _names(page) == ["Nocturne", "Empty one"]  # recently changed first
    assert "Length 1:01" in text and "Last render never" in text
    used = browser.get("/api/v1/usage", headers=ada).json()["storage_bytes"]
    assert used > 0
    assert f'value="{used}"' in page.text  # the storage meter counts the MIDI file
    thumbnails = re.findall(r'<img src="([^"]+)" alt="" loading="lazy"', page.text)
    assert len(thumbnails) == 1 and thumbnails[0].startswith(settings.public_url + "/files/")
    assert "No MIDI yet" in text
    assert '<span class="tag">Chopin</span>' in page.text


def test_search_tags_and_sort_narrow_and_order_the_grid(browser: TestClient, ada: dict):
    _project(browser, ada, "Bach prelude", tags=["baroque"])
    _project(browser, ada, "Bach fugue", tags=["baroque", "hard"])
    _project(browser, ada, "Satie", tags=["calm"])

    assert _names(browser.get("/", params={"q": "bach", "sort": "name"})) == [
        "Bach fugue",
        "Bach prelude",
    ]
    assert _names(browser.get("/", params={"tag": ["baroque", "hard"]})) == ["Bach fugue"]
    assert _names(browser.get("/", params={"sort": "-name"})) == [
        "Satie",
        "Bach prelude",
        "Bach fugue",
    ]
    page = browser.get("/", params={"q": "mozart"})
    assert "No projects match" in visible_text(page)
    # The tag filter offers each tag once, with how many projects carry it.
    tags = re.findall(r'name="tag" value="([^"]+)"', browser.get("/").text)
    assert tags == ["baroque", "calm", "hard"]
    # A sort the page does not know falls back to the default instead of failing.
    assert browser.get("/", params={"sort": "; drop"}).status_code == 200


def test_projects_come_in_pages_of_48(browser: TestClient, ada: dict):
    for n in range(50):
        _project(browser, ada, f"Etude {n:02d}")
    first = browser.get("/", params={"sort": "name"})
    assert len(_names(first)) == 48 and "Page 1 of 2" in visible_text(first)
    assert 'href="/?sort=name&amp;p=2" rel="next"' in first.text
    second = browser.get("/", params={"sort": "name", "p": 2})
    assert _names(second) == ["Etude 48", "Etude 49"]
    past_the_end = browser.get("/", params={"sort": "name", "p": 7})
    assert _names(past_the_end) == ["Etude 48", "Etude 49"]


def test_bulk_delete_asks_first_then_deletes_every_selected_project(browser: TestClient, ada: dict):
    one = _project(browser, ada, "One", midi=True)
    two = _project(browser, ada, "Two")
    _project(browser, ada, "Keep")
    form = {"csrf_token": csrf_of(browser), "action": "delete", "ids": [one, two]}

    asked = browser.post("/projects/bulk", data=form)
    assert asked.status_code == 200
    assert "Delete 2 projects?" in visible_text(asked)
    assert _api_names(browser, ada) == ["Keep", "One", "Two"]  # nothing gone yet
    assert 'name="confirm" value="yes"' in asked.text

    done = browser.post("/projects/bulk", data={**form, "confirm": "yes"}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/?deleted=2"
    assert "2 projects deleted." in visible_text(browser.get(done.headers["location"]))
    assert _api_names(browser, ada) == ["Keep"]


def test_bulk_tagging_adds_and_removes_a_tag_on_the_selection(browser: TestClient, ada: dict):
    one = _project(browser, ada, "One", tags=["draft"])
    two = _project(browser, ada, "Two")
    token = csrf_of(browser)
    added = browser.post(
        "/projects/bulk",
        data={"csrf_token": token, "action": "tag-add", "ids": [one, two], "tag": "Recital"},
        follow_redirects=False,
    )
    assert added.headers["location"] == "/?tagged=2"
    tags = {p["name"]: p["tags"] for p in browser.get(PROJECTS, headers=ada).json()["items"]}
    assert tags == {"One": ["draft", "Recital"], "Two": ["Recital"]}
    browser.post(
        "/projects/bulk",
        data={"csrf_token": token, "action": "tag-remove", "ids": [one], "tag": "draft"},
    )
    tags = {p["name"]: p["tags"] for p in browser.get(PROJECTS, headers=ada).json()["items"]}
    assert tags["One"] == ["Recital"]


def test_bulk_actions_without_the_csrf_token_are_refused(browser: TestClient, ada: dict):
    one = _project(browser, ada, "One")
    for token in ("", "forged"):
        form = {"csrf_token": token, "action": "delete", "confirm": "yes", "ids": [one]}
        refused = browser.post("/projects/bulk", data=form)
        assert refused.status_code == 403
        assert_page_headers(refused)
        assert FORM_EXPIRED in visible_text(refused)
    assert _api_names(browser, ada) == ["One"]


def test_a_collaborator_cannot_bulk_delete_the_owners_project_and_nothing_is_deleted(
    browser: TestClient, settings: Settings, ada: dict
):
    mine = _project(browser, ada, "Mine")
    bob = sign_in(browser, settings, "bob@example.com")  # the browser is now Bob's
    bobs = _project(browser, bob, "Bob's song")
    theirs = _project(browser, ada, "Shared by Ada")
    invite = {"email": "bob@example.com", "role": "editor"}
    assert (
        browser.post(f"{PROJECTS}/{theirs}/collaborators", json=invite, headers=ada).status_code
        == 201
    )

    page = browser.get("/")
    assert _names(page) == ["Shared by Ada", "Bob's song"]
    assert '<span class="tag shared">editor</span>' in page.text
    form = {
        "csrf_token": csrf_of(browser),
        "action": "delete",
        "confirm": "yes",
        "ids": [bobs, theirs],
    }
    refused = browser.post("/projects/bulk", data=form)
    assert refused.status_code == 403
    assert "ask its owner" in visible_text(refused)
    assert _api_names(browser, bob) == ["Bob's song", "Shared by Ada"]
    assert mine in browser.get(PROJECTS, headers=ada).text


def test_an_empty_selection_is_answered_on_the_dashboard(browser: TestClient, ada: dict):
    _project(browser, ada, "One")
    page = browser.post("/projects/bulk", data={"csrf_token": csrf_of(browser), "action": "delete"})
    assert page.status_code == 400 and "Select at least one project first." in visible_text(page)


def test_hsts_is_sent_over_https_only(settings: Settings):
    with TestClient(create_app(settings), base_url="https://testserver") as secure:
        assert secure.get("/signin").headers["strict-transport-security"] == "max-age=31536000"
    with TestClient(create_app(settings)) as plain:
        assert "strict-transport-security" not in plain.get("/signin").headers


def test_unknown_pages_are_a_friendly_404_and_the_api_keeps_problem_json(
    browser: TestClient, ada: dict
):
    page = browser.get("/no/such/page", headers={"accept": "text/html"})
    assert page.status_code == 404
    assert_page_headers(page)
    assert "Page not found" in visible_text(page) and 'href="/"' in page.text
    api = browser.get("/api/v1/no-such-thing", headers={"accept": "text/html"})
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"
    not_an_id = browser.get("/projects/not-an-id", headers={"accept": "text/html"})
    assert not_an_id.status_code == 404 and "Page not found" in visible_text(not_an_id)


def _statements_for(browser: TestClient, path: str) -> int:
    engine = browser.app.state.database.engine  # type: ignore[attr-defined]
    seen: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        assert browser.get(path).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(seen)


def test_the_dashboard_costs_the_same_queries_for_two_projects_or_forty(
    browser: TestClient, ada: dict
):
    for n in range(2):
        _project(browser, ada, f"Sonata {n}", midi=True, tags=["piano"])
    few = _statements_for(browser, "/")
    for n in range(38):
        _project(browser, ada, f"Etude {n}", midi=n % 2 == 0, tags=[f"t{n % 5}"])
    many = _statements_for(browser, "/")
    assert few == many


def test_a_failure_on_our_side_is_a_friendly_500_page(settings: Settings):
    app = create_app(settings)

    def broken_page() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/broken-page", broken_page, include_in_schema=False)
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as client:
        page = client.get("/broken-page")
        assert page.status_code == 500
        assert_page_headers(page)
        text = visible_text(page)
        assert "Something went wrong" in text and "try again" in text and "a bug" not in text
        api = client.get("/api/v1/projects/not-an-id")
        assert api.headers["content-type"] == "application/problem+json"


def test_pictures_from_a_cdn_are_allowed_by_the_pages_policy(settings: Settings, tmp_path):
    behind_cdn = make_settings(
        tmp_path / "cdn",
        settings.database_url,
        redis_url=settings.redis_url,
        cdn_base_url="https://cdn.example.com",
    )
    with TestClient(create_app(behind_cdn), base_url="https://testserver") as client:
        policy = client.get("/signin").headers["content-security-policy"]
    assert "img-src 'self' https://cdn.example.com data:;" in policy
    assert "media-src 'self' https://cdn.example.com;" in policy
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        policy = client.get("/signin").headers["content-security-policy"]
    assert "img-src 'self' data:;" in policy and "media-src 'self';" in policy
