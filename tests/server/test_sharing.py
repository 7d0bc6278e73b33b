"""Sharing projects: read-only public links and collaborators invited by email."""

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from notefall.server.kit.settings import Settings

from .conftest import TestClient, body_of, outbox_messages, signed_in_headers
from .test_app import assert_problem
from .test_projects import PRELUDE, PROJECTS, _create, _upload


@pytest.fixture
def ada(client: TestClient, settings: Settings) -> dict[str, str]:
    return signed_in_headers(client, settings, "ada@example.com")


def _path(url: str) -> str:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == "http://notefall.test"
    return parts.path


def test_a_share_link_shows_the_project_without_signing_in_until_revoked(
    client: TestClient, settings: Settings, ada: dict
):
    project = _create(client, ada, "Prelude", tags=["private"], settings={"theme": "neon"})
    _upload(client, ada, project["id"], PRELUDE.read_bytes())
    links = f"{PROJECTS}/{project['id']}/share-links"
    response = client.post(links, headers=ada)
    assert response.status_code == 201, response.text
    link = response.json()
    assert link["expires_at"] is None and link["url"].endswith(link["token"])

    shared = client.get(_path(link["url"]))  # no Authorization header
    assert shared.status_code == 200, shared.text
    body = shared.json()
    assert body.keys() == {"name", "song", "settings", "thumbnail_url"}  # no tags, no owner
    assert body["name"] == "Prelude" and body["settings"] == {"theme": "neon"}
    assert body["song"]["note_count"] == 549
    thumbnail = client.get(
        f"{_path(body['thumbnail_url'])}?{urlsplit(body['thumbnail_url']).query}"
    )
    assert thumbnail.status_code == 200 and thumbnail.headers["content-type"] == "image/png"

    listed = client.get(links, headers=ada).json()
    assert [item["id"] for item in listed] == [link["id"]] and "token" not in listed[0]
    assert client.delete(f"{links}/{link['id']}", headers=ada).status_code == 204
    assert_problem(client.get(_path(link["url"])), 404, "not_found")
    assert client.get(links, headers=ada).json() == []
    assert_problem(client.delete(f"{links}/{link['id']}", headers=ada), 404, "not_found")


def test_expired_forged_and_unknown_links_are_404(client: TestClient, ada: dict):
    project = _create(client, ada, "Short-lived")
    links = f"{PROJECTS}/{project['id']}/share-links"
    expires = datetime.now(UTC) + timedelta(hours=1)
    link = client.post(links, json={"expires_at": expires.isoformat()}, headers=ada).json()
    url = _path(link["url"])
    assert client.get(url).status_code == 200
    client.app.state.clock = lambda: expires + timedelta(seconds=1)  # type: ignore[attr-defined]
    expired = assert_problem(client.get(url), 404, "not_found")
    client.app.state.clock = lambda: datetime.now(UTC)  # type: ignore[attr-defined]

    forged = url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")
    assert assert_problem(client.get(forged), 404, "not_found")["detail"] == expired["detail"]
    signature = link["token"].partition(".")[2]
    other = client.post(links, headers=ada).json()["token"]
    # A genuine signature on another link's nonce is still no link.
    swapped = f"/api/v1/shared/{other.partition('.')[0]}.{signature}"
    assert_problem(client.get(swapped), 404, "not_found")
    assert_problem(client.get("/api/v1/shared/nothing"), 404, "not_found")


def test_a_share_link_must_expire_in_the_future(client: TestClient, ada: dict):
    project = _create(client, ada, "x")
    for expires_at, words in [
        ("2020-01-01T00:00:00Z", "in the past"),
        ("2030-01-01T00:00:00", "time zone"),
    ]:
        response = client.post(
            f"{PROJECTS}/{project['id']}/share-links", json={"expires_at": expires_at}, headers=ada
        )
        assert words in assert_problem(response, 422, "invalid_expiry")["detail"]
    assert client.get(f"{PROJECTS}/{project['id']}/share-links", headers=ada).json() == []


def test_deleting_the_project_ends_its_links(client: TestClient, ada: dict):
    project = _create(client, ada, "Gone")
    link = client.post(f"{PROJECTS}/{project['id']}/share-links", headers=ada).json()
    other = _create(client, ada, "Other")
    # A link is revoked through its own project only.
    wrong = f"{PROJECTS}/{other['id']}/share-links/{link['id']}"
    assert_problem(client.delete(wrong, headers=ada), 404, "not_found")
    assert client.get(_path(link["url"])).status_code == 200
    client.delete(f"{PROJECTS}/{project['id']}", headers=ada)
    assert_problem(client.get(_path(link["url"])), 404, "not_found")


