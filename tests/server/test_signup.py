"""Sign-up and email verification through the HTTP API, on every database backend."""

from datetime import timedelta
from pathlib import Path

import pytest
from notefall.server.accounts.models import SingleUseToken, User
from notefall.server.accounts.service import AccountService
from notefall.server.kit.db import Database, transaction
from notefall.server.kit.mail import Outbox
from notefall.server.kit.models import utcnow
from notefall.server.kit.security import issue_token
from notefall.server.kit.settings import Settings
from sqlalchemy import func, select, update

from .conftest import TestClient, body_of, outbox_messages, token_in
from .test_app import assert_problem

SIGNUP = "/api/v1/auth/signup"
VERIFY = "/api/v1/auth/verify-email"
ADA = {"email": "Ada@Example.com", "password": "falling notes over a grand", "name": "Ada Lovelace"}


def _users(settings: Settings) -> list[User]:
    database = Database(settings.database_url)
    with database.sessions() as session:
        users = list(session.scalars(select(User)))
    database.dispose()
    return users


def _token_rows(settings: Settings) -> list[SingleUseToken]:
    database = Database(settings.database_url)
    with database.sessions() as session:
        rows = list(
            session.scalars(select(SingleUseToken).where(SingleUseToken.purpose == "verify-email"))
        )
    database.dispose()
    return rows


def test_signup_creates_an_unverified_account_and_mails_a_verification_link(
    client: TestClient, settings: Settings
):
    response = client.post(SIGNUP, json=ADA)
    assert response.status_code == 201
    assert response.json()["email"] == "ada@example.com"
    [user] = _users(settings)
    assert (user.email, user.name, user.email_verified_at) == (
        "ada@example.com",
        "Ada Lovelace",
        None,
    )
    assert user.password_hash.startswith("$argon2id$")
    assert ADA["password"] not in user.password_hash
    [mail] = outbox_messages(settings)
    assert mail["To"] == "ada@example.com"
    assert mail["Subject"] == "Confirm your email address"
    assert "http://notefall.test/verify-email?token=" in body_of(mail)
    assert list(settings.outbox_dir.iterdir()) == list(settings.outbox_dir.glob("*.eml"))


def test_the_verification_token_verifies_once(client: TestClient, settings: Settings):
    client.post(SIGNUP, json=ADA)
    token = token_in(outbox_messages(settings)[0])
    response = client.post(VERIFY, json={"token": token})
    assert response.status_code == 200
    assert response.json() == {"email": "ada@example.com", "email_verified": True}
    [user] = _users(settings)
    assert user.email_verified_at is not None
    assert_problem(client.post(VERIFY, json={"token": token}), 400, "invalid_token")


def test_only_a_hash_of_the_token_is_stored(client: TestClient, settings: Settings):
    client.post(SIGNUP, json=ADA)
    token = token_in(outbox_messages(settings)[0])
    [row] = _token_rows(settings)
    assert token not in row.token_hash and len(row.token_hash) == 64


