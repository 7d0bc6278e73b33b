"""Password reset by mail and password change through the HTTP API, on every database backend."""

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from notefall.server.accounts.models import SingleUseToken, User
from notefall.server.accounts.passwords import hash_password
from notefall.server.kit.app import create_app
from notefall.server.kit.db import Database, normalize_database_url
from notefall.server.kit.models import UTCDateTime, utcnow
from notefall.server.kit.security import issue_token
from notefall.server.kit.settings import Settings
from notefall.server.migrations import alembic_config, upgrade_to_head
from sqlalchemy import select

from .conftest import (
    TEST_RATE_LIMIT_SCALE,
    TEST_SECRET_KEY,
    TestClient,
    body_of,
    make_settings,
    outbox_messages,
    token_in,
)
from .test_app import assert_problem

REQUEST = "/api/v1/auth/password-reset/request"
CONFIRM = "/api/v1/auth/password-reset/confirm"
CHANGE = "/api/v1/me/password"
TOKEN = "/api/v1/auth/token"
ME = "/api/v1/me"
ADA = {"email": "ada@example.com", "password": "falling notes over a grand", "name": "Ada Lovelace"}
NEW_PASSWORD = "a brand new nocturne in the rain"


def _sign_up(client: TestClient, settings: Settings, *, verify: bool = True) -> None:
    assert client.post("/api/v1/auth/signup", json=ADA).status_code == 201
    if verify:
        token = token_in(outbox_messages(settings)[-1])
        assert client.post("/api/v1/auth/verify-email", json={"token": token}).status_code == 200


def _sign_in(client: TestClient, password: str = ADA["password"]) -> dict:
    form = {"grant_type": "password", "username": ADA["email"], "password": password}
    response = client.post(TOKEN, data=form)
    assert response.status_code == 200, response.text
    return response.json()


def _bearer(tokens: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def _refresh(client: TestClient, tokens: dict):
    return client.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )


def _request_reset_token(client: TestClient, settings: Settings) -> str:
    assert client.post(REQUEST, json={"email": ADA["email"]}).status_code == 202
    mail = outbox_messages(settings)[-1]
    assert mail["Subject"] == "Reset your password"
    return token_in(mail)


def _rows(settings: Settings, model: type) -> list:
    database = Database(settings.database_url)
    with database.sessions() as session:
        rows = list(session.scalars(select(model)))
    database.dispose()
    return rows


def _reset_tokens(settings: Settings) -> list[SingleUseToken]:
    return [row for row in _rows(settings, SingleUseToken) if row.purpose == "password-reset"]


@pytest.fixture
def ada(client: TestClient, settings: Settings) -> dict:
    _sign_up(client, settings)
    return ADA


def test_known_and_unknown_emails_get_the_same_answer_and_only_the_known_gets_mail(
    client: TestClient, settings: Settings, ada: dict
):
    mails_before = len(outbox_messages(settings))
    unknown = client.post(REQUEST, json={"email": "nobody@example.com"})
    assert len(outbox_messages(settings)) == mails_before
    known = client.post(REQUEST, json={"email": "ADA@Example.com"})
    assert unknown.status_code == known.status_code == 202
    assert unknown.json() == known.json()
    assert unknown.headers.get("content-type") == known.headers.get("content-type")
    mails = outbox_messages(settings)
    assert len(mails) == mails_before + 1
    assert mails[-1]["To"] == "ada@example.com"
    assert "http://notefall.test/reset-password?token=" in body_of(mails[-1])
    assert [row.user_id for row in _reset_tokens(settings)] == [_rows(settings, User)[0].id]


def test_only_a_hash_of_the_reset_token_is_stored(
    client: TestClient, settings: Settings, ada: dict
):
    token = _request_reset_token(client, settings)
    [row] = _reset_tokens(settings)
    assert token not in row.token_hash and len(row.token_hash) == 64


def test_a_reset_sets_the_password_once_and_mails_a_notice(
    client: TestClient, settings: Settings, ada: dict
):
    token = _request_reset_token(client, settings)
    response = client.post(CONFIRM, json={"token": token, "password": NEW_PASSWORD})
    assert response.status_code == 204, response.text
    notice = outbox_messages(settings)[-1]
    assert (notice["To"], notice["Subject"]) == ("ada@example.com", "Your password was changed")
    _sign_in(client, NEW_PASSWORD)
    form = {"grant_type": "password", "username": ADA["email"], "password": ADA["password"]}
    assert_problem(client.post(TOKEN, data=form), 400, "invalid_grant")
    again = client.post(CONFIRM, json={"token": token, "password": "yet another long passphrase"})
    assert_problem(again, 400, "invalid_token")
    _sign_in(client, NEW_PASSWORD)


