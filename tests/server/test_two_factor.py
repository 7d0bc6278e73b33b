"""Two-factor sign-in (TOTP and recovery codes) through the HTTP API, on every backend.

Codes are computed with pyotp at the app's injected clock, so time steps are exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from notefall.server.accounts.models import RecoveryCode, TwoFactor
from notefall.server.accounts.two_factor import SecretBox
from notefall.server.kit.db import Database
from notefall.server.kit.settings import Settings
from sqlalchemy import select

from .conftest import TEST_SECRET_KEY, TestClient, outbox_messages, token_in
from .test_app import assert_problem

TOKEN = "/api/v1/auth/token"
ME = "/api/v1/me"
SETUP = "/api/v1/me/2fa/setup"
ENABLE = "/api/v1/me/2fa/enable"
DISABLE = "/api/v1/me/2fa/disable"
RECOVERY = "/api/v1/me/2fa/recovery-codes"
ACTIVITY = "/api/v1/me/activity"
ADA = {"email": "ada@example.com", "password": "falling notes over a grand", "name": "Ada Lovelace"}
BOB = {"email": "bob@example.com", "password": "a quiet upright in the hall", "name": "Bob"}
# The start of a 30-second step, so "+29 s" stays inside it.
START = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)


@dataclass
class Clock:
    """The app's clock, moved by the test: app.state.clock reads it on every call."""

    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def install_clock(client: TestClient) -> Clock:
    clock = Clock()
    client.app.state.clock = clock  # type: ignore[attr-defined]
    return clock


@pytest.fixture
def clock(client: TestClient) -> Clock:
    return install_clock(client)


def refreshed(client: TestClient, tokens: dict) -> tuple[dict, dict[str, str]]:
    """Exchange the refresh token: (the new tokens, their Authorization header)."""
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    response = client.post(TOKEN, data=form)
    assert response.status_code == 200, response.text
    new = response.json()
    return new, {"Authorization": f"Bearer {new['access_token']}"}


def sign_up(client: TestClient, settings: Settings, account: dict) -> None:
    assert client.post("/api/v1/auth/signup", json=account).status_code == 201
    token = token_in(outbox_messages(settings)[-1])
    assert client.post("/api/v1/auth/verify-email", json={"token": token}).status_code == 200


def password_grant(client: TestClient, account: dict, otp: str | None = None):
    form = {"grant_type": "password", "username": account["email"], "password": account["password"]}
    if otp is not None:
        form["otp"] = otp
    return client.post(TOKEN, data=form)


