"""Sign-in, refresh-token rotation, sessions and sign-out through the HTTP API, on every backend."""

import uuid
from datetime import datetime, timedelta

import pytest
from argon2 import PasswordHasher
from notefall.server.accounts import sign_in
from notefall.server.accounts.models import AuthSession, RefreshToken, User
from notefall.server.kit.db import Database
from notefall.server.kit.models import utcnow
from notefall.server.kit.settings import Settings
from sqlalchemy import select, update

from .conftest import TestClient, outbox_messages, token_in
from .test_app import assert_problem

TOKEN = "/api/v1/auth/token"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/me"
SESSIONS = "/api/v1/me/sessions"
ADA = {"email": "ada@example.com", "password": "falling notes over a grand", "name": "Ada Lovelace"}
BOB = {"email": "bob@example.com", "password": "a quiet upright in the hall", "name": "Bob"}


def _sign_up(client: TestClient, settings: Settings, account: dict, *, verify: bool = True) -> None:
    client.post("/api/v1/auth/signup", json=account)
    if verify:
        token = token_in(outbox_messages(settings)[-1])
        assert client.post("/api/v1/auth/verify-email", json={"token": token}).status_code == 200


def _password_grant(client: TestClient, account: dict, **headers: str):
    form = {"grant_type": "password", "username": account["email"], "password": account["password"]}
    return client.post(TOKEN, data=form, headers=headers)


def _signed_in(client: TestClient, account: dict) -> dict:
    response = _password_grant(client, account)
    assert response.status_code == 200, response.text
    return response.json()


def _refresh(client: TestClient, refresh_token: str):
    return client.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": refresh_token})