def test_an_expired_reset_token_is_refused(client: TestClient, settings: Settings, ada: dict):
    start = utcnow()
    client.app.state.clock = lambda: start  # type: ignore[attr-defined]
    token = _request_reset_token(client, settings)
    client.app.state.clock = lambda: start + timedelta(hours=1)  # type: ignore[attr-defined]
    expired = client.post(CONFIRM, json={"token": token, "password": NEW_PASSWORD})
    assert_problem(expired, 400, "invalid_token")
    client.app.state.clock = lambda: start + timedelta(minutes=59)  # type: ignore[attr-defined]
    assert client.post(CONFIRM, json={"token": token, "password": NEW_PASSWORD}).status_code == 204


def test_a_newer_request_retires_the_older_token(client: TestClient, settings: Settings, ada: dict):
    older = _request_reset_token(client, settings)
    newer = _request_reset_token(client, settings)
    refused = client.post(CONFIRM, json={"token": older, "password": NEW_PASSWORD})
    assert_problem(refused, 400, "invalid_token")
    assert client.post(CONFIRM, json={"token": newer, "password": NEW_PASSWORD}).status_code == 204


@pytest.mark.parametrize(
    "forge",
    [
        lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        lambda token: issue_token("test-secret-key-" + "x" * 40, "verify-email").token,
        lambda token: issue_token("test-secret-key-" + "x" * 40, "password-reset").token,
        lambda token: "not-a-token",
    ],
    ids=["tampered", "other-purpose", "never-issued", "garbage"],
)
def test_forged_reset_tokens_are_refused(client: TestClient, settings: Settings, ada: dict, forge):
    token = _request_reset_token(client, settings)
    response = client.post(CONFIRM, json={"token": forge(token), "password": NEW_PASSWORD})
    assert_problem(response, 400, "invalid_token")
    _sign_in(client)


def test_a_weak_password_is_refused_and_the_link_keeps_working(
    client: TestClient, settings: Settings, ada: dict
):
    token = _request_reset_token(client, settings)
    weak = client.post(CONFIRM, json={"token": token, "password": "Password123"})
    assert_problem(weak, 422, "weak_password")
    _sign_in(client)
    assert client.post(CONFIRM, json={"token": token, "password": NEW_PASSWORD}).status_code == 204


def test_a_reset_ends_every_session(client: TestClient, settings: Settings, ada: dict):
    first, second = _sign_in(client), _sign_in(client)
    token = _request_reset_token(client, settings)
    assert client.post(CONFIRM, json={"token": token, "password": NEW_PASSWORD}).status_code == 204
    for tokens in (first, second):
        assert_problem(client.get(ME, headers=_bearer(tokens)), 401, "invalid_access_token")
        assert_problem(_refresh(client, tokens), 400, "invalid_grant")


def test_a_reset_confirms_an_unverified_address(client: TestClient, settings: Settings):
    _sign_up(client, settings, verify=False)
    token = _request_reset_token(client, settings)
    assert client.post(CONFIRM, json={"token": token, "password": NEW_PASSWORD}).status_code == 204
    [user] = _rows(settings, User)
    assert user.email_verified_at is not None
    _sign_in(client, NEW_PASSWORD)


def test_changing_the_password_keeps_this_session_and_ends_the_others(
    client: TestClient, settings: Settings, ada: dict
):
    current, other = _sign_in(client), _sign_in(client)
    body = {"current_password": ADA["password"], "new_password": NEW_PASSWORD}
    response = client.post(CHANGE, json=body, headers=_bearer(current))
    assert response.status_code == 204, response.text
    assert client.get(ME, headers=_bearer(current)).status_code == 200
    assert _refresh(client, current).status_code == 200
    assert_problem(client.get(ME, headers=_bearer(other)), 401, "invalid_access_token")
    assert_problem(_refresh(client, other), 400, "invalid_grant")
    notice = outbox_messages(settings)[-1]
    assert (notice["To"], notice["Subject"]) == ("ada@example.com", "Your password was changed")
    _sign_in(client, NEW_PASSWORD)


def test_changing_the_password_needs_the_current_one(
    client: TestClient, settings: Settings, ada: dict
):
    current, other = _sign_in(client), _sign_in(client)
    mails_before = len(outbox_messages(settings))
    body = {"current_password": "not the right password", "new_password": NEW_PASSWORD}
    assert_problem(client.post(CHANGE, json=body, headers=_bearer(current)), 400, "wrong_password")
    assert client.get(ME, headers=_bearer(other)).status_code == 200
    assert len(outbox_messages(settings)) == mails_before
    _sign_in(client)


