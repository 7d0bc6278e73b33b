"""The pages behind the links in our mails, and the forms that lead to them: sign-up, email
verification, a forgotten password and its reset, and the email-change confirmation.

No link changes anything when it is merely opened: mail scanners fetch links on their own,
so each one shows a page whose button POSTs. Before any session exists, the forms use the
sign-in form's double-submit CSRF cookie. Each POST runs its work in a transaction of its
own, so a refused change rolls back exactly as the API's would (the request-session
dependency would commit whatever a caught error left behind).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import redis
from fastapi import APIRouter, Form, Request, Response
from notefall.server.accounts.email_change import EmailChangeService
from notefall.server.accounts.errors import EmailTakenError, InvalidTokenError
from notefall.server.accounts.password_reset import RESET_ACCEPTED_DETAIL, PasswordService
from notefall.server.accounts.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from notefall.server.accounts.schemas import SignupRequest
from notefall.server.accounts.service import VERIFICATION_TOKEN_LIFETIME, AccountService
from notefall.server.accounts.tokens import SingleUseTokens, TokenPurpose
from notefall.server.kit.db import transaction_scope
from notefall.server.kit.errors import ProblemError
from notefall.server.kit.ratelimit import (
    PASSWORD_RESET_PER_ADDRESS,
    PASSWORD_RESET_PER_IP,
    SIGN_UP_PER_ADDRESS,
    SIGN_UP_PER_IP,
    RateLimitUnavailableError,
    WindowLimit,
    client_ip,
    limiter_of,
)
from notefall.server.kit.settings import Settings
from pydantic import ValidationError
from sqlalchemy.orm import Session

from .errors import CsrfFailedError
from .pages import device_of, render
from .session import (
    SESSION_COOKIE,
    SIGNIN_CSRF_COOKIE,
    BrowserSessions,
    check_signin_csrf,
    clear_session_cookie,
    new_signin_csrf_token,
    set_session_cookie,
    set_signin_csrf_cookie,
    signin_csrf_cookie_is_valid,
)

log = logging.getLogger("notefall.server")

account_pages = APIRouter(include_in_schema=False)

# Form fields are checked here, not by FastAPI, so a bad value gets the page, not JSON.
FormText = Annotated[str, Form()]

FORM_EXPIRED = "This form expired or was sent from another site; reload the page and try again."
INVALID_LINK_HEADING = "This link no longer works"


# Plumbing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Services:
    session: Session
    settings: Settings
    accounts: AccountService
    passwords: PasswordService
    email_changes: EmailChangeService
    tokens: SingleUseTokens


@contextmanager
def services(request: Request) -> Iterator[Services]:
    """The accounts services over one transaction: committed (then mails sent) when the
    block ends, rolled back when it raises."""
    state = request.app.state
    settings: Settings = state.settings
    with transaction_scope(state.database) as session:
        yield Services(
            session=session,
            settings=settings,
            accounts=AccountService(session, settings, state.mailer, state.clock),
            passwords=PasswordService(session, settings, state.mailer, state.clock),
            email_changes=EmailChangeService(session, settings, state.mailer, state.clock),
            tokens=SingleUseTokens(session, settings.secret_key.get_secret_value()),
        )


def form_page(
    request: Request,
    template: str,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Response:
    """A page with a form: it carries the double-submit token, and the browser its cookie."""
    secret = request.app.state.settings.secret_key.get_secret_value()
    token = request.cookies.get(SIGNIN_CSRF_COOKIE)
    if token is None or not signin_csrf_cookie_is_valid(secret, token):
        token = new_signin_csrf_token(secret)
    page = render(request, template, status_code, csrf_token=token, **context)
    for name, value in (headers or {}).items():
        page.headers[name] = value
    set_signin_csrf_cookie(page, token)
    return page


def notice(
    request: Request,
    heading: str,
    message: str,
    *,
    status_code: int = 200,
    tone: str = "info",
    action: tuple[str, str] | None = None,
) -> Response:
    """A page that only tells: a mail was sent, a change is done, a link is dead."""
    return render(
        request,
        "notice.html",
        status_code,
        heading=heading,
        message=message,
        tone=tone,
        action_href=action[0] if action else None,
        action_label=action[1] if action else None,
    )


def check_form(request: Request, submitted: str) -> None:
    """CsrfFailedError unless the form echoes our signed cookie and comes from our origin."""
    settings: Settings = request.app.state.settings
    try:
        check_signin_csrf(request, settings, request.cookies.get(SIGNIN_CSRF_COOKIE), submitted)
    except CsrfFailedError:
        # The sign-in form's own words speak of signing in; these forms do other things.
        raise CsrfFailedError(FORM_EXPIRED) from None


def refused_form(
    request: Request, template: str, error: CsrfFailedError, **context: Any
) -> Response:
    return form_page(request, template, int(error.status), error=error.detail, **context)


def count_against(
    request: Request, ip_rule: WindowLimit, address_rule: WindowLimit, address: str
) -> None:
    """The API's sign-up and reset limits, counted the same way (per IP, and per address
    when one is given); RateLimitedError when over, failing closed when Redis is down."""
    limiter = limiter_of(request)
    if limiter is None:
        return
    limits = [(ip_rule, client_ip(request))]
    if address.strip():
        limits.append((address_rule, address))
    try:
        limiter.hit(*limits)
    except redis.RedisError as exc:
        log.error("rate limits unavailable, refusing the form: %s", exc)
        raise RateLimitUnavailableError(
            "We cannot check this request against abuse right now; try again in a minute."
        ) from exc


def headers_of(error: ProblemError) -> dict[str, str]:
    # A rate limit's Retry-After and RateLimit-* travel with the page as with the API.
    extra: dict[str, str] = getattr(error, "response_headers", {})
    return {**error.headers, **extra}


def invalid_link(request: Request, message: str, action: tuple[str, str]) -> Response:
    return notice(
        request, INVALID_LINK_HEADING, message, status_code=400, tone="error", action=action
    )


def link_is_live(request: Request, purpose: TokenPurpose, token: str) -> str | None:
    """The payload ('' when none) of a usable token, or None; reads, never spends."""
    if not token or len(token) > 200:
        return None
    with services(request) as found:
        stored = found.tokens.find_valid(purpose, token, request.app.state.clock())
        return None if stored is None else (stored.payload or "")


# Sign-up and email verification ------------------------------------------------------------

SIGNUP_FIELD_MESSAGES = {
    "email": "Enter your email address, such as ada@example.com.",
    "name": "Enter your name (at most 200 characters).",
    "password": f"Choose a password of at most {MAX_PASSWORD_LENGTH} characters.",
}
VERIFICATION_HOURS = int(VERIFICATION_TOKEN_LIFETIME.total_seconds() // 3600)
VERIFY_INVALID = (
    "This confirmation link is invalid, expired or already used. If your address is not "
    "confirmed yet, sign up again with the same address: we mail a new link."
)


def signup_form(
    request: Request,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Response:
    values = {"error": None, "name": "", "email": "", **context}
    return form_page(
        request,
        "signup.html",
        status_code,
        headers,
        min_password_length=MIN_PASSWORD_LENGTH,
        max_password_length=MAX_PASSWORD_LENGTH,
        **values,
    )


@account_pages.get("/signup")
def signup_page(request: Request) -> Response:
    return signup_form(request)


@account_pages.post("/signup")
def signup(
    request: Request,
    name: FormText = "",
    email: FormText = "",
    password: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    kept: dict[str, Any] = {"name": name[:200], "email": email[:320]}
    try:
        check_form(request, csrf_token)
    except CsrfFailedError as error:
        return signup_form(request, int(error.status), error=error.detail, **kept)
    try:
        count_against(request, SIGN_UP_PER_IP, SIGN_UP_PER_ADDRESS, email)
        try:
            body = SignupRequest(email=email, password=password, name=name)
        except ValidationError as invalid:
            field = str(invalid.errors()[0]["loc"][0])
            message = SIGNUP_FIELD_MESSAGES.get(field, SIGNUP_FIELD_MESSAGES["email"])
            return signup_form(request, 422, error=message, **kept)
        with services(request) as do:
            # The API's very answer: the same for an address that already has an account.
            accepted = do.accounts.sign_up(body.email, body.password, body.name, device_of(request))
    except ProblemError as error:
        return signup_form(
            request, int(error.status), headers_of(error), error=error.detail, **kept
        )
    return notice(
        request,
        "Check your inbox",
        f"We sent a link to {accepted.email}. Open it within {VERIFICATION_HOURS} hours to "
        "confirm the address, then sign in. No mail? Look in the spam folder, or sign up again "
        "to get a new link.",
        action=("/signin", "Go to sign-in"),
    )


@account_pages.get("/verify-email")
def verify_email_page(request: Request, token: str = "") -> Response:
    if link_is_live(request, TokenPurpose.VERIFY_EMAIL, token) is None:
        return invalid_link(request, VERIFY_INVALID, ("/signup", "Sign up again"))
    return form_page(request, "verify_email.html", token=token)


@account_pages.post("/verify-email")
def verify_email(request: Request, token: FormText = "", csrf_token: FormText = "") -> Response:
    try:
        check_form(request, csrf_token)
    except CsrfFailedError as error:
        return refused_form(request, "verify_email.html", error, token=token)
    try:
        with services(request) as do:
            user = do.accounts.verify_email(token, device_of(request))
            email = user.email
    except InvalidTokenError:
        return invalid_link(request, VERIFY_INVALID, ("/signup", "Sign up again"))
    return notice(
        request,
        "Your address is confirmed",
        f"{email} is confirmed. You can sign in to Notefall now.",
        tone="success",
        action=("/signin", "Sign in"),
    )


# Forgotten password ------------------------------------------------------------------------

RESET_INVALID = (
    "This password-reset link is invalid, expired or already used (each link works once, "
    "within an hour, and a newer request replaces it). Ask for a new one."
)


def reset_form(request: Request, token: str, status_code: int = 200, **context: Any) -> Response:
    return form_page(
        request,
        "reset_password.html",
        status_code,
        token=token,
        min_password_length=MIN_PASSWORD_LENGTH,
        max_password_length=MAX_PASSWORD_LENGTH,
        **{"error": None, **context},
    )


@account_pages.get("/forgot-password")
def forgot_password_page(request: Request) -> Response:
    return form_page(request, "forgot_password.html", error=None, email="")


@account_pages.post("/forgot-password")
def forgot_password(request: Request, email: FormText = "", csrf_token: FormText = "") -> Response:
    kept = email[:320]
    try:
        check_form(request, csrf_token)
    except CsrfFailedError as error:
        return refused_form(request, "forgot_password.html", error, email=kept)
    if not email.strip() or len(email) > 320:
        return form_page(
            request, "forgot_password.html", 422, error="Enter your email address.", email=kept
        )
    try:
        count_against(request, PASSWORD_RESET_PER_IP, PASSWORD_RESET_PER_ADDRESS, email)
        with services(request) as do:
            do.passwords.request_reset(email)
    except ProblemError as error:
        return form_page(
            request,
            "forgot_password.html",
            int(error.status),
            headers_of(error),
            error=error.detail,
            email=kept,
        )
    # The API's answer, word for word: it does not say whether the address has an account.
    return notice(
        request, "Check your inbox", RESET_ACCEPTED_DETAIL, action=("/signin", "Back to sign-in")
    )


@account_pages.get("/reset-password")
def reset_password_page(request: Request, token: str = "") -> Response:
    if link_is_live(request, TokenPurpose.PASSWORD_RESET, token) is None:
        return invalid_link(request, RESET_INVALID, ("/forgot-password", "Ask for a new link"))
    return reset_form(request, token)


@account_pages.post("/reset-password")
def reset_password(
    request: Request,
    token: FormText = "",
    password: FormText = "",
    password_again: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    try:
        check_form(request, csrf_token)
    except CsrfFailedError as error:
        return reset_form(request, token, int(error.status), error=error.detail)
    if len(password) > MAX_PASSWORD_LENGTH:
        message = f"Choose a password of at most {MAX_PASSWORD_LENGTH} characters."
        return reset_form(request, token, 422, error=message)
    if password != password_again:
        message = "The two passwords differ; type the same new password twice."
        return reset_form(request, token, 422, error=message)
    try:
        with services(request) as do:
            do.passwords.confirm_reset(token, password, device_of(request))
    except InvalidTokenError:
        return invalid_link(request, RESET_INVALID, ("/forgot-password", "Ask for a new link"))
    except ProblemError as error:  # a weak password: the link still works
        return reset_form(request, token, int(error.status), error=error.detail)
    page = notice(
        request,
        "Your password is changed",
        "Sign in with your new password. Every session of your account was signed out, and "
        "we sent a mail to say the password changed.",
        tone="success",
        action=("/signin", "Sign in"),
    )
    clear_session_cookie(page)  # its session has just ended with all the others
    return page


# Email change ------------------------------------------------------------------------------

EMAIL_CHANGE_INVALID = (
    "This email-change link is invalid, expired or already used (each link works once, "
    "within 24 hours; a newer request or a new password replaces it). Sign in and ask for "
    "the change again."
)


@account_pages.get("/verify-email-change")
def confirm_email_change_page(request: Request, token: str = "") -> Response:
    new_email = link_is_live(request, TokenPurpose.EMAIL_CHANGE, token)
    if not new_email:
        return invalid_link(request, EMAIL_CHANGE_INVALID, ("/signin", "Sign in"))
    return form_page(request, "confirm_email_change.html", token=token, new_email=new_email)


@account_pages.post("/verify-email-change")
def confirm_email_change(
    request: Request, token: FormText = "", csrf_token: FormText = ""
) -> Response:
    try:
        check_form(request, csrf_token)
    except CsrfFailedError as error:
        return refused_form(request, "confirm_email_change.html", error, token=token, new_email="")
    cookie = request.cookies.get(SESSION_COOKIE)
    slid = False
    try:
        with services(request) as do:
            # Confirming in the browser one is signed in with keeps that sign-in, as the API
            # keeps the bearer session that confirms; every other session of the account ends.
            keep = None
            if cookie:
                resolved = BrowserSessions(
                    do.session, do.settings, request.app.state.clock
                ).resolve(cookie)
                if resolved is not None:
                    keep, slid = resolved.browser_session.session_id, resolved.slid
            user = do.email_changes.confirm_change(token, device_of(request), keep_session=keep)
            email = user.email
    except InvalidTokenError:
        return invalid_link(request, EMAIL_CHANGE_INVALID, ("/signin", "Sign in"))
    except EmailTakenError as error:
        return notice(
            request,
            "This address is taken",
            error.detail,
            status_code=int(error.status),
            tone="error",
            action=("/", "Go to your account"),
        )
    page = notice(
        request,
        "Your email address is changed",
        f"Your Notefall account now uses {email}; sign in with it from now on. Your other "
        "sessions were signed out.",
        tone="success",
        action=("/", "Go to your account"),
    )
    if slid and cookie:
        set_session_cookie(page, cookie)
    return page
