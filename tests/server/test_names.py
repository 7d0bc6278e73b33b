"""Names people see — an account's, a project's, a tag — are one trimmed, visible line everywhere."""

import pytest
from notefall.server.kit.settings import Settings

from .conftest import TestClient, signed_in_headers
from .test_app import assert_problem

BAD_NAMES = {
    "a\nb": "line breaks",
    "x\u0007y": "control characters",
    "a\tb": "tabs",
    "txt\u202eexe": "override",
    "   ": "blank",
    "n" * 201: "at most 200",
}


@pytest.fixture
def ada(client: TestClient, settings: Settings) -> dict[str, str]:
    return signed_in_headers(client, settings, "ada@example.com")


def test_bad_names_are_refused_the_same_way_on_every_endpoint(client: TestClient, ada: dict):
    project = client.post("/api/v1/projects", json={"name": "Nocturne"}, headers=ada).json()
    for name, reason in BAD_NAMES.items():
        answers = [
            client.post("/api/v1/projects", json={"name": name}, headers=ada),
            client.patch(f"/api/v1/projects/{project['id']}", json={"name": name}, headers=ada),
            # Tags are shorter (40): the over-long case is still over-long for them.
            client.post("/api/v1/projects", json={"name": "ok", "tags": [name]}, headers=ada),
            client.patch("/api/v1/me", json={"name": name}, headers=ada),
            client.post(
                "/api/v1/auth/signup",
                json={
                    "email": "new@example.com",
                    "password": "a long enough password",
                    "name": name,
                },
            ),
        ]
        for answer in answers:
            body = assert_problem(answer, 422, "invalid_request")
            assert any(reason.split()[-1] in e["message"] for e in body["errors"]) or (
                answer is answers[2] and "at most 40" in str(body["errors"])
            ), (name, body)
    assert client.get(f"/api/v1/projects/{project['id']}", headers=ada).json()["name"] == "Nocturne"
    assert client.get("/api/v1/projects", headers=ada).json()["total"] == 1


def test_names_are_trimmed_and_may_use_any_script(client: TestClient, ada: dict):
    created = client.post(
        "/api/v1/projects", json={"name": "  Émile — 月光  ", "tags": [" Étude "]}, headers=ada
    )
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "Émile — 月光"
    me = client.patch("/api/v1/me", json={"name": " Ada  Lovelace "}, headers=ada).json()
    assert me["name"] == "Ada  Lovelace"