def sign_in(client: TestClient, account: dict, otp: str | None = None) -> dict[str, str]:
    response = password_grant(client, account, otp)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def code_at(secret: str, now: datetime, steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(now + timedelta(seconds=30 * steps))


def enable_two_factor(client: TestClient, headers: dict, clock: Clock) -> tuple[str, list[str]]:
    """Set up and enable 2FA (the session must be freshly signed in); (secret, codes)."""
    setup = client.post(SETUP, headers=headers)
    assert setup.status_code == 200, setup.text
    secret = setup.json()["secret"]
    enabled = client.post(ENABLE, json={"code": code_at(secret, clock.now)}, headers=headers)
    assert enabled.status_code == 200, enabled.text
    return secret, enabled.json()["recovery_codes"]


def activity_kinds(client: TestClient, headers: dict) -> list[str]:
    response = client.get(ACTIVITY, headers=headers, params={"limit": 200})
    assert response.status_code == 200, response.text
    return [item["kind"] for item in response.json()["items"]]


def rows(settings: Settings, model: type) -> list:
    database = Database(settings.database_url)
    with database.sessions() as session:
        found = list(session.scalars(select(model)))
    database.dispose()
    return found


@pytest.fixture
def ada(client: TestClient, settings: Settings, clock: Clock) -> dict[str, str]:
    """Ada, signed up, confirmed and freshly signed in: her Authorization header."""
    sign_up(client, settings, ADA)
    return sign_in(client, ADA)


def test_setup_gives_a_secret_its_uri_and_a_qr_code_and_changes_nothing_yet(
    client: TestClient, settings: Settings, ada: dict
):
    response = client.post(SETUP, headers=ada)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    body = response.json()
    secret = body["secret"]
    assert len(secret) >= 16 and set(secret) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    assert body["otpauth_uri"].startswith("otpauth://totp/Notefall:ada%40example.com?")
    assert f"secret={secret}" in body["otpauth_uri"] and "issuer=Notefall" in body["otpauth_uri"]
    assert body["qr_svg"].startswith("<svg") and body["qr_svg"].rstrip().endswith("</svg>")
    # Pending: sign-in does not ask for a code, /me says off.
    assert client.get(ME, headers=ada).json()["two_factor_enabled"] is False
    assert password_grant(client, ADA).status_code == 200
    # Stored encrypted: the row does not hold the secret, the server key opens it.
    [row] = rows(settings, TwoFactor)
    assert secret not in row.secret_ciphertext
    assert SecretBox(TEST_SECRET_KEY).open(row.secret_ciphertext) == secret
    assert row.enabled_at is None


def test_enabling_needs_a_right_code_and_returns_ten_recovery_codes_once(
    client: TestClient, settings: Settings, ada: dict, clock: Clock
):
    secret = client.post(SETUP, headers=ada).json()["secret"]
    assert_problem(client.post(ENABLE, json={"code": "000000"}, headers=ada), 400, "invalid_otp")
    assert client.get(ME, headers=ada).json()["two_factor_enabled"] is False
    response = client.post(ENABLE, json={"code": code_at(secret, clock.now)}, headers=ada)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    codes = response.json()["recovery_codes"]
    assert len(codes) == len(set(codes)) == 10
    assert client.get(ME, headers=ada).json()["two_factor_enabled"] is True
    stored = rows(settings, RecoveryCode)
    assert len(stored) == 10
    assert not any(code.replace("-", "") in row.code_hash for row in stored for code in codes)
    # Enabling twice, or a new set-up while on, is refused.
    again = client.post(ENABLE, json={"code": code_at(secret, clock.now, 1)}, headers=ada)
    assert_problem(again, 409, "two_factor_state")
    assert_problem(client.post(SETUP, headers=ada), 409, "two_factor_state")


def test_a_new_setup_replaces_a_pending_secret(client: TestClient, ada: dict, clock: Clock):
    first = client.post(SETUP, headers=ada).json()["secret"]
    second = client.post(SETUP, headers=ada).json()["secret"]
    assert first != second
    stale = client.post(ENABLE, json={"code": code_at(first, clock.now)}, headers=ada)
    assert_problem(stale, 400, "invalid_otp")
    fresh = client.post(ENABLE, json={"code": code_at(second, clock.now)}, headers=ada)
    assert fresh.status_code == 200


def test_once_on_sign_in_asks_for_the_code_and_refuses_a_wrong_one(
    client: TestClient, ada: dict, clock: Clock
):
    secret, _ = enable_two_factor(client, ada, clock)
    clock.advance(seconds=30)
    required = assert_problem(password_grant(client, ADA), 401, "otp_required")
    assert "otp" in required["detail"]
    assert_problem(password_grant(client, ADA, otp="123456"), 400, "invalid_otp")
    # A wrong password is still just a wrong password, code or not.
    wrong = {**ADA, "password": "not the password at all"}
    assert_problem(password_grant(client, wrong, code_at(secret, clock.now)), 400, "invalid_grant")
    assert password_grant(client, ADA, otp=code_at(secret, clock.now)).status_code == 200
    kinds = activity_kinds(client, ada)
    assert kinds.count("sign_in_failed") == 2 and "two_factor_enabled" in kinds


def test_a_code_works_once_even_inside_the_window(client: TestClient, ada: dict, clock: Clock):
    secret, _ = enable_two_factor(client, ada, clock)
    # The enabling code is spent: the same code, same step, is refused.
    assert_problem(password_grant(client, ADA, code_at(secret, clock.now)), 400, "invalid_otp")
    # The next step's code is fresh (the window allows one step ahead)...
    assert password_grant(client, ADA, code_at(secret, clock.now, 1)).status_code == 200
    # ...and once it is used, no code of that step or before works again.
    assert_problem(password_grant(client, ADA, code_at(secret, clock.now, 1)), 400, "invalid_otp")
    clock.advance(seconds=30)
    assert_problem(password_grant(client, ADA, code_at(secret, clock.now)), 400, "invalid_otp")
    assert_problem(password_grant(client, ADA, code_at(secret, clock.now, -1)), 400, "invalid_otp")
    assert password_grant(client, ADA, code_at(secret, clock.now, 1)).status_code == 200


def test_the_window_is_one_step_either_side(client: TestClient, ada: dict, clock: Clock):
    secret, _ = enable_two_factor(client, ada, clock)
    clock.advance(minutes=5)
    assert_problem(password_grant(client, ADA, code_at(secret, clock.now, -2)), 400, "invalid_otp")
    assert_problem(password_grant(client, ADA, code_at(secret, clock.now, 2)), 400, "invalid_otp")
    # A phone 25 seconds slow: the previous step's code is accepted.
    assert password_grant(client, ADA, code_at(secret, clock.now, -1)).status_code == 200


def test_a_recovery_code_signs_in_once(client: TestClient, ada: dict, clock: Clock):
    _, codes = enable_two_factor(client, ada, clock)
    # Typed loosely (upper case, no dash, spaces) it still counts.
    typed = f"  {codes[0].replace('-', '').upper()} "
    assert password_grant(client, ADA, typed).status_code == 200
    assert_problem(password_grant(client, ADA, codes[0]), 400, "invalid_otp")
    assert password_grant(client, ADA, codes[1]).status_code == 200
    response = client.get(ACTIVITY, headers=ada)
    used = [item for item in response.json()["items"] if item["kind"] == "recovery_code_used"]
    assert sorted(item["detail"]["codes_left"] for item in used) == [8, 9]


def test_new_recovery_codes_retire_the_old_ones(client: TestClient, ada: dict, clock: Clock):
    _, old = enable_two_factor(client, ada, clock)
    response = client.post(RECOVERY, headers=ada)
    assert response.status_code == 200
    new = response.json()["recovery_codes"]
    assert len(new) == 10 and not set(new) & set(old)
    assert_problem(password_grant(client, ADA, old[0]), 400, "invalid_otp")
    assert password_grant(client, ADA, new[0]).status_code == 200


def test_disabling_needs_a_code_and_turns_the_code_prompt_off(
    client: TestClient, settings: Settings, ada: dict, clock: Clock
):
    assert_problem(
        client.post(DISABLE, json={"code": "000000"}, headers=ada), 409, "two_factor_state"
    )
    _, codes = enable_two_factor(client, ada, clock)
    assert_problem(client.post(DISABLE, json={"code": "999999"}, headers=ada), 400, "invalid_otp")
    assert client.post(DISABLE, json={"code": codes[3]}, headers=ada).status_code == 204
    assert client.get(ME, headers=ada).json()["two_factor_enabled"] is False
    assert password_grant(client, ADA).status_code == 200
    assert rows(settings, TwoFactor) == [] and rows(settings, RecoveryCode) == []
    assert_problem(client.post(RECOVERY, headers=ada), 409, "two_factor_state")
    kinds = activity_kinds(client, ada)
    assert {"two_factor_enabled", "recovery_code_used", "two_factor_disabled"} <= set(kinds)


def test_one_accounts_codes_do_not_open_another(
    client: TestClient, settings: Settings, ada: dict, clock: Clock
):
    secret, codes = enable_two_factor(client, ada, clock)
    sign_up(client, settings, BOB)
    bob = sign_in(client, BOB)
    bob_secret, _ = enable_two_factor(client, bob, clock)
    assert bob_secret != secret
    assert_problem(password_grant(client, BOB, codes[0]), 400, "invalid_otp")
    assert password_grant(client, ADA, codes[0]).status_code == 200
