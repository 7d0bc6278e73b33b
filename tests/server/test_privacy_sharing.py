"""The privacy setting discoverable_by_email: inviting an address must not tell who has an account."""

from notefall.server.kit.settings import Settings

from .conftest import TestClient, signed_in_headers

PROJECTS = "/api/v1/projects"


def test_an_undiscoverable_account_shows_as_invited_but_the_share_works(
    client: TestClient, settings: Settings
):
    ada = signed_in_headers(client, settings, "ada@example.com")
    grace = signed_in_headers(client, settings, "grace@example.com")
    hidden = {"show_name_on_shared_projects": True, "discoverable_by_email": False,
              "product_analytics": False}  # fmt: skip
    assert client.put("/api/v1/me/privacy", json=hidden, headers=grace).status_code == 200

    project = client.post(PROJECTS, json={"name": "Duet"}, headers=ada).json()
    members = f"{PROJECTS}/{project['id']}/collaborators"
    for email in ("grace@example.com", "nobody@example.com"):
        invited = client.post(members, json={"email": email, "role": "viewer"}, headers=ada)
        assert invited.status_code == 201 and invited.json()["status"] == "invited", invited.text
    assert {m["status"] for m in client.get(members, headers=ada).json()} == {"invited"}
    # The share itself is in effect: Grace sees the project.
    assert client.get(f"{PROJECTS}/{project['id']}", headers=grace).json()["role"] == "viewer"

    visible = {**hidden, "discoverable_by_email": True}
    assert client.put("/api/v1/me/privacy", json=visible, headers=grace).status_code == 200
    statuses = {m["email"]: m["status"] for m in client.get(members, headers=ada).json()}
    assert statuses == {"grace@example.com": "active", "nobody@example.com": "invited"}
