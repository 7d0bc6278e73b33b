"""Listing projects: search over names, tags and song titles, tag and date filters, and
projects shared with you."""

import pytest
from notefall.server.kit.settings import Settings

from .conftest import TestClient, signed_in_headers
from .test_app import assert_problem
from .test_projects import PRELUDE, PROJECTS, _create, _upload


@pytest.fixture
def ada(client: TestClient, settings: Settings) -> dict[str, str]:
    return signed_in_headers(client, settings, "ada@example.com")


def _names(client: TestClient, headers: dict, **params: object) -> list[str]:
    response = client.get(PROJECTS, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [p["name"] for p in response.json()["items"]]


def test_search_covers_tags_and_filters_by_tag_and_date(client: TestClient, ada: dict):
    made = [
        ("Nocturne", ["Chopin", "practice"]),
        ("Etude", ["chopin"]),
        ("Prelude", ["Bach", "practice"]),
        ("Sketch", []),
    ]
    created = {name: _create(client, ada, name, tags=tags)["created_at"] for name, tags in made}
    song = _create(client, ada, "Untagged song")
    _upload(client, ada, song["id"], PRELUDE.read_bytes())

    assert _names(client, ada, q="hop") == ["Etude", "Nocturne"]  # a tag, any case
    assert _names(client, ada, q="BWV") == ["Untagged song"]  # the song title
    assert _names(client, ada, q="sketch") == ["Sketch"]  # the name
    assert _names(client, ada, tag="CHOPIN") == ["Etude", "Nocturne"]
    assert _names(client, ada, tag=["chopin", "practice"]) == ["Nocturne"]  # every tag
    assert _names(client, ada, tag="mozart") == []
    # From Etude's creation (included) to Sketch's (excluded).
    after, before = created["Etude"], created["Sketch"]
    assert _names(client, ada, created_after=after, created_before=before, sort="created") == [
        "Etude",
        "Prelude",
    ]
    page = client.get(PROJECTS, params={"tag": "practice", "limit": 1}, headers=ada).json()
    assert page["total"] == 2 and len(page["items"]) == 1
    bad = client.get(PROJECTS, params={"created_after": "yesterday"}, headers=ada)
    assert_problem(bad, 422, "invalid_request")
    assert_problem(
        client.get(PROJECTS, params={"shared": "x"}, headers=ada), 422, "invalid_request"
    )


def test_retagging_updates_the_tag_filter(client: TestClient, ada: dict):
    project = _create(client, ada, "Waltz", tags=["draft"])
    client.patch(f"{PROJECTS}/{project['id']}", json={"tags": ["Final"]}, headers=ada)
    assert _names(client, ada, tag="draft") == []
    assert _names(client, ada, tag="final") == ["Waltz"]


def test_shared_with_me_lists_projects_others_invited_me_to(
    client: TestClient, settings: Settings, ada: dict
):
    bob = signed_in_headers(client, settings, "bob@example.com")
    _create(client, ada, "Ada's own")
    shared = _create(client, bob, "Bob's duet", tags=["duet"])
    _create(client, bob, "Bob's secret")
    invite = {"email": "ADA@example.com", "role": "editor"}
    response = client.post(f"{PROJECTS}/{shared['id']}/collaborators", json=invite, headers=bob)
    assert response.status_code == 201, response.text

    assert _names(client, ada) == ["Ada's own"]  # "mine" by default, as before
    with_me = client.get(PROJECTS, params={"shared": "with_me"}, headers=ada).json()
    assert [(p["name"], p["role"]) for p in with_me["items"]] == [("Bob's duet", "editor")]
    everything = client.get(PROJECTS, params={"shared": "all", "sort": "name"}, headers=ada)
    assert [(p["name"], p["role"]) for p in everything.json()["items"]] == [
        ("Ada's own", "owner"),
        ("Bob's duet", "editor"),
    ]
    assert _names(client, ada, shared="all", tag="duet") == ["Bob's duet"]
    assert _names(client, ada, shared="all", q="secret") == []
    assert _names(client, bob, shared="with_me") == []