def test_an_invitation_takes_effect_when_the_address_gets_a_verified_account(
    client: TestClient, settings: Settings, ada: dict
):
    project = _create(client, ada, "Duet")
    members = f"{PROJECTS}/{project['id']}/collaborators"
    invite = {"email": " Grace@Example.com ", "role": "viewer"}
    response = client.post(members, json=invite, headers=ada)
    assert response.status_code == 201, response.text
    member = response.json()
    assert (member["email"], member["role"], member["status"]) == (
        "grace@example.com",
        "viewer",
        "invited",
    )
    mail = outbox_messages(settings)[-1]
    assert mail["To"] == "grace@example.com" and "Duet" in mail["Subject"]
    assert "Sign up" in body_of(mail) and "view it" in body_of(mail)

    grace = signed_in_headers(client, settings, "grace@example.com")
    assert client.get(members, headers=ada).json()[0]["status"] == "active"
    seen = client.get(f"{PROJECTS}/{project['id']}", headers=grace).json()
    assert seen["name"] == "Duet" and seen["role"] == "viewer"

    patched = client.patch(f"{members}/{member['id']}", json={"role": "editor"}, headers=ada)
    assert patched.status_code == 200 and patched.json()["role"] == "editor"
    renamed = client.patch(f"{PROJECTS}/{project['id']}", json={"name": "Duo"}, headers=grace)
    assert renamed.status_code == 200 and renamed.json()["role"] == "editor"

    assert client.delete(f"{members}/{member['id']}", headers=ada).status_code == 204
    assert_problem(client.get(f"{PROJECTS}/{project['id']}", headers=grace), 404, "not_found")
    assert client.get(members, headers=ada).json() == []
    assert_problem(client.delete(f"{members}/{member['id']}", headers=ada), 404, "not_found")


def test_an_existing_account_is_told_to_sign_in(client: TestClient, settings: Settings, ada: dict):
    signed_in_headers(client, settings, "bob@example.com")
    project = _create(client, ada, "Trio")
    invite = {"email": "bob@example.com", "role": "editor"}
    member = client.post(f"{PROJECTS}/{project['id']}/collaborators", json=invite, headers=ada)
    assert member.json()["status"] == "active"
    body = body_of(outbox_messages(settings)[-1])
    assert "Sign in" in body and "view and edit" in body


def test_invitations_are_checked(client: TestClient, settings: Settings, ada: dict):
    project = _create(client, ada, "Solo")
    members = f"{PROJECTS}/{project['id']}/collaborators"
    mails = len(outbox_messages(settings))
    own = client.post(members, json={"email": "ADA@example.com", "role": "viewer"}, headers=ada)
    assert_problem(own, 422, "cannot_invite_owner")
    invite = {"email": "carol@example.com", "role": "viewer"}
    assert client.post(members, json=invite, headers=ada).status_code == 201
    again = client.post(members, json={**invite, "role": "editor"}, headers=ada)
    assert_problem(again, 409, "already_collaborator")
    for bad in ({"email": "carol", "role": "viewer"}, {"email": "d@example.com", "role": "owner"}):
        assert_problem(client.post(members, json=bad, headers=ada), 422, "invalid_request")
    assert len(outbox_messages(settings)) == mails + 1  # only the one invitation
    other = _create(client, ada, "Other")
    member_id = client.get(members, headers=ada).json()[0]["id"]
    # A collaborator id of another project is not this project's.
    wrong = f"{PROJECTS}/{other['id']}/collaborators/{member_id}"
    assert_problem(client.patch(wrong, json={"role": "editor"}, headers=ada), 404, "not_found")


def test_an_unverified_account_does_not_see_what_was_shared_with_its_address(
    client: TestClient, settings: Settings, ada: dict
):
    project = _create(client, ada, "Private")
    invite = {"email": "mallory@example.com", "role": "editor"}
    client.post(f"{PROJECTS}/{project['id']}/collaborators", json=invite, headers=ada)
    signup = {"email": "mallory@example.com", "password": "a long enough passphrase", "name": "M"}
    assert client.post("/api/v1/auth/signup", json=signup).status_code == 201
    members = client.get(f"{PROJECTS}/{project['id']}/collaborators", headers=ada).json()
    assert members[0]["status"] == "invited"  # unverified accounts do not count