def _bearer(tokens: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def _set_clock(client: TestClient, now: datetime) -> None:
    client.app.state.clock = lambda: now  # type: ignore[attr-defined]


def _assert_unauthorized(response) -> None:
    assert_problem(response, 401, "invalid_access_token")
    assert response.headers["WWW-Authenticate"] == "Bearer"


def _rows(settings: Settings, model: type) -> list:
    database = Database(settings.database_url)
    with database.sessions() as session:
        rows = list(session.scalars(select(model)))
    database.dispose()
    return rows


@pytest.fixture
def ada(client: TestClient, settings: Settings) -> dict:
    _sign_up(client, settings, ADA)
    return ADA


def test_a_verified_user_signs_in_and_reads_their_profile(client: TestClient, ada: dict):
    response = _password_grant(client, {**ada, "email": "ADA@Example.com"})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    tokens = response.json()
    assert tokens.keys() == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert (tokens["token_type"], tokens["expires_in"]) == ("bearer", 15 * 60)
    profile = client.get(ME, headers=_bearer(tokens)).json()
    assert {k: v for k, v in profile.items() if k != "id"} == {
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "email_verified": True,
        "two_factor_enabled": False,
        "tier": "free",
        "avatar_url": None,
    }


def test_an_unverified_account_cannot_sign_in(client: TestClient, settings: Settings):
    _sign_up(client, settings, ADA, verify=False)
    body = assert_problem(_password_grant(client, ADA), 403, "email_not_verified")
    assert "Confirm your email address" in body["detail"]
    assert _rows(settings, AuthSession) == []


def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(
    client: TestClient, ada: dict, monkeypatch: pytest.MonkeyPatch
):
    dummy_verifies: list[str] = []
    real = sign_in.spend_verify_time

    def recording(password: str) -> None:
        dummy_verifies.append(password)
        real(password)

    monkeypatch.setattr(sign_in, "spend_verify_time", recording)
    wrong_password = _password_grant(client, {**ada, "password": "not the right password"})
    unknown_email = _password_grant(client, {**ada, "email": "nobody@example.com"})
    assert_problem(wrong_password, 400, "invalid_grant")
    assert (wrong_password.status_code, wrong_password.json()) == (
        unknown_email.status_code,
        unknown_email.json(),
    )
    # The unknown email still paid for one argon2 verify, so timing does not tell them apart.
    assert dummy_verifies == [ada["password"]]


def test_signing_in_rehashes_a_hash_made_with_weaker_parameters(
    client: TestClient, settings: Settings, ada: dict
):
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(ada["password"])
    database = Database(settings.database_url)
    with database.sessions() as session:
        session.execute(update(User).values(password_hash=weak))
        session.commit()
    database.dispose()
    _signed_in(client, ada)
    [user] = _rows(settings, User)
    assert user.password_hash != weak
    assert "m=65536,t=3,p=4" in user.password_hash
    _signed_in(client, ada)  # the new hash verifies, and is kept
    assert _rows(settings, User)[0].password_hash == user.password_hash


def test_missing_and_forged_access_tokens_are_refused(client: TestClient, ada: dict):
    tokens = _signed_in(client, ada)
    _assert_unauthorized(client.get(ME))
    _assert_unauthorized(client.get(ME, headers={"Authorization": "Bearer not-a-token"}))
    session_hex, expiry, signature = tokens["access_token"].split(".")
    later = f"{session_hex}.{int(expiry) + 3600}.{signature}"
    _assert_unauthorized(client.get(ME, headers={"Authorization": f"Bearer {later}"}))


def test_an_access_token_expires_after_fifteen_minutes(client: TestClient, ada: dict):
    start = utcnow()
    _set_clock(client, start)
    tokens = _signed_in(client, ada)
    _set_clock(client, start + timedelta(minutes=14, seconds=59))
    assert client.get(ME, headers=_bearer(tokens)).status_code == 200
    _set_clock(client, start + timedelta(minutes=15))
    _assert_unauthorized(client.get(ME, headers=_bearer(tokens)))


def test_a_revoked_sessions_access_token_is_refused_at_once(client: TestClient, ada: dict):
    laptop, phone = _signed_in(client, ada), _signed_in(client, ada)
    [laptop_session] = [
        s for s in client.get(SESSIONS, headers=_bearer(laptop)).json() if s["current"]
    ]
    response = client.delete(f"{SESSIONS}/{laptop_session['id']}", headers=_bearer(phone))
    assert response.status_code == 204
    _assert_unauthorized(client.get(ME, headers=_bearer(laptop)))
    assert_problem(_refresh(client, laptop["refresh_token"]), 400, "invalid_grant")
    assert client.get(ME, headers=_bearer(phone)).status_code == 200


def test_a_refresh_returns_a_new_refresh_token_and_retires_the_old_one(
    client: TestClient, ada: dict
):
    first = _signed_in(client, ada)
    second = _refresh(client, first["refresh_token"])
    assert second.status_code == 200 and second.headers["Cache-Control"] == "no-store"
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    assert client.get(ME, headers=_bearer(rotated)).status_code == 200
    third = _refresh(client, rotated["refresh_token"])
    assert third.status_code == 200
    # Still one sign-in: rotation does not create sessions.
    assert len(client.get(SESSIONS, headers=_bearer(third.json())).json()) == 1


def test_reusing_a_refresh_token_ends_the_whole_session(
    client: TestClient, settings: Settings, ada: dict
):
    stolen = _signed_in(client, ada)
    newest = _refresh(client, stolen["refresh_token"]).json()
    body = assert_problem(_refresh(client, stolen["refresh_token"]), 400, "refresh_token_reused")
    assert "Sign in again" in body["detail"]
    # The revocation outlives the error answer: the newest tokens stop working too.
    assert_problem(_refresh(client, newest["refresh_token"]), 400, "invalid_grant")
    _assert_unauthorized(client.get(ME, headers=_bearer(newest)))
    [session] = _rows(settings, AuthSession)
    assert session.revoked_at is not None


def test_an_expired_refresh_token_is_refused(client: TestClient, ada: dict):
    start = utcnow()
    _set_clock(client, start)
    tokens = _signed_in(client, ada)
    _set_clock(client, start + timedelta(days=30))
    assert_problem(_refresh(client, tokens["refresh_token"]), 400, "invalid_grant")
    _set_clock(client, start + timedelta(days=29))
    assert _refresh(client, tokens["refresh_token"]).status_code == 200


def test_a_session_unused_for_thirty_days_lapses(client: TestClient, settings: Settings, ada: dict):
    start = utcnow()
    _set_clock(client, start)
    laptop, phone = _signed_in(client, ada), _signed_in(client, ada)
    _set_clock(client, start + timedelta(days=20))
    phone = _refresh(client, phone["refresh_token"]).json()
    _set_clock(client, start + timedelta(days=31))
    phone = _refresh(client, phone["refresh_token"]).json()
    # The laptop was last seen 31 days ago: no longer listed, its refresh token refused.
    [listed] = client.get(SESSIONS, headers=_bearer(phone)).json()
    assert listed["current"]
    assert_problem(_refresh(client, laptop["refresh_token"]), 400, "invalid_grant")
    # Even an access token inside its 15 minutes stops once its session has lapsed.
    database = Database(settings.database_url)
    with database.sessions() as session:
        session.execute(
            update(AuthSession)
            .where(AuthSession.id == uuid.UUID(listed["id"]))
            .values(last_seen_at=start + timedelta(days=1))
        )
        session.commit()
    database.dispose()
    _assert_unauthorized(client.get(ME, headers=_bearer(phone)))


@pytest.mark.parametrize(
    "refresh_token",
    ["not-a-token", "abc.def", "x" * 150],
    ids=["garbage", "unsigned", "long"],
)
def test_forged_refresh_tokens_are_refused(client: TestClient, ada: dict, refresh_token: str):
    _signed_in(client, ada)
    assert_problem(_refresh(client, refresh_token), 400, "invalid_grant")


def test_the_extra_fields_oauth2_clients_send_are_accepted(client: TestClient, ada: dict):
    form = {"grant_type": "password", "username": ada["email"], "password": ada["password"]}
    extras = {"scope": "", "client_id": "swagger", "client_secret": ""}
    assert client.post(TOKEN, data={**form, **extras}).status_code == 200
    assert_problem(client.post(TOKEN, data={**form, "admin": "1"}), 422, "invalid_request")


def test_the_token_request_names_what_a_grant_needs(client: TestClient):
    body = assert_problem(
        client.post(TOKEN, data={"grant_type": "password", "username": "a@example.com"}),
        422,
        "invalid_request",
    )
    assert "needs password" in body["errors"][0]["message"]
    assert_problem(
        client.post(TOKEN, data={"grant_type": "client_credentials"}), 422, "invalid_request"
    )
    assert_problem(client.post(TOKEN, json={"grant_type": "password"}), 422, "invalid_request")


def test_logout_ends_the_session_and_its_tokens(client: TestClient, ada: dict):
    tokens = _signed_in(client, ada)
    assert client.post(LOGOUT, headers=_bearer(tokens)).status_code == 204
    _assert_unauthorized(client.get(ME, headers=_bearer(tokens)))
    _assert_unauthorized(client.post(LOGOUT, headers=_bearer(tokens)))
    assert_problem(_refresh(client, tokens["refresh_token"]), 400, "invalid_grant")


def test_the_session_list_marks_the_current_one_and_names_the_device(client: TestClient, ada: dict):
    _password_grant(client, ada, **{"User-Agent": "Notefall desktop 1.0"})
    current = _signed_in(client, ada)
    sessions = client.get(SESSIONS, headers=_bearer(current)).json()
    assert [s["current"] for s in sessions].count(True) == 1
    assert {s["user_agent"] for s in sessions} >= {"Notefall desktop 1.0"}
    assert all(s["ip"] for s in sessions)


def test_ending_another_own_session_leaves_this_one(client: TestClient, ada: dict):
    other, current = _signed_in(client, ada), _signed_in(client, ada)
    sessions = client.get(SESSIONS, headers=_bearer(current)).json()
    [other_id] = [s["id"] for s in sessions if not s["current"]]
    assert client.delete(f"{SESSIONS}/{other_id}", headers=_bearer(current)).status_code == 204
    assert [s["current"] for s in client.get(SESSIONS, headers=_bearer(current)).json()] == [True]
    _assert_unauthorized(client.get(ME, headers=_bearer(other)))
    assert_problem(
        client.delete(f"{SESSIONS}/{other_id}", headers=_bearer(current)), 404, "not_found"
    )


def test_another_users_session_is_not_found_and_stays_active(
    client: TestClient, settings: Settings, ada: dict
):
    _sign_up(client, settings, BOB)
    bob = _signed_in(client, BOB)
    ada_tokens = _signed_in(client, ada)
    [bobs_session] = client.get(SESSIONS, headers=_bearer(bob)).json()
    response = client.delete(f"{SESSIONS}/{bobs_session['id']}", headers=_bearer(ada_tokens))
    never_existed = client.delete(
        f"{SESSIONS}/00000000-0000-4000-8000-000000000000", headers=_bearer(ada_tokens)
    )
    assert assert_problem(response, 404, "not_found") == assert_problem(
        never_existed, 404, "not_found"
    )
    assert client.get(ME, headers=_bearer(bob)).status_code == 200
    assert [s["id"] for s in client.get(SESSIONS, headers=_bearer(ada_tokens)).json()] != [
        bobs_session["id"]
    ]


def test_refresh_tokens_are_stored_only_as_hashes(
    client: TestClient, settings: Settings, ada: dict
):
    tokens = _signed_in(client, ada)
    [row] = _rows(settings, RefreshToken)
    assert len(row.token_hash) == 64 and tokens["refresh_token"] not in row.token_hash
