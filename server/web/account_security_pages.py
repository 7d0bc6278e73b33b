"""/account/security: two-factor sign-in (set-up with a QR code, recovery codes, turning it
off) and the sessions of the account; and /account/confirm-password, the page form of
POST /api/v1/auth/reauth, which unlocks the sensitive changes for ten minutes.

The same services as /api/v1/me/2fa/*, /api/v1/me/sessions and /api/v1/auth/reauth, with
the same rules: two-factor changes and the email change need a recent re-authentication,
and wrong passwords and codes count against the sign-in backoff.
"""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import quote

import segno
from fastapi import APIRouter, Form, Response
from fastapi.responses import RedirectResponse
from notefall.server.accounts.errors import OtpRequiredError
from notefall.server.accounts.passwords import MAX_PASSWORD_LENGTH
from notefall.server.accounts.router import guessing_guard
from notefall.server.accounts.sign_in import SignInService
from notefall.server.accounts.two_factor import OTP_MAX_LENGTH, TwoFactorService, TwoFactorSetup
from notefall.server.kit.errors import ProblemError

from .account_forms import (
    OTP_NEEDED,
    SECTION_PATHS,
    done,
    needs_password,
    render_account,
    undo,
    unlocked_until,
)
from .layout import Page, SignedInPage
from .pages import device_of
from .session import clear_session_cookie

security_pages = APIRouter(include_in_schema=False)

FormText = Annotated[str, Form()]
SECURITY = "/account/security"
CONFIRM = "/account/confirm-password"
NO_CODE = "Enter the 6-digit code your authenticator app shows now."
RECOVERY_FILE = "notefall-recovery-codes.txt"


def sign_in_service(page: Page) -> SignInService:
    return SignInService(page.session, page.settings, page.request.app.state.clock)


def two_factor_service(page: Page) -> TwoFactorService:
    return TwoFactorService(page.session, page.settings, page.request.app.state.clock)


def qr_image(setup: TwoFactorSetup) -> str:
    """The set-up's QR code as an image the page's CSP allows (a data: URI), drawn dark on
    white with its quiet zone: scanners need that contrast, and the page is dark."""
    code = segno.make(setup.otpauth_uri, error="m")
    return code.svg_data_uri(scale=5, border=4, dark="#000000", light="#ffffff")