def test_an_expired_token_is_refused(client: TestClient, settings: Settings):
    client.post(SIGNUP, json=ADA)
    token = token_in(outbox_messages(settings)[0])
    database = Database(settings.database_url)
    with database.sessions() as session:
        session.execute(update(SingleUseToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()
    database.dispose()
    assert_problem(client.post(VERIFY, json={"token": token}), 400, "invalid_token")
    assert _users(settings)[0].email_verified_at is None


@pytest.mark.parametrize(
    "forge",
    [
        lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        lambda token: issue_token("another-secret-" + "z" * 30, "verify-email").token,
        lambda token: issue_token("test-secret-key-" + "x" * 40, "password-reset").token,
        lambda token: "not-a-token",
    ],
    ids=["tampered", "other-secret", "other-purpose", "garbage"],
)
def test_forged_tokens_are_refused(client: TestClient, settings: Settings, forge):
    client.post(SIGNUP, json=ADA)
    token = token_in(outbox_messages(settings)[0])
    assert_problem(client.post(VERIFY, json={"token": forge(token)}), 400, "invalid_token")
    assert _users(settings)[0].email_verified_at is None


def test_a_signed_token_that_was_never_issued_is_refused(client: TestClient):
    # Signed with the server's own secret, but no row: the database has the last word.
    token = issue_token("test-secret-key-" + "x" * 40, "verify-email").token
    assert_problem(client.post(VERIFY, json={"token": token}), 400, "invalid_token")


@pytest.mark.parametrize(
    ("password", "why"),
    [("short1!", "at least 10"), ("Password123", "lists attackers"), ("ada@example.com", "lists")],
)
def test_weak_passwords_are_refused_and_nothing_is_created(
    client: TestClient, settings: Settings, password: str, why: str
):
    body = assert_problem(
        client.post(SIGNUP, json={**ADA, "password": password}), 422, "weak_password"
    )
    assert why in body["detail"]
    assert _users(settings) == [] and outbox_messages(settings) == []


def test_signing_up_again_answers_the_same_creates_nothing_and_tells_the_owner(
    client: TestClient, settings: Settings
):
    first = client.post(SIGNUP, json=ADA)
    [original] = _users(settings)
    again = client.post(
        SIGNUP, json={**ADA, "email": "ADA@example.COM", "password": "x" * 10 + "yz"}
    )
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    [user] = _users(settings)
    assert user.password_hash == original.password_hash and user.id == original.id
    _verification, notice = outbox_messages(settings)
    assert notice["To"] == "ada@example.com"
    assert notice["Subject"] == "Someone tried to sign up with your email address"
    assert "No new account was created" in body_of(notice)


def test_the_notice_to_an_unverified_owner_carries_a_working_link(
    client: TestClient, settings: Settings
):
    client.post(SIGNUP, json=ADA)
    client.post(SIGNUP, json=ADA)
    notice = outbox_messages(settings)[1]
    assert client.post(VERIFY, json={"token": token_in(notice)}).status_code == 200


def test_the_notice_to_a_verified_owner_has_no_link(client: TestClient, settings: Settings):
    client.post(SIGNUP, json=ADA)
    client.post(VERIFY, json={"token": token_in(outbox_messages(settings)[0])})
    client.post(SIGNUP, json=ADA)
    notice = outbox_messages(settings)[1]
    assert "verify-email" not in body_of(notice)
    assert len(_token_rows(settings)) == 1


def test_no_mail_leaves_when_the_request_rolls_back(settings: Settings):
    database = Database(settings.database_url)
    sessions = transaction(database)
    service = AccountService(next(sessions), settings, Outbox(settings.outbox_dir))
    service.sign_up(ADA["email"], ADA["password"], ADA["name"])
    with pytest.raises(RuntimeError):
        sessions.throw(RuntimeError("a later step of the request failed"))
    with database.sessions() as session:
        assert session.scalar(select(func.count()).select_from(User)) == 0
    database.dispose()
    assert outbox_messages(settings) == []


def test_a_lost_race_for_the_same_email_is_answered_like_a_duplicate(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    database = Database(settings.database_url)
    with database.sessions() as first, database.sessions() as second:
        AccountService(first, settings, Outbox(settings.outbox_dir)).sign_up(**ADA)
        first.commit()
        loser = AccountService(second, settings, Outbox(settings.outbox_dir))
        # The loser looked before the winner committed, so it saw no account.
        lookups = iter([None])
        real_lookup = loser.accounts.user_by_email
        monkeypatch.setattr(
            loser.accounts, "user_by_email", lambda email: next(lookups, None) or real_lookup(email)
        )
        accepted = loser.sign_up(ADA["email"], "a different long password", ADA["name"])
        second.commit()
    database.dispose()
    assert accepted.email == "ada@example.com"
    [user] = _users(settings)
    assert user.email == "ada@example.com"


def test_the_outbox_writes_whole_files_or_nothing(tmp_path: Path, monkeypatch):
    from notefall.server.kit import mail

    outbox = Outbox(tmp_path / "outbox")
    path = outbox.send(mail.compose("ada@example.com", "Hello", "Body"))
    assert path.suffix == ".eml" and b"Subject: Hello" in path.read_bytes()

    def broken_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(mail.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        outbox.send(mail.compose("ada@example.com", "Again", "Body"))
    assert list((tmp_path / "outbox").iterdir()) == [path]
