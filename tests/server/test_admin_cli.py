"""``notefall admin ...`` in-process, on every backend: effects seen in the database and
through the API, one-line refusals with exit 2, and the not-migrated refusal."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from notefall.cli.main import EXIT_INPUT, EXIT_OK, main
from notefall.server.accounts.models import AuthSession, User
from notefall.server.activity.models import ActivityEvent
from notefall.server.kit.settings import Settings

from .conftest import TEST_SECRET_KEY, TestClient, body_of, outbox_messages, signed_in_headers
from .test_two_factor import (
    ADA,
    ME,
    enable_two_factor,
    install_clock,
    password_grant,
    rows,
    sign_in,
    sign_up,
)

PASSWORD = "an upright piano in the hall"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Settings:
    """NOTEFALL_* naming the same database, data folder and key as the test app's settings."""
    monkeypatch.setenv("NOTEFALL_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("NOTEFALL_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("NOTEFALL_SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv("NOTEFALL_ENVIRONMENT", "test")
    monkeypatch.setenv("NOTEFALL_PUBLIC_URL", "http://notefall.test")
    return settings


def admin(*args: str, stdin: str | None = None, monkeypatch: pytest.MonkeyPatch | None = None):
    if stdin is not None:
        assert monkeypatch is not None
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(["admin", *args])


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.startswith("notefall: error: ") and err.count("\n") == 1, err
    return err


def test_create_user_makes_a_verified_account_that_can_sign_in_on_its_tier(
    env: Settings,
    client: TestClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    code = admin(
        "create-user", "Grace@Example.com", "--name", "Grace Hopper", "--tier", "pro",
        "--password-stdin", stdin=PASSWORD + "\n", monkeypatch=monkeypatch,
    )  # fmt: skip
    assert code == EXIT_OK, capsys.readouterr().err
    assert "grace@example.com" in capsys.readouterr().out
    [user] = rows(env, User)
    assert (user.email, user.name, user.tier) == ("grace@example.com", "Grace Hopper", "pro")
    assert user.email_verified_at is not None
    assert outbox_messages(env) == []  # no verification mail: the operator vouched for it
    headers = sign_in(client, {"email": "grace@example.com", "password": PASSWORD})
    me = client.get(ME, headers=headers).json()
    assert me["tier"] == "pro" and me["name"] == "Grace Hopper"
    # The same address again is refused, and nothing changes.
    again = admin(
        "create-user", "grace@example.com", "--name", "Other", "--password-stdin",
        stdin=PASSWORD + "\n", monkeypatch=monkeypatch,
    )  # fmt: skip
    assert again == EXIT_INPUT
    assert "already has an account" in one_line_error(capsys)
    assert [u.name for u in rows(env, User)] == ["Grace Hopper"]


def test_create_user_asks_for_the_password_twice_without_echo(
    env: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    answers = iter([PASSWORD, PASSWORD + " typo"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert admin("create-user", "ada@example.com", "--name", "Ada") == EXIT_INPUT
    assert "differ" in one_line_error(capsys)
    answers = iter([PASSWORD, PASSWORD])
    assert admin("create-user", "ada@example.com", "--name", "Ada") == EXIT_OK
    assert [u.tier for u in rows(env, User)] == ["free"]


@pytest.mark.parametrize(
    ("password", "email", "message"),
    [
        ("short", "ada@example.com", "Use at least 10 characters"),
        ("password123", "ada@example.com", "lists attackers try first"),
        ("ada@example.com", "ada@example.com", "lists attackers try first"),
        (PASSWORD, "not-an-address", "email: must be an email address"),
    ],
)
def test_create_user_refuses_what_sign_up_refuses_with_the_same_message(
    env: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    password: str,
    email: str,
    message: str,
):
    code = admin(
        "create-user", email, "--name", "Ada", "--password-stdin",
        stdin=password + "\n", monkeypatch=monkeypatch,
    )  # fmt: skip
    assert code == EXIT_INPUT
    assert message in one_line_error(capsys)
    assert rows(env, User) == []


def test_set_tier_shows_in_me_and_in_the_activity_log(
    env: Settings, client: TestClient, capsys: pytest.CaptureFixture[str]
):
    headers = signed_in_headers(client, env, "ada@example.com")
    assert admin("set-tier", "ADA@example.com", "enterprise") == EXIT_OK
    assert "now on enterprise" in capsys.readouterr().out
    assert client.get(ME, headers=headers).json()["tier"] == "enterprise"
    changes = [e.detail for e in rows(env, ActivityEvent) if e.kind == "billing_changed"]
    assert changes == [{"tier": "enterprise", "by": "operator"}]
    # Asking again changes and records nothing.
    assert admin("set-tier", "ada@example.com", "enterprise") == EXIT_OK
    assert "already on enterprise" in capsys.readouterr().out
    assert len([e for e in rows(env, ActivityEvent) if e.kind == "billing_changed"]) == 1


def test_bad_tier_and_unknown_email_are_one_line_input_errors(
    env: Settings, client: TestClient, capsys: pytest.CaptureFixture[str]
):
    signed_in_headers(client, env, "ada@example.com")
    assert admin("set-tier", "ada@example.com", "platinum") == EXIT_INPUT
    assert "Unknown tier 'platinum'; use one of: free, pro, enterprise" in one_line_error(capsys)
    assert admin("list-users", "--tier", "gold") == EXIT_INPUT
    one_line_error(capsys)
    for command in ("set-tier", "disable-2fa", "show-user"):
        extra = ["pro"] if command == "set-tier" else []
        assert admin(command, "nobody@example.com", *extra) == EXIT_INPUT
        assert "No account has the address nobody@example.com" in one_line_error(capsys)
    # Two-factor that is not on is refused rather than silently "done".
    assert admin("disable-2fa", "ada@example.com") == EXIT_INPUT
    assert "not on for ada@example.com" in one_line_error(capsys)


def test_disable_2fa_lets_them_sign_in_without_a_code_and_ends_their_sessions(
    env: Settings, client: TestClient, capsys: pytest.CaptureFixture[str]
):
    clock = install_clock(client)
    sign_up(client, env, ADA)
    headers = sign_in(client, ADA)
    enable_two_factor(client, headers, clock)
    assert password_grant(client, ADA).json()["code"] == "otp_required"
    assert admin("disable-2fa", "ada@example.com") == EXIT_OK, capsys.readouterr().err
    assert client.get(ME, headers=headers).status_code == 401  # the old session ended
    assert all(s.revoked_at is not None for s in rows(env, AuthSession))
    notice = outbox_messages(env)[-1]
    assert notice["To"] == "ada@example.com" and "operator" in body_of(notice)
    new_headers = sign_in(client, ADA)  # the password alone
    assert client.get(ME, headers=new_headers).status_code == 200
    events = [e for e in rows(env, ActivityEvent) if e.kind == "two_factor_disabled"]
    assert [e.detail for e in events] == [{"by": "operator"}]


def test_show_user_and_list_users(
    env: Settings,
    client: TestClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    signed_in_headers(client, env, "ada@example.com")
    admin(
        "create-user", "bob@example.com", "--name", "Bob", "--tier", "pro", "--password-stdin",
        stdin=PASSWORD + "\n", monkeypatch=monkeypatch,
    )  # fmt: skip
    capsys.readouterr()
    assert admin("show-user", "ada@example.com") == EXIT_OK
    shown = dict(
        (label.rstrip(":"), value.strip())
        for label, value in (
            line.split(maxsplit=1) for line in capsys.readouterr().out.splitlines()
        )
    )
    assert shown == {
        "email": "ada@example.com",
        "name": "ada",
        "tier": "free",
        "verified": "yes",
        "2fa": "off",
        "sessions": "1",
        "projects": "0",
        "storage": "0 bytes",
    }
    assert admin("list-users") == EXIT_OK
    listed = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [(row[0], row[1]) for row in listed] == [
        ("ada@example.com", "free"),
        ("bob@example.com", "pro"),
    ]
    assert admin("list-users", "--tier", "pro") == EXIT_OK
    assert capsys.readouterr().out.split("\t")[0] == "bob@example.com"


def test_refuses_a_database_that_is_not_migrated(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("NOTEFALL_DATA_DIR", str(tmp_path))
    assert admin("list-users") == EXIT_INPUT
    assert "run `notefall serve` once" in one_line_error(capsys)
    assert not (tmp_path / "notefall.db").exists()  # refusing created nothing


def test_refuses_a_database_behind_the_latest_migration(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
):
    from alembic import command
    from notefall.server.migrations import alembic_config

    command.upgrade(alembic_config(database_url), "0001")
    monkeypatch.setenv("NOTEFALL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("NOTEFALL_DATABASE_URL", database_url)
    assert admin("show-user", "ada@example.com") == EXIT_INPUT
    assert "is not at the latest migration; run `notefall serve` once" in one_line_error(capsys)


def test_bad_settings_are_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("NOTEFALL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("NOTEFALL_ENVIRONMENT", "production")
    assert admin("list-users") == EXIT_INPUT
    one_line_error(capsys)