def grouped(secret: str) -> str:
    """The base32 secret in groups of four, as authenticator apps ask to type it."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def security_page(
    page: Page,
    *,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    setup: TwoFactorSetup | None = None,
) -> Response:
    two_factor = two_factor_service(page)
    record = two_factor.accounts.two_factor_of(page.user.id)
    enabled = record is not None and record.enabled_at is not None
    # A set-up left half-way shows again (same secret) while the password is confirmed.
    if setup is None and not enabled and unlocked_until(page) is not None:
        setup = two_factor.pending_setup(page.user)
    sessions = sign_in_service(page).sessions_of(page.user)
    # This browser first, then the most recently used.
    sessions.sort(key=lambda s: (s.id != page.current.session.id, -s.last_seen_at.timestamp()))
    return render_account(
        page,
        "account_security.html",
        "security",
        status_code=status_code,
        errors=errors or {},
        two_factor_on=enabled,
        two_factor_since=record.enabled_at if enabled and record else None,
        codes_left=two_factor.accounts.unused_recovery_codes(page.user.id) if enabled else 0,
        setup=setup,
        qr=qr_image(setup) if setup else None,
        secret_groups=grouped(setup.secret) if setup else None,
        sessions=sessions,
        current_session_id=page.current.session.id,
        otp_max_length=OTP_MAX_LENGTH,
    )


def refused(page: Page, form: str, error: ProblemError) -> Response:
    undo(page, error)
    setup = two_factor_service(page).pending_setup(page.user) if form == "enable" else None
    return security_page(
        page, status_code=int(error.status), errors={form: error.detail}, setup=setup
    )


@security_pages.get(SECURITY)
def security(page: SignedInPage) -> Response:
    return security_page(page)


# Re-authentication -------------------------------------------------------------------------


def back_to(value: str | None) -> str:
    """Where to go once the password is confirmed: an account page, else /account."""
    return value if value in SECTION_PATHS else "/account"


def confirm_page(
    page: Page, back: str, *, status_code: int = 200, error: str | None = None
) -> Response:
    return render_account(
        page,
        "account_confirm_password.html",
        "security" if back == SECURITY else "profile",
        status_code=status_code,
        error=error,
        back=back,
        expired=page.request.query_params.get("expired") == "1",
        two_factor_on=two_factor_service(page).is_enabled(page.user),
        max_password_length=MAX_PASSWORD_LENGTH,
        otp_max_length=OTP_MAX_LENGTH,
    )


@security_pages.get(CONFIRM)
def confirm_password_form(page: SignedInPage, next: str | None = None) -> Response:
    return confirm_page(page, back_to(next))


@security_pages.post(CONFIRM)
def confirm_password(
    page: SignedInPage, password: FormText = "", otp: FormText = "", next: FormText = ""
) -> Response:
    back = back_to(next)
    if not password:
        return confirm_page(page, back, status_code=422, error="Enter your password.")
    if len(password) > MAX_PASSWORD_LENGTH or len(otp) > OTP_MAX_LENGTH:
        return confirm_page(
            page, back, status_code=422, error="That is not your password or a code we issue."
        )
    try:
        with guessing_guard(page.request, page.current):
            sign_in_service(page).reauthenticate(
                page.current, password, otp.strip() or None, device_of(page.request)
            )
    except ProblemError as error:  # wrong password, missing or wrong code, too many tries
        undo(page, error)
        message = OTP_NEEDED if isinstance(error, OtpRequiredError) else error.detail
        return confirm_page(page, back, status_code=int(error.status), error=message)
    return done(page, back, "confirmed")


# Two-factor sign-in ------------------------------------------------------------------------


@security_pages.post(f"{SECURITY}/two-factor/setup")
def start_two_factor(page: SignedInPage) -> Response:
    if (confirm := needs_password(page, SECURITY)) is not None:
        return confirm
    try:
        setup = two_factor_service(page).set_up(page.user)
    except ProblemError as error:  # already on
        return refused(page, "setup", error)
    return security_page(page, setup=setup)


@security_pages.post(f"{SECURITY}/two-factor/enable")
def enable_two_factor(page: SignedInPage, code: FormText = "") -> Response:
    if (confirm := needs_password(page, SECURITY)) is not None:
        return confirm
    service = two_factor_service(page)
    if not code.strip():
        return security_page(
            page,
            status_code=422,
            errors={"enable": NO_CODE},
            setup=service.pending_setup(page.user),
        )
    try:
        with guessing_guard(page.request, page.current):
            codes = service.enable(page.user, code.strip(), device_of(page.request))
    except ProblemError as error:  # wrong code, no pending set-up, too many tries
        return refused(page, "enable", error)
    return recovery_codes_page(page, codes, first_time=True)


@security_pages.post(f"{SECURITY}/two-factor/recovery-codes")
def new_recovery_codes(page: SignedInPage) -> Response:
    if (confirm := needs_password(page, SECURITY)) is not None:
        return confirm
    try:
        codes = two_factor_service(page).regenerate_recovery_codes(page.user)
    except ProblemError as error:  # two-factor is off
        return refused(page, "recovery", error)
    return recovery_codes_page(page, codes, first_time=False)


@security_pages.post(f"{SECURITY}/two-factor/disable")
def disable_two_factor(page: SignedInPage, code: FormText = "") -> Response:
    if (confirm := needs_password(page, SECURITY)) is not None:
        return confirm
    if not code.strip():
        message = "Enter a code from your authenticator app, or one of your recovery codes."
        return security_page(page, status_code=422, errors={"disable": message})
    try:
        with guessing_guard(page.request, page.current):
            two_factor_service(page).disable(page.user, code.strip(), device_of(page.request))
    except ProblemError as error:  # wrong code, already off, too many tries
        return refused(page, "disable", error)
    return done(page, SECURITY, "two-factor-off")


def recovery_codes_page(page: Page, codes: list[str], *, first_time: bool) -> Response:
    """The codes, this once (only their hashes are kept), with a text file to save."""
    text = (
        "Notefall recovery codes for "
        f"{page.user.email}\n\nEach code signs you in once when your authenticator app is "
        "not at hand. Keep them somewhere safe.\n\n" + "\n".join(codes) + "\n"
    )
    return render_account(
        page,
        "account_recovery_codes.html",
        "security",
        codes=codes,
        first_time=first_time,
        download_href="data:text/plain;charset=utf-8," + quote(text, safe=""),
        download_name=RECOVERY_FILE,
    )


# Sessions ----------------------------------------------------------------------------------


@security_pages.post(f"{SECURITY}/sessions/{{session_id}}/sign-out")
def end_session(session_id: uuid.UUID, page: SignedInPage) -> Response:
    try:
        sign_in_service(page).end_session(page.user, session_id, device_of(page.request))
    except ProblemError as error:  # not one of yours, or already ended
        return refused(page, "sessions", error)
    if session_id == page.current.session.id:
        # This browser's own session: its cookie now opens nothing.
        response = page.finish(RedirectResponse("/signin", status_code=303))
        clear_session_cookie(response)
        return response
    return done(page, SECURITY, "session-ended")


@security_pages.post(f"{SECURITY}/sessions/sign-out-others")
def end_other_sessions(page: SignedInPage) -> Response:
    sign_in = sign_in_service(page)
    device = device_of(page.request)
    for other in sign_in.sessions_of(page.user):
        if other.id != page.current.session.id:
            sign_in.end_session(page.user, other.id, device)
    return done(page, SECURITY, "others-ended")
