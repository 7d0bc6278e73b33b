"""The browser's sign-in cookie and the CSRF rules that come with it.

A browser sign-in opens an ordinary session (listed in GET /me/sessions, ended there like
any other) and gives the browser a random cookie that stands for it; only the cookie's
SHA-256 is stored. Because a browser sends the cookie on its own, every state-changing
request it authenticates must also carry a CSRF token: an HMAC of the session id, which a
page of another site cannot read, checked in constant time, plus the Origin (or Referer)
header when the browser sends one. Bearer-token requests carry no ambient credential and
need none of this.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from fastapi import Request, Response
from notefall.server.accounts.errors import InvalidAccessTokenError
from notefall.server.accounts.sign_in import Authenticated, SignInService
from notefall.server.kit.security import (
    hash_token,
    issue_access_token,
    issue_token,
    sign,
    token_is_signed,
)
from notefall.server.kit.settings import Settings
from sqlalchemy import select
from sqlalchemy.orm import Session

from .errors import CsrfFailedError
from .models import BrowserSession

Clock = Callable[[], datetime]

SESSION_COOKIE = "notefall_session"
# The sign-in form's own CSRF cookie, before any session exists (double submit).
SIGNIN_CSRF_COOKIE = "notefall_signin_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
BROWSER_SESSION_LIFETIME = timedelta(days=30)
# The expiry slides on use, but rewriting the row and the cookie on every request would
# turn every page view into a write: once a day is enough for a 30-day lifetime.
SLIDE_RESOLUTION = timedelta(days=1)
CSRF_PURPOSE = "csrf"
SIGNIN_CSRF_PURPOSE = "signin-csrf"
COOKIE_PURPOSE = "browser-session"


@dataclass(frozen=True)
class ResolvedCookie:
    browser_session: BrowserSession
    # True when the expiry moved and the browser should get the cookie again.
    slid: bool


class BrowserSessions:
    """The cookies of browser sessions. Never commits: the request's session does, once."""

    def __init__(self, session: Session, settings: Settings, clock: Clock) -> None:
        self.session = session
        self.settings = settings
        self.clock = clock

    def open(self, session_id: uuid.UUID) -> str:
        """A new cookie value for the session ``session_id``."""
        issued = issue_token(self._secret, COOKIE_PURPOSE)
        self.session.add(
            BrowserSession(
                session_id=session_id,
                cookie_hash=issued.token_hash,
                expires_at=self.clock() + BROWSER_SESSION_LIFETIME,
            )
        )
        self.session.flush()
        return issued.token

    def resolve(self, cookie: str) -> ResolvedCookie | None:
        """The unexpired browser session of ``cookie`` (its expiry slid forward), or None.

        Whether its session is still active is the caller's check."""
        if not token_is_signed(self._secret, COOKIE_PURPOSE, cookie):
            return None
        found = self.session.scalar(
            select(BrowserSession).where(BrowserSession.cookie_hash == hash_token(cookie))
        )
        now = self.clock()
        if found is None or found.expires_at <= now:
            return None
        renewed = now + BROWSER_SESSION_LIFETIME
        slid = renewed - found.expires_at >= SLIDE_RESOLUTION
        if slid:
            found.expires_at = renewed
        return ResolvedCookie(browser_session=found, slid=slid)

    @property
    def _secret(self) -> str:
        return self.settings.secret_key.get_secret_value()


def set_session_cookie(response: Response, cookie: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=int(BROWSER_SESSION_LIFETIME.total_seconds()),
        path="/",
        secure=True,
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="lax")


def csrf_token_for(secret_key: str, session_id: uuid.UUID) -> str:
    """The session's CSRF token: stable for the session, useless for any other."""
    return sign(secret_key, CSRF_PURPOSE, session_id.hex)


def new_signin_csrf_token(secret_key: str) -> str:
    return issue_token(secret_key, SIGNIN_CSRF_PURPOSE).token


