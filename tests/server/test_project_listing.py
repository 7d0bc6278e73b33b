"""Listing projects: search over names, tags and song titles, tag and date filters, and
projects shared with you."""

import uuid

import pytest
from notefall.server.accounts.models import User
from notefall.server.kit.db import Database, transaction_scope
from notefall.server.kit.settings import Settings
from notefall.server.renders.models import Render
from sqlalchemy import select

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


def test_the_has_renders_filter_finds_projects_with_a_finished_video(
    client: TestClient, settings: Settings, ada: dict
):
    rendered = _create(client, ada, "Rendered")
    failed = _create(client, ada, "Failed render")
    _create(client, ada, "Never rendered")
    database = Database(settings.database_url)
    with transaction_scope(database) as session:
        owner = session.scalars(select(User).where(User.email == "ada@example.com")).one()
        for project, status in ((rendered, "succeeded"), (failed, "failed")):
            session.add(
                Render(
                    owner_id=owner.id,
                    project_id=uuid.UUID(project["id"]),
                    project_name=project["name"],
                    status=status,
                    tier="free",
                    queue="render.free",
                    settings={},
                    fingerprint="f" * 64,
                    midi_sha256="m" * 64,
                    input_midi_key="renders/x/input.mid",
                    period="2026-11",
                )
            )
    database.dispose()
    assert _names(client, ada, has_renders=True) == ["Rendered"]
    assert _names(client, ada, has_renders=False, sort="name") == [
        "Failed render",
        "Never rendered",
    ]
