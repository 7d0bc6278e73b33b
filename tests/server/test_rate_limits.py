"""Rate limits on a real Redis: sign-in backoff, sign-up and reset caps, API requests per minute."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from notefall.common.tiers import Tier, limits_for
from notefall.server.kit.app import create_app
from notefall.server.kit.ratelimit import (
    SIGN_IN_PER_ACCOUNT,
    RateLimitedError,
    RateLimiter,
    WindowLimit,
)
from notefall.server.kit.redis_server import RedisServer
from notefall.server.kit.settings import Settings

from .conftest import TestClient, make_settings, signed_in_headers

PASSWORD = "falling notes over a grand piano"
START = datetime(2026, 11, 29, 12, 0, 30, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def _settings(tmp_path: Path, migrated_url: str, redis_url: str, scale: float) -> Settings:
    return make_settings(
        tmp_path / "data", migrated_url, redis_url=redis_url, rate_limit_scale=scale
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _client(settings: Settings, clock: Clock) -> TestClient:
    client = TestClient(create_app(settings))
    client.app.state.clock = clock  # type: ignore[attr-defined]
    return client


@pytest.fixture
def limiter(redis_url: str, clock: Clock) -> Iterator[RateLimiter]:
    limiter = RateLimiter(redis.Redis.from_url(redis_url), 1.0, clock)
    yield limiter
    limiter.close()


def _sign_in(client: TestClient, email: str, password: str) -> tuple[int, dict[str, str], str]:
    form = {"grant_type": "password", "username": email, "password": password}
    response = client.post("/api/v1/auth/token", data=form)
    code = response.json().get("code", "") if response.status_code >= 400 else ""
    return response.status_code, dict(response.headers), code


# The limiter itself (no database) -----------------------------------------------------------


def test_failed_sign_ins_lock_progressively_up_to_fifteen_minutes(
    limiter: RateLimiter, clock: Clock
):
    for _ in range(SIGN_IN_PER_ACCOUNT.free_failures):
        limiter.sign_in_failed("ada@example.com", "10.0.0.1")
    assert limiter.locked_for("ada@example.com", "10.0.0.1") == 0
    locks = []
    for _ in range(6):
        limiter.sign_in_failed("ada@example.com", "10.0.0.1")
        locks.append(limiter.locked_for("ada@example.com", "10.0.0.1"))
    assert locks == [60, 120, 240, 480, 900, 900]
    # Another account from another address is not affected; the lock ends with its time.
    assert limiter.locked_for("bob@example.com", "10.0.0.2") == 0
    clock.now += timedelta(seconds=901)
    assert limiter.locked_for("ada@example.com", "10.0.0.1") == 0
    limiter.sign_in_succeeded("ada@example.com")
    limiter.sign_in_failed("ada@example.com", "10.0.0.1")
    assert limiter.locked_for("ada@example.com", "10.0.0.1") == 0


def test_a_window_admits_exactly_its_limit_under_concurrency(limiter: RateLimiter):
    rule = WindowLimit("test", limit=5, window_seconds=60)

    def attempt(_: int) -> bool:
        try:
            limiter.hit((rule, "someone"))
        except RateLimitedError:
            return False
        return True

    with ThreadPoolExecutor(max_workers=10) as pool:
        admitted = list(pool.map(attempt, range(30)))
    assert admitted.count(True) == 5


# Through the API ------------------------------------------------------------------------------


def test_sign_in_locks_after_the_free_failures_and_success_resets(
    tmp_path: Path, migrated_url: str, redis_url: str, clock: Clock
):
    # Scale 0.4: two free failures per account (five at scale 1; the limiter test above
    # checks those numbers without paying for a password hash per attempt).
    settings = _settings(tmp_path, migrated_url, redis_url, 0.4)
    with _client(settings, clock) as client:
        signed_in_headers(client, settings, "ada@example.com")
        assert _sign_in(client, "ada@example.com", "wrong")[2] == "invalid_grant"
        # Success clears the account's failures: two more are free again.
        assert _sign_in(client, "ada@example.com", PASSWORD)[0] == 200
        for _ in range(3):
            assert _sign_in(client, "ada@example.com", "wrong")[2] == "invalid_grant"
        status, headers, code = _sign_in(client, "ada@example.com", PASSWORD)
        assert (status, code, headers["retry-after"]) == (429, "too_many_attempts", "60")
        clock.now += timedelta(seconds=61)
        assert _sign_in(client, "ada@example.com", PASSWORD)[0] == 200


def test_sign_in_failures_from_one_address_lock_that_address(
    tmp_path: Path, migrated_url: str, redis_url: str, clock: Clock
):
    # Scale 0.2: one free failure per account, four per address.
    settings = _settings(tmp_path, migrated_url, redis_url, 0.2)
    with _client(settings, clock) as client:
        for n in range(5):
            assert _sign_in(client, f"nobody{n}@example.com", "wrong")[2] == "invalid_grant"
        status, headers, code = _sign_in(client, "someone.else@example.com", "wrong")
        assert (status, code) == (429, "too_many_attempts")
        assert int(headers["retry-after"]) == 60


def test_api_requests_are_limited_per_user_by_tier(
    tmp_path: Path, migrated_url: str, redis_url: str, clock: Clock
):
    scale = 0.05  # the free tier's 60 a minute become 3
    settings = _settings(tmp_path, migrated_url, redis_url, scale)
    free = round(limits_for(Tier.FREE).api_requests_per_minute * scale)
    with _client(settings, clock) as client:
        headers = signed_in_headers(client, settings, "ada@example.com")
        for remaining in range(free - 1, -1, -1):
            response = client.get("/api/v1/me", headers=headers)
            assert response.status_code == 200
            assert response.headers["ratelimit-limit"] == str(free)
            assert response.headers["ratelimit-remaining"] == str(remaining)
            assert 0 < int(response.headers["ratelimit-reset"]) <= 60
        refused = client.get("/api/v1/me", headers=headers)
        assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
        assert refused.headers["retry-after"] == "30"  # START is 30 s into its minute
        assert refused.headers["ratelimit-remaining"] == "0"
        clock.now += timedelta(seconds=30)
        assert client.get("/api/v1/me", headers=headers).status_code == 200

        engine = sa.create_engine(settings.database_url)
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE users SET tier = 'pro'"))
        engine.dispose()
        pro = round(limits_for(Tier.PRO).api_requests_per_minute * scale)
        assert client.get("/api/v1/me", headers=headers).headers["ratelimit-limit"] == str(pro)


def test_sign_up_is_limited_per_address_and_per_ip(
    tmp_path: Path, migrated_url: str, redis_url: str, clock: Clock
):
    # Scale 0.5: two sign-ups per address and five per address of origin, an hour.
    settings = _settings(tmp_path, migrated_url, redis_url, 0.5)
    body = {"password": PASSWORD, "name": "Ada"}
    with _client(settings, clock) as client:
        codes = [
            client.post("/api/v1/auth/signup", json={**body, "email": email}).status_code
            for email in ["a@example.com"] * 3 + ["b@example.com", "c@example.com", "d@example.com"]
        ]
        assert codes == [201, 201, 429, 201, 201, 429]
        clock.now += timedelta(hours=1)
        assert (
            client.post("/api/v1/auth/signup", json={**body, "email": "d@example.com"}).status_code
            == 201
        )


def test_password_reset_requests_are_limited_per_address(
    tmp_path: Path, migrated_url: str, redis_url: str, clock: Clock
):
    settings = _settings(tmp_path, migrated_url, redis_url, 1.0)
    with _client(settings, clock) as client:
        # An address without an account is limited the same, so the answer tells nothing.
        answers = [
            client.post("/api/v1/auth/password-reset/request", json={"email": "x@example.com"})
            for _ in range(4)
        ]
        assert [a.status_code for a in answers] == [202, 202, 202, 429]
        assert answers[-1].json()["code"] == "rate_limited"
        assert int(answers[-1].headers["retry-after"]) == 3600 - 30


def test_without_redis_sign_in_fails_closed_and_the_api_stays_open(
    tmp_path: Path, migrated_url: str, clock: Clock
):
    with RedisServer(tmp_path / "redis", persistent=False) as own_redis:
        settings = _settings(tmp_path, migrated_url, own_redis.url, 1.0)
        with _client(settings, clock) as client:
            headers = signed_in_headers(client, settings, "ada@example.com")
            own_redis.stop()
            me = client.get("/api/v1/me", headers=headers)
            assert me.status_code == 200 and "ratelimit-limit" not in me.headers
            status, _headers, code = _sign_in(client, "ada@example.com", PASSWORD)
            assert (status, code) == (503, "rate_limit_unavailable")
            signup = {"email": "bob@example.com", "password": PASSWORD, "name": "Bob"}
            assert client.post("/api/v1/auth/signup", json=signup).status_code == 503
