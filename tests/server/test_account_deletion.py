"""DELETE /api/v1/me: the account, its rows, its files and its sessions go; hooks are called."""

import io
import uuid
from datetime import timedelta
from http import HTTPStatus
from pathlib import Path

from notefall.server.accounts.models import User
from notefall.server.kit.db import Database
from notefall.server.kit.errors import ProblemError
from notefall.server.kit.models import utcnow
from notefall.server.kit.settings import Settings
from notefall.server.profile.deletion import register_account_deleted_hook
from notefall.server.profile.export_job import BuildOutcome, build_export
from PIL import Image
from sqlalchemy import text

from .conftest import TestClient, body_of, outbox_messages, signed_in_headers
from .test_app import assert_problem
from .test_two_factor import ADA, Clock, clock, code_at, enable_two_factor, sign_in, sign_up

__all__ = ["clock"]  # the fixture, used below

ME = "/api/v1/me"
PASSWORD = "falling notes over a grand piano"  # signed_in_headers' password
PRELUDE = Path(__file__).resolve().parents[2] / "common" / "examples" / "prelude_in_c.mid"
USER_TABLES = ("sessions", "projects", "profiles", "data_exports", "activity_events")


def _stored(settings: Settings) -> set[str]:
    root = settings.data_dir / "storage"
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def _rows_of(settings: Settings, user_id: str) -> dict[str, int]:
    database = Database(settings.database_url)
    counts = {}
    with database.engine.connect() as connection:
        for table in USER_TABLES:
            column = "owner_id" if table == "projects" else "user_id"
            counts[table] = connection.execute(
                text(f"SELECT count(*) FROM {table} WHERE {column} = :id"),
                {
                    "id": uuid.UUID(user_id)
                    if connection.dialect.name != "sqlite"
                    else uuid.UUID(user_id).hex
                },
            ).scalar_one()
        counts["users"] = connection.execute(
            text("SELECT count(*) FROM users WHERE email = 'ada@example.com'")
        ).scalar_one()
    database.dispose()
    return counts


def _fill_account(client: TestClient, settings: Settings, headers: dict) -> str:
    """A project with its MIDI file and thumbnail, an avatar, settings and a ready export."""
    project = client.post("/api/v1/projects", json={"name": "Prelude"}, headers=headers).json()
    midi = {"file": ("prelude.mid", PRELUDE.read_bytes(), "audio/midi")}
    assert (
        client.put(
            f"/api/v1/projects/{project['id']}/midi", files=midi, headers=headers
        ).status_code
        == 200
    )
    png = io.BytesIO()
    Image.new("RGB", (40, 40), "navy").save(png, format="PNG")
    client.put(
        f"{ME}/avatar", files={"file": ("a.png", png.getvalue(), "image/png")}, headers=headers
    )
    client.put(
        f"{ME}/privacy",
        json={
            "show_name_on_shared_projects": False,
            "discoverable_by_email": False,
            "product_analytics": False,
        },
        headers=headers,
    )
    export = client.post(f"{ME}/export", headers=headers).json()
    storage = client.app.state.storage  # type: ignore[attr-defined]
    build_export(settings, storage, uuid.UUID(export["id"]), utcnow())
    return str(client.get(ME, headers=headers).json()["id"])


