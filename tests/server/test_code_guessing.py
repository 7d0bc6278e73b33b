"""Passwords and two-factor codes typed while signed in (re-authentication, two-factor changes,
account deletion) share sign-in's backoff: a stolen session cannot guess codes without limit."""

from __future__ import annotations

from pathlib import Path

import pytest
from notefall.server.kit.app import create_app
from notefall.server.kit.ratelimit import SIGN_IN_PER_ACCOUNT

from .conftest import TestClient, make_settings, signed_in_headers
from .test_app import assert_problem

PASSWORD = "falling notes over a grand piano"


@pytest.fixture
def strict(tmp_path: Path, migrated_url: str, redis_url: str):
    settings = make_settings(
        tmp_path / "data", migrated_url, redis_url=redis_url, rate_limit_scale=1.0
    )
    with TestClient(create_app(settings)) as client:
        yield client, settings


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/auth/reauth", {"password": "not my password"}),
        ("DELETE", "/api/v1/me", {"password": "not my password"}),
        (
            "POST",
            "/api/v1/me/password",
            {"current_password": "not my password", "new_password": "another long passphrase"},
        ),
    ],
)
def test_wrong_passwords_while_signed_in_lock_the_account_like_sign_in(strict, method, path, body):
    client, settings = strict
    headers = signed_in_headers(client, settings, "ada@example.com")
    # The free failures, then the one that starts the lock.
    for _ in range(SIGN_IN_PER_ACCOUNT.free_failures + 1):
        assert client.request(method, path, json=body, headers=headers).status_code == 400
    locked = client.request(method, path, json=body, headers=headers)
    assert_problem(locked, 429, "too_many_attempts")
    assert int(locked.headers["Retry-After"]) >= 1
    # The right password does not get through a lock either, here or at sign-in.
    right = client.post("/api/v1/auth/reauth", json={"password": PASSWORD}, headers=headers)
    assert_problem(right, 429, "too_many_attempts")
    form = {"grant_type": "password", "username": "ada@example.com", "password": PASSWORD}
    assert_problem(client.post("/api/v1/auth/token", data=form), 429, "too_many_attempts")
    assert client.get("/api/v1/me", headers=headers).status_code == 200


def test_two_factor_code_guesses_count_too(strict):
    client, settings = strict
    headers = signed_in_headers(client, settings, "ada@example.com")
    assert client.post("/api/v1/me/2fa/setup", headers=headers).status_code == 200
    # The free failures, then the one that starts the lock.
    for _ in range(SIGN_IN_PER_ACCOUNT.free_failures + 1):
        wrong = client.post("/api/v1/me/2fa/enable", json={"code": "000000"}, headers=headers)
        assert wrong.status_code == 400, wrong.text
    locked = client.post("/api/v1/me/2fa/enable", json={"code": "000000"}, headers=headers)
    assert_problem(locked, 429, "too_many_attempts")
