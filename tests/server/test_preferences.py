"""Notification preferences and privacy settings: GET|PUT /api/v1/me/notifications|privacy."""

import uuid

from notefall.server.kit.settings import Settings
from notefall.server.profile.service import notification_preferences, privacy_settings

from .conftest import TestClient, signed_in_headers
from .test_app import assert_problem

NOTIFICATIONS = "/api/v1/me/notifications"
PRIVACY = "/api/v1/me/privacy"
DEFAULTS = {
    NOTIFICATIONS: {"render_finished": True, "render_failed": True, "billing": True, "news": False},
    PRIVACY: {
        "show_name_on_shared_projects": True,
        "discoverable_by_email": True,
        "product_analytics": False,
    },
}


def test_defaults_then_changes_that_are_kept_and_only_yours(client: TestClient, settings: Settings):
    ada = signed_in_headers(client, settings, "ada@example.com")
    bob = signed_in_headers(client, settings, "bob@example.com")
    for path, defaults in DEFAULTS.items():
        assert client.get(path, headers=ada).json() == defaults
        flipped = {name: not value for name, value in defaults.items()}
        response = client.put(path, json=flipped, headers=ada)
        assert response.status_code == 200, response.text
        assert response.json() == flipped
        assert client.get(path, headers=ada).json() == flipped
        assert client.get(path, headers=bob).json() == defaults
    # A second change updates the same row.
    changed = {**DEFAULTS[NOTIFICATIONS], "render_failed": False}
    assert client.put(NOTIFICATIONS, json=changed, headers=ada).json() == changed
    # Other domains read the choices without a request.
    user_id = uuid.UUID(client.get("/api/v1/me", headers=ada).json()["id"])
    bob_id = uuid.UUID(client.get("/api/v1/me", headers=bob).json()["id"])
    with client.app.state.database.sessions() as session:  # type: ignore[attr-defined]
        assert notification_preferences(session, user_id) == changed
        assert privacy_settings(session, user_id) == {
            name: not value for name, value in DEFAULTS[PRIVACY].items()
        }
        assert privacy_settings(session, bob_id) == DEFAULTS[PRIVACY]


def test_put_must_be_complete_exact_and_boolean(client: TestClient, settings: Settings):
    ada = signed_in_headers(client, settings, "ada@example.com")
    for path, defaults in DEFAULTS.items():
        first, *_ = defaults
        missing = {k: v for k, v in defaults.items() if k != first}
        for body in (
            missing,
            {**defaults, "sms": True},
            {**defaults, first: "yes"},
            {**defaults, first: 1},
            {**defaults, first: None},
            [],
        ):
            response = client.put(path, json=body, headers=ada)
            assert assert_problem(response, 422, "invalid_request")["errors"], body
        assert client.get(path, headers=ada).json() == defaults
        assert_problem(client.get(path), 401, "invalid_access_token")
        assert_problem(client.put(path, json=defaults), 401, "invalid_access_token")