def signin_csrf_cookie_is_valid(secret_key: str, cookie: str | None) -> bool:
    return bool(cookie) and token_is_signed(secret_key, SIGNIN_CSRF_PURPOSE, cookie or "")


def set_signin_csrf_cookie(response: Response, token: str) -> None:
    # No max_age: it lives as long as the browser window, and only guards the sign-in form.
    response.set_cookie(
        SIGNIN_CSRF_COOKIE, token, path="/", secure=True, httponly=True, samesite="lax"
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(request: Request, public_url: str) -> bool:
    """False when the browser says the request comes from a page of another origin.

    Browsers send Origin on every cross-origin POST; Referer is the fallback for the few
    that do not. Neither present (a non-browser client) is let through: the token decides.
    """
    claimed = request.headers.get("origin") or request.headers.get("referer")
    if not claimed:
        return True
    return _origin(claimed) == _origin(public_url)


def check_session_csrf(
    request: Request, settings: Settings, session_id: uuid.UUID, submitted: str | None
) -> None:
    """CsrfFailedError unless ``submitted`` is the session's token and the origin is ours."""
    expected = csrf_token_for(settings.secret_key.get_secret_value(), session_id)
    if not submitted or not hmac.compare_digest(submitted.encode(), expected.encode()):
        raise CsrfFailedError(
            f"Send the page's CSRF token in the {CSRF_HEADER} header (or the {CSRF_FIELD} form "
            "field) with every change made with the sign-in cookie; get it from "
            "GET /api/v1/auth/csrf, or reload the page."
        )
    if not same_origin(request, settings.public_url):
        raise CsrfFailedError(
            "This request comes from a page of another site; changes made with the sign-in "
            f"cookie are only accepted from {settings.public_url}."
        )


def check_signin_csrf(
    request: Request, settings: Settings, cookie: str | None, submitted: str | None
) -> None:
    """The sign-in form's double-submit check: its field must echo our signed cookie."""
    valid = signin_csrf_cookie_is_valid(settings.secret_key.get_secret_value(), cookie)
    if (
        not valid
        or not submitted
        or not hmac.compare_digest((cookie or "").encode(), submitted.encode())
        or not same_origin(request, settings.public_url)
    ):
        raise CsrfFailedError(
            "The sign-in form expired or was sent from another site; reload the page and "
            "sign in again."
        )


async def submitted_csrf_token(request: Request) -> str | None:
    """The CSRF token a cookie-authenticated request carries: the header, else the form field.

    Reads the form only for a cookie request without the header (FastAPI has usually
    parsed it already, and Starlette keeps the parsed form)."""
    header = request.headers.get(CSRF_HEADER)
    if header or request.method in SAFE_METHODS or SESSION_COOKIE not in request.cookies:
        return header
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return None
    value = (await request.form()).get(CSRF_FIELD)
    return value if isinstance(value, str) else None


def authenticate_cookie(
    request: Request,
    response: Response,
    sign_in: SignInService,
    cookie: str,
    submitted_csrf: str | None,
) -> Authenticated:
    """The user and session of the sign-in cookie; changes also need the CSRF token."""
    resolved = BrowserSessions(sign_in.session, sign_in.settings, sign_in.clock).resolve(cookie)
    refused = InvalidAccessTokenError(
        "Your browser sign-in has ended or expired; sign in again at /signin (or send "
        "'Authorization: Bearer <token>')."
    )
    if resolved is None:
        raise refused
    session_id = resolved.browser_session.session_id
    # The session's own rules (revoked, lapsed, last seen) are the bearer path's; checking a
    # one-minute access token of this session runs exactly that code.
    secret = sign_in.settings.secret_key.get_secret_value()
    probe = issue_access_token(secret, session_id, sign_in.clock() + timedelta(minutes=1))
    try:
        current = sign_in.authenticate(probe)
    except InvalidAccessTokenError:
        raise refused from None
    if request.method not in SAFE_METHODS:
        check_session_csrf(request, sign_in.settings, session_id, submitted_csrf)
    if resolved.slid:
        set_session_cookie(response, cookie)
    return current
