"""Rate limits in Redis: sign-in backoff, sign-up and password-reset caps, API requests per minute.

Every counter changes in one Lua script, so concurrent requests cannot both slip under a
limit. Windows and locks are computed from the app's clock (``app.state.clock``, which tests
move instead of sleeping); Redis expiry only cleans up keys. Every limit is multiplied by
NOTEFALL_RATE_LIMIT_SCALE.

When Redis does not answer, sign-in, sign-up and password-reset requests are refused with
503 ``rate_limit_unavailable`` (failing open would let a password-guessing or mail-bombing
run go unchecked exactly while nobody watches), while the API limit lets requests through
and logs an error (throttling is fair use there, not protection, and failing closed would
take the whole API down with Redis).

Without NOTEFALL_REDIS_URL (an app built directly, e.g. by tests) there are no limits:
``notefall serve`` always has a Redis (it starts one in development and refuses to start
in production without one).
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from typing import Any, NoReturn

import redis
from fastapi import Request
from notefall.common.tiers import limits_for
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The module, not its classes: tests/server/test_server_docs.py collects the error classes
# found in this module's namespace, and only our own codes belong to it.
from . import errors as kit_errors

log = logging.getLogger("notefall.server.ratelimit")

# Headers a limit adds to the response (RateLimit-*, Retry-After), kept in the ASGI scope
# so the one middleware below can add them to whatever response the request ends with.
SCOPE_KEY = "notefall.rate_limit_headers"
KEY_PREFIX = "notefall:rl:"


class _Refusal(kit_errors.ProblemError):
    """A 429 whose answer carries Retry-After (and maybe RateLimit-*) headers."""

    status = HTTPStatus.TOO_MANY_REQUESTS
    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, detail: str, retry_after: float, **extra: str) -> None:
        super().__init__(detail)
        self.response_headers = {"Retry-After": str(max(1, math.ceil(retry_after))), **extra}


class TooManyAttemptsError(_Refusal):
    code = "too_many_attempts"
    title = "Too many sign-in attempts"


class RateLimitedError(_Refusal):
    """Over a request limit: sign-up, password reset, or the API's requests per minute."""


class RateLimitUnavailableError(kit_errors.ServiceUnavailableError):
    code = "rate_limit_unavailable"
    title = "Rate limiting unavailable"


@dataclass(frozen=True)
class WindowLimit:
    """At most ``limit`` requests per fixed ``window_seconds`` window."""

    name: str
    limit: int
    window_seconds: int


@dataclass(frozen=True)
class Backoff:
    """``free_failures`` failures cost nothing; each one after locks for ``first_lock_seconds``,
    doubled per further failure, up to ``max_lock_seconds``."""

    name: str
    free_failures: int
    first_lock_seconds: int = 60
    max_lock_seconds: int = 15 * 60
    # How long failures are remembered after the last one.
    memory_seconds: int = 24 * 60 * 60


HOUR = 60 * 60
SIGN_IN_PER_ACCOUNT = Backoff("sign-in-account", free_failures=5)
# Higher: many people can share one address (offices, carrier NAT).
SIGN_IN_PER_IP = Backoff("sign-in-ip", free_failures=20)
SIGN_UP_PER_IP = WindowLimit("sign-up-ip", limit=10, window_seconds=HOUR)
SIGN_UP_PER_ADDRESS = WindowLimit("sign-up-address", limit=3, window_seconds=HOUR)
PASSWORD_RESET_PER_IP = WindowLimit("password-reset-ip", limit=10, window_seconds=HOUR)
PASSWORD_RESET_PER_ADDRESS = WindowLimit("password-reset-address", limit=3, window_seconds=HOUR)
API_WINDOW_SECONDS = 60

# KEYS: counters; ARGV[1]: their time to live. Returns every count after the increment.
_COUNT = """
local counts = {}
for i, key in ipairs(KEYS) do
    counts[i] = redis.call('INCR', key)
    if counts[i] == 1 then redis.call('EXPIRE', key, ARGV[1]) end
end
return counts
"""
# KEYS: backoff hashes; ARGV: now, then per key (free, first, max, memory).
# Returns the latest locked-until time (string seconds) over the keys, or 0.
_FAIL = """
local now = tonumber(ARGV[1])
local latest = 0
for i, key in ipairs(KEYS) do
    local free, first = tonumber(ARGV[4*i-2]), tonumber(ARGV[4*i-1])
    local longest, memory = tonumber(ARGV[4*i]), tonumber(ARGV[4*i+1])
    local failures = redis.call('HINCRBY', key, 'failures', 1)
    if failures > free then
        local lock = math.min(first * 2 ^ (failures - free - 1), longest)
        local untl = now + lock
        local current = tonumber(redis.call('HGET', key, 'locked_until') or '0')
        if untl > current then redis.call('HSET', key, 'locked_until', tostring(untl)) end
        if untl > latest then latest = untl end
    end
    redis.call('EXPIRE', key, memory)
end
return tostring(latest)
"""


