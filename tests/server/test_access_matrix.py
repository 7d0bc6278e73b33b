"""Who may call what, checked over the app's own route list so a new endpoint cannot escape.

- Without credentials, every /api/v1 operation except the few public ones answers 401.
- Every path parameter that names something a user owns is covered by a cross-user check:
  ``project_id`` and the ids nested under a project by tests/server/test_projects.py (its
  matrix over /api/v1/projects), the account's own ids (sessions, data exports) here.
  Another user's id gets the same 404 as an id that does not exist, and changes nothing.
"""

from __future__ import annotations

import uuid

from notefall.server.kit.settings import Settings

from .conftest import TestClient, signed_in_headers
from .test_app import assert_problem

API = "/api/v1"

# Operations anyone may call: they sign people up and in, or read what a secret link shares.
PUBLIC = {
    ("POST", f"{API}/auth/signup"),
    ("POST", f"{API}/auth/verify-email"),
    ("POST", f"{API}/auth/token"),
    ("POST", f"{API}/auth/password-reset/request"),
    ("POST", f"{API}/auth/password-reset/confirm"),
    ("POST", f"{API}/auth/verify-email-change"),
    ("GET", f"{API}/auth/csrf"),
    ("GET", f"{API}/shared/{{token}}"),
    # Stripe's webhook: its signature (NOTEFALL_STRIPE_WEBHOOK_SECRET) is the permission.
    ("POST", f"{API}/billing/webhook"),
}

# Path parameters and the test that proves another user's value is refused.
COVERED_PARAMETERS = {
    "project_id": "test_projects.py",
    "link_id": "test_projects.py",
    "collaborator_id": "test_projects.py",
    "session_id": "this file",
    "export_id": "this file",
    "payment_method_id": "test_billing_flows.py (another user's card is 404 on both routes)",
    "render_id": "test_render_api.py (every route of another user's render is 404)",
    # Not owned by anyone: the secret itself is the permission.
    "token": "test_sharing.py (revoked, expired and forged links are 404)",
}


def _operations(client: TestClient) -> set[tuple[str, str]]:
    openapi = client.app.openapi()  # type: ignore[attr-defined]
    return {
        (method.upper(), path)
        for path, operations in openapi["paths"].items()
        if path.startswith(f"{API}/")
        for method in operations
    }


def _filled(path: str) -> str:
    return path.format(
        **{name: str(uuid.uuid4()) for name in COVERED_PARAMETERS if f"{{{name}}}" in path}
    )


def test_every_operation_but_the_public_ones_needs_credentials(client: TestClient):
    operations = _operations(client)
    assert operations >= PUBLIC, PUBLIC - operations
    refused = {}
    for method, path in sorted(operations - PUBLIC):
        response = client.request(method, _filled(path))
        if response.status_code != 401:
            refused[(method, path)] = response.status_code
        else:
            assert_problem(response, 401, response.json()["code"])
    assert refused == {}


def test_every_path_parameter_has_a_cross_user_check(client: TestClient):
    parameters = {
        part[1:-1]
        for _, path in _operations(client)
        for part in path.split("/")
        if part.startswith("{")
    }
    assert parameters - set(COVERED_PARAMETERS) == set()


def test_another_users_sessions_and_exports_are_404_and_untouched(
    client: TestClient, settings: Settings
):
    ada = signed_in_headers(client, settings, "ada@example.com")
    bob = signed_in_headers(client, settings, "bob@example.com")
    ada_session = client.get(f"{API}/me/sessions", headers=ada).json()[0]["id"]
    export = client.post(f"{API}/me/export", headers=ada)
    assert export.status_code == 202, export.text
    export_id = export.json()["id"]

    for method, url in [
        ("DELETE", f"{API}/me/sessions/{ada_session}"),
        ("GET", f"{API}/me/exports/{export_id}"),
    ]:
        theirs = assert_problem(client.request(method, url, headers=bob), 404, "not_found")
        missing_url = url.rsplit("/", 1)[0] + f"/{uuid.uuid4()}"
        missing = assert_problem(client.request(method, missing_url, headers=bob), 404, "not_found")
        assert theirs["detail"] == missing["detail"]

    assert client.get(f"{API}/me", headers=ada).status_code == 200
    assert [s["id"] for s in client.get(f"{API}/me/sessions", headers=ada).json()] == [ada_session]
    assert client.get(f"{API}/me/exports/{export_id}", headers=ada).status_code == 200