def test_changing_to_a_weak_password_is_refused(client: TestClient, settings: Settings, ada: dict):
    current = _sign_in(client)
    for weak in ("short1!", "Password123", "ada@example.com"):
        body = {"current_password": ADA["password"], "new_password": weak}
        response = client.post(CHANGE, json=body, headers=_bearer(current))
        assert_problem(response, 422, "weak_password")
    _sign_in(client)


def test_changing_the_password_needs_a_signed_in_user(client: TestClient):
    body = {"current_password": ADA["password"], "new_password": NEW_PASSWORD}
    assert_problem(client.post(CHANGE, json=body), 401, "invalid_access_token")


def test_a_password_change_retires_pending_reset_links(
    client: TestClient, settings: Settings, ada: dict
):
    token = _request_reset_token(client, settings)
    current = _sign_in(client)
    body = {"current_password": ADA["password"], "new_password": NEW_PASSWORD}
    assert client.post(CHANGE, json=body, headers=_bearer(current)).status_code == 204
    stale = client.post(CONFIRM, json={"token": token, "password": "yet another long passphrase"})
    assert_problem(stale, 400, "invalid_token")


def _old_token_table(name: str) -> sa.TableClause:
    return sa.table(
        name,
        sa.column("id", sa.Uuid()),
        sa.column("user_id", sa.Uuid()),
        sa.column("token_hash", sa.String()),
        sa.column("expires_at", UTCDateTime()),
        sa.column("used_at", UTCDateTime()),
        sa.column("created_at", UTCDateTime()),
    )


def test_pending_mail_tokens_survive_the_move_to_one_token_store(
    tmp_path: Path, database_url: str, redis_url: str
):
    """Links mailed before migration 0006 still work after it; downgrading moves them back."""
    config = alembic_config(database_url)
    command.upgrade(config, "0005")
    now = utcnow()
    users = sa.table(
        "users",
        sa.column("id", sa.Uuid()),
        sa.column("email", sa.String()),
        sa.column("name", sa.String()),
        sa.column("password_hash", sa.String()),
        sa.column("email_verified_at", UTCDateTime()),
        sa.column("created_at", UTCDateTime()),
        sa.column("updated_at", UTCDateTime()),
    )
    unverified, resetting = uuid.uuid4(), uuid.uuid4()
    verification = issue_token(TEST_SECRET_KEY, "verify-email")
    reset = issue_token(TEST_SECRET_KEY, "password-reset")
    engine = sa.create_engine(normalize_database_url(database_url))
    with engine.begin() as connection:
        for user_id, email, verified in [
            (unverified, "new@example.com", None),
            (resetting, ADA["email"], now),
        ]:
            connection.execute(
                users.insert().values(
                    id=user_id,
                    email=email,
                    name="Someone",
                    password_hash=hash_password(ADA["password"]),
                    email_verified_at=verified,
                    created_at=now,
                    updated_at=now,
                )
            )
        for table, user_id, issued in [
            ("email_verification_tokens", unverified, verification),
            ("password_reset_tokens", resetting, reset),
        ]:
            connection.execute(
                _old_token_table(table)
                .insert()
                .values(
                    id=uuid.uuid4(),
                    user_id=user_id,
                    token_hash=issued.token_hash,
                    expires_at=now + timedelta(hours=1),
                    used_at=None,
                    created_at=now,
                )
            )
    upgrade_to_head(database_url)
    with engine.connect() as connection:
        purposes = connection.execute(
            sa.text("SELECT purpose, payload FROM single_use_tokens ORDER BY purpose")
        ).all()
    assert [tuple(row) for row in purposes] == [("password-reset", None), ("verify-email", None)]
    # Down to 0005 and up again: the rows go back to their tables, then return.
    command.downgrade(config, "0005")
    with engine.connect() as connection:
        for table, issued in [
            ("email_verification_tokens", verification),
            ("password_reset_tokens", reset),
        ]:
            hashes = connection.execute(sa.text(f"SELECT token_hash FROM {table}")).scalars().all()
            assert hashes == [issued.token_hash]
    engine.dispose()
    upgrade_to_head(database_url)

    settings = make_settings(
        tmp_path / "data", database_url, redis_url=redis_url, rate_limit_scale=TEST_RATE_LIMIT_SCALE
    )
    with TestClient(create_app(settings)) as client:
        verified = client.post("/api/v1/auth/verify-email", json={"token": verification.token})
        assert verified.status_code == 200 and verified.json()["email"] == "new@example.com"
        confirm = {"token": reset.token, "password": NEW_PASSWORD}
        assert client.post(CONFIRM, json=confirm).status_code == 204
        assert _sign_in(client, NEW_PASSWORD)["access_token"]
        # Still single-use after the move.
        assert_problem(client.post(CONFIRM, json=confirm), 400, "invalid_token")
