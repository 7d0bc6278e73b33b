"""PATCH /api/v1/me: changing your name."""

import pytest
from notefall.server.kit.settings import Settings

from .conftest import TestClient, signed_in_headers
from .test_app import assert_problem

ME = "/api/v1/me"


@pytest.fixture
def ada(client: TestClient, settings: Settings) -> dict[str, str]:
    return signed_in_headers(client, settings, "ada@example.com")


def test_a_new_name_is_trimmed_saved_and_logged(client: TestClient, ada: dict):
    response = client.patch(ME, json={"name": "  Ada Lovelace \u00e9  "}, headers=ada)
    assert response.status_code == 200, response.text
    profile = response.json()
    assert profile["name"] == "Ada Lovelace \u00e9"
    assert profile["email"] == "ada@example.com" and profile["avatar_url"] is None
    assert client.get(ME, headers=ada).json()["name"] == "Ada Lovelace \u00e9"
    events = client.get(f"{ME}/activity", headers=ada).json()["items"]
    updated = [e for e in events if e["kind"] == "profile_updated"]
    assert len(updated) == 1 and updated[0]["detail"] == {"fields": ["name"]}
    assert updated[0]["user_agent"] == "testclient"


def test_the_same_name_again_logs_nothing_and_200_characters_fit(client: TestClient, ada: dict):
    assert client.patch(ME, json={"name": "ada"}, headers=ada).status_code == 200
    kinds = [e["kind"] for e in client.get(f"{ME}/activity", headers=ada).json()["items"]]
    assert "profile_updated" not in kinds
    name = "\u00e9" * 200
    assert client.patch(ME, json={"name": f" {name} "}, headers=ada).json()["name"] == name


BAD_BODIES = [
    {"name": "   "},
    {"name": ""},
    {"name": "x" * 201},
    {"name": "Ada\nLovelace"},
    {"name": "Ada\tLovelace"},
    {"name": "Ada\x00"},
    {"name": "Ada\u2028Lovelace"},
    {"name": 42},
    {"name": "Ada", "email": "eve@example.com"},
    {},
]


def test_bad_names_and_other_fields_are_refused(client: TestClient, ada: dict):
    for body in BAD_BODIES:
        response = client.patch(ME, json=body, headers=ada)
        problem = assert_problem(response, 422, "invalid_request")
        # A NUL is refused before the schema is read, without a per-field list.
        assert problem.get("errors") or body == {"name": "Ada\x00"}, body
    assert client.get(ME, headers=ada).json()["name"] == "ada"
    assert_problem(client.patch(ME, json={"name": "Eve"}), 401, "invalid_access_token")