def test_deleting_removes_rows_files_sessions_and_mails_goodbye(
    client: TestClient, settings: Settings
):
    ada = signed_in_headers(client, settings, "ada@example.com")
    ada_id = _fill_account(client, settings, ada)
    form = {"grant_type": "password", "username": "ada@example.com", "password": PASSWORD}
    other_device = client.post("/api/v1/auth/token", data=form).json()
    bob = signed_in_headers(client, settings, "bob@example.com")
    bob_project = client.post("/api/v1/projects", json={"name": "Bob's"}, headers=bob).json()
    midi = {"file": ("prelude.mid", PRELUDE.read_bytes(), "audio/midi")}
    client.put(f"/api/v1/projects/{bob_project['id']}/midi", files=midi, headers=bob)
    storage = client.app.state.storage  # type: ignore[attr-defined]
    storage.put(f"renders/{ada_id}/video.mp4", b"a render another domain keeps")
    called: list[str] = []

    def hook(_session, _settings, user: User) -> list[str]:
        called.append(user.email)
        return [f"renders/{user.id}/video.mp4"]

    before = _stored(settings)
    ada_files = {key for key in before if ada_id in key or key.startswith(("avatars/", "exports/"))}
    ada_files |= {key for key in before if "projects/" in key and bob_project["id"] not in key}
    assert len(ada_files) == 5  # MIDI, thumbnail, avatar, export zip, the hook's render
    assert _rows_of(settings, ada_id)["data_exports"] == 1

    pending = client.post(f"{ME}/export", headers=ada).json()
    unregister = register_account_deleted_hook(hook)
    try:
        response = client.request("DELETE", ME, json={"password": PASSWORD}, headers=ada)
    finally:
        unregister()
    assert response.status_code == 204, response.text
    # The export job comes too late: it finds nothing to build and writes nothing.
    outcome = build_export(settings, storage, uuid.UUID(pending["id"]), utcnow())
    assert outcome is BuildOutcome.MISSING

    assert called == ["ada@example.com"]
    assert _rows_of(settings, ada_id) == {table: 0 for table in (*USER_TABLES, "users")}
    assert _stored(settings) == before - ada_files
    assert client.get(f"/api/v1/projects/{bob_project['id']}", headers=bob).status_code == 200
    assert_problem(client.get(ME, headers=ada), 401, "invalid_access_token")
    refresh = {"grant_type": "refresh_token", "refresh_token": other_device["refresh_token"]}
    assert_problem(client.post("/api/v1/auth/token", data=refresh), 400, "invalid_grant")
    assert_problem(client.post("/api/v1/auth/token", data=form), 400, "invalid_grant")
    goodbye = outbox_messages(settings)[-1]
    assert goodbye["To"] == "ada@example.com" and "deleted" in goodbye["Subject"]
    assert "signed out" in body_of(goodbye)
    # The address is free again.
    assert (
        client.post(
            "/api/v1/auth/signup",
            json={"email": "ada@example.com", "password": PASSWORD, "name": "Ada"},
        ).status_code
        == 201
    )


def test_a_wrong_or_missing_password_deletes_nothing(client: TestClient, settings: Settings):
    ada = signed_in_headers(client, settings, "ada@example.com")
    ada_id = _fill_account(client, settings, ada)
    before, rows = _stored(settings), _rows_of(settings, ada_id)
    mails = len(outbox_messages(settings))
    wrong = client.request("DELETE", ME, json={"password": "not my password at all"}, headers=ada)
    assert_problem(wrong, 400, "wrong_password")
    assert_problem(client.request("DELETE", ME, json={}, headers=ada), 422, "invalid_request")
    extra = {"password": PASSWORD, "confirm": True}
    assert_problem(client.request("DELETE", ME, json=extra, headers=ada), 422, "invalid_request")
    assert_problem(
        client.request("DELETE", ME, json={"password": PASSWORD}), 401, "invalid_access_token"
    )
    assert _stored(settings) == before and _rows_of(settings, ada_id) == rows
    assert len(outbox_messages(settings)) == mails
    assert client.get(ME, headers=ada).status_code == 200


class SubscriptionStillActiveError(ProblemError):
    status = HTTPStatus.CONFLICT
    code = "subscription_still_active"
    title = "Subscription still active"


def test_a_hook_that_refuses_stops_the_whole_deletion(client: TestClient, settings: Settings):
    ada = signed_in_headers(client, settings, "ada@example.com")
    ada_id = _fill_account(client, settings, ada)
    before, rows = _stored(settings), _rows_of(settings, ada_id)

    def refuse(_session, _settings, _user: User) -> list[str]:
        raise SubscriptionStillActiveError("Cancel your subscription first.")

    unregister = register_account_deleted_hook(refuse)
    try:
        response = client.request("DELETE", ME, json={"password": PASSWORD}, headers=ada)
    finally:
        unregister()
    assert_problem(response, 409, "subscription_still_active")
    assert _stored(settings) == before and _rows_of(settings, ada_id) == rows
    assert client.get(ME, headers=ada).status_code == 200


def test_with_two_factor_on_a_code_is_needed_too(
    client: TestClient, settings: Settings, clock: Clock
):
    sign_up(client, settings, ADA)
    ada = sign_in(client, ADA)
    secret, recovery_codes = enable_two_factor(client, ada, clock)
    body = {"password": ADA["password"]}
    assert_problem(client.request("DELETE", ME, json=body, headers=ada), 401, "otp_required")
    wrong = {**body, "otp": "000000" if code_at(secret, clock.now) != "000000" else "111111"}
    assert_problem(client.request("DELETE", ME, json=wrong, headers=ada), 400, "invalid_otp")
    assert client.get(ME, headers=ada).status_code == 200
    clock.now += timedelta(seconds=30)  # the enabling code's step is spent (no replays)
    right = {**body, "otp": code_at(secret, clock.now)}
    assert client.request("DELETE", ME, json=right, headers=ada).status_code == 204
    assert_problem(client.get(ME, headers=ada), 401, "invalid_access_token")
    assert recovery_codes  # a recovery code would have done as well; the codes die with it