def _scaled(limit: int, scale: float) -> int:
    return max(1, round(limit * scale))


def _subject(value: str) -> str:
    # Hashed: addresses and IPs need not sit in Redis in the clear.
    return hashlib.sha256(value.strip().lower().encode()).hexdigest()[:32]


def client_ip(request: Request) -> str:
    """The peer address (behind a proxy, run uvicorn with --forwarded-allow-ips)."""
    return request.client.host if request.client else "unknown"


class RateLimiter:
    def __init__(self, client: redis.Redis, scale: float, clock: Callable[[], datetime]) -> None:
        self.client = client
        self.scale = scale
        self.clock = clock
        self._count = client.register_script(_COUNT)
        self._fail = client.register_script(_FAIL)

    def _now(self) -> float:
        return self.clock().timestamp()

    def close(self) -> None:
        self.client.close()

    # Fixed windows --------------------------------------------------------------------

    def hit(self, *limits: tuple[WindowLimit, str]) -> tuple[int, int, float]:
        """Count one request against each (limit, subject); returns (limit, remaining, reset
        seconds) of the tightest, or raises RateLimitedError with Retry-After."""
        now = self._now()
        keys, windows = [], []
        for limit, subject in limits:
            window = int(now // limit.window_seconds)
            keys.append(f"{KEY_PREFIX}{limit.name}:{_subject(subject)}:{window}")
            windows.append(limit.window_seconds)
        counts = self._count(keys=keys, args=[max(windows) + 60])
        tightest: tuple[int, int, float] | None = None
        for (limit, _subject_value), count in zip(limits, counts, strict=True):
            allowed = _scaled(limit.limit, self.scale)
            reset = limit.window_seconds - now % limit.window_seconds
            remaining = max(0, allowed - int(count))
            if int(count) > allowed:
                raise RateLimitedError(
                    f"Too many requests; try again in {_human(reset)}.",
                    reset,
                    **_ratelimit_headers(allowed, 0, reset),
                )
            if tightest is None or remaining < tightest[1]:
                tightest = (allowed, remaining, reset)
        assert tightest is not None
        return tightest

    # Sign-in backoff ------------------------------------------------------------------

    def _backoff_keys(self, account: str, ip: str) -> list[tuple[str, Backoff]]:
        return [
            (f"{KEY_PREFIX}{SIGN_IN_PER_ACCOUNT.name}:{_subject(account)}", SIGN_IN_PER_ACCOUNT),
            (f"{KEY_PREFIX}{SIGN_IN_PER_IP.name}:{_subject(ip)}", SIGN_IN_PER_IP),
        ]

    def locked_for(self, account: str, ip: str) -> float:
        """Seconds until the account or the address may try again (0: now)."""
        now = self._now()
        pipe = self.client.pipeline(transaction=False)
        for key, _rule in self._backoff_keys(account, ip):
            pipe.hget(key, "locked_until")
        until = max(float(value or 0) for value in pipe.execute())
        return max(0.0, until - now)

    def sign_in_failed(self, account: str, ip: str) -> None:
        args: list[Any] = [self._now()]
        keys = []
        for key, rule in self._backoff_keys(account, ip):
            keys.append(key)
            free = _scaled(rule.free_failures, self.scale)
            args += [free, rule.first_lock_seconds, rule.max_lock_seconds, rule.memory_seconds]
        self._fail(keys=keys, args=args)

    def sign_in_succeeded(self, account: str) -> None:
        self.client.delete(f"{KEY_PREFIX}{SIGN_IN_PER_ACCOUNT.name}:{_subject(account)}")


def _human(seconds: float) -> str:
    whole = max(1, math.ceil(seconds))  # as Retry-After says: never "0 seconds"
    if whole < 120:
        return "1 second" if whole == 1 else f"{whole} seconds"
    return f"{math.ceil(whole / 60)} minutes"  # 120 s and more: always 2 or more


def _ratelimit_headers(limit: int, remaining: int, reset: float) -> dict[str, str]:
    return {
        "RateLimit-Limit": str(limit),
        "RateLimit-Remaining": str(remaining),
        "RateLimit-Reset": str(math.ceil(reset)),
    }


def limiter_of(request: Request) -> RateLimiter | None:
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    return limiter


def _set_headers(request: Request, headers: dict[str, str]) -> None:
    request.scope.setdefault(SCOPE_KEY, {}).update(headers)


def _raise_with_headers(request: Request, error: _Refusal) -> NoReturn:
    _set_headers(request, error.response_headers)
    raise error


def _unavailable(exc: redis.RedisError) -> RateLimitUnavailableError:
    log.error("rate limits unavailable, refusing the request: %s", exc)
    return RateLimitUnavailableError(
        "We cannot check this request against abuse right now; try again in a minute."
    )


# What routes use ---------------------------------------------------------------------------


@contextmanager
def sign_in_attempt(
    request: Request, email: str, *, failures: tuple[type[BaseException], ...]
) -> Iterator[None]:
    """Around a password check: refuses with 429 ``too_many_attempts`` while the account or
    the address is locked, counts an exception of ``failures`` raised inside as a failed
    attempt, and on success clears the account's failures (the address keeps its count)."""
    limiter = limiter_of(request)
    if limiter is None:
        yield
        return
    ip = client_ip(request)
    try:
        wait = limiter.locked_for(email, ip)
    except redis.RedisError as exc:
        raise _unavailable(exc) from exc
    if wait > 0:
        _raise_with_headers(
            request,
            TooManyAttemptsError(
                f"Too many failed sign-ins; try again in {_human(wait)}, or reset your password.",
                wait,
            ),
        )
    try:
        yield
    except failures:
        try:
            limiter.sign_in_failed(email, ip)
        except redis.RedisError as exc:
            log.error("could not count a failed sign-in: %s", exc)
        raise
    try:
        limiter.sign_in_succeeded(email)
    except redis.RedisError as exc:
        log.error("could not reset sign-in failures: %s", exc)


def _limit_ip_and_address(
    ip_rule: WindowLimit, address_rule: WindowLimit
) -> Callable[[Request], Awaitable[None]]:
    async def dependency(request: Request) -> None:
        limiter = limiter_of(request)
        if limiter is None:
            return
        # FastAPI has read the body before the dependencies run; Starlette keeps it.
        try:
            body = await request.json()
        except ValueError:
            body = None
        address = str(body.get("email", "")) if isinstance(body, dict) else ""
        limits = [(ip_rule, client_ip(request))]
        if address:
            limits.append((address_rule, address))
        try:
            await run_in_threadpool(limiter.hit, *limits)
        except redis.RedisError as exc:
            raise _unavailable(exc) from exc
        except RateLimitedError as error:
            _raise_with_headers(request, error)

    return dependency


limit_sign_up = _limit_ip_and_address(SIGN_UP_PER_IP, SIGN_UP_PER_ADDRESS)
limit_password_reset = _limit_ip_and_address(PASSWORD_RESET_PER_IP, PASSWORD_RESET_PER_ADDRESS)


def limit_api_requests(request: Request, user_id: object, tier: str) -> None:
    """Count one authenticated request of ``user_id`` against its tier's requests per minute."""
    limiter = limiter_of(request)
    if limiter is None:
        return
    rule = WindowLimit(
        "api", limit=limits_for(tier).api_requests_per_minute, window_seconds=API_WINDOW_SECONDS
    )
    try:
        allowed, remaining, reset = limiter.hit((rule, str(user_id)))
    except redis.RedisError as exc:
        log.error("API rate limit not checked (Redis does not answer): %s", exc)
        return
    except RateLimitedError as error:
        _raise_with_headers(request, error)
    _set_headers(request, _ratelimit_headers(allowed, remaining, reset))


class RateLimitHeaders:
    """ASGI middleware: adds the headers a limit recorded to the response, errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start" and scope.get(SCOPE_KEY):
                headers = MutableHeaders(scope=message)
                for name, value in scope[SCOPE_KEY].items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def redis_client(url: str) -> redis.Redis:
    # Short timeouts: a Redis that hangs must not hold requests for long.
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
