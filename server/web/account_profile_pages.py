"""/account: your name, avatar, email address and password; the same services as
PATCH /api/v1/me, PUT and DELETE /api/v1/me/avatar, POST /api/v1/me/email and
POST /api/v1/me/password."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Response, UploadFile
from notefall.server.accounts.email_change import EmailChangeService
from notefall.server.accounts.password_reset import PasswordService
from notefall.server.accounts.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from notefall.server.accounts.router import guessing_guard
from notefall.server.accounts.schemas import EmailChangeRequest
from notefall.server.kit.errors import ProblemError
from notefall.server.profile.avatar import MAX_AVATAR_BYTES
from notefall.server.profile.schemas import ProfileUpdate
from notefall.server.profile.service import ProfileService, avatar_url
from pydantic import ValidationError

from .account_forms import done, needs_password, render_account, undo
from .layout import Page, SignedInPage
from .pages import device_of

profile_pages = APIRouter(include_in_schema=False)

FormText = Annotated[str, Form()]
PROFILE = "/account"
NAME_REFUSED = "Enter your name: at most 200 characters, on one line."
EMAIL_REFUSED = "Enter the new email address in full, such as ada@example.org."
NO_PICTURE = "Choose a picture to upload first (PNG, JPEG, WebP or GIF, up to 5 MB)."


def profile_service(page: Page) -> ProfileService:
    state = page.request.app.state
    return ProfileService(page.session, page.settings, state.storage, state.mailer, state.clock)


def profile_page(
    page: Page, *, status_code: int = 200, errors: dict[str, str] | None = None, **kept: Any
) -> Response:
    storage = page.request.app.state.storage
    return render_account(
        page,
        "account_profile.html",
        "profile",
        status_code=status_code,
        errors=errors or {},
        name=kept.get("name", page.user.name),
        new_email=kept.get("new_email", ""),
        avatar_url=avatar_url(page.session, storage, page.user.id),
        max_avatar_bytes=MAX_AVATAR_BYTES,
        min_password_length=MIN_PASSWORD_LENGTH,
        max_password_length=MAX_PASSWORD_LENGTH,
    )


def refused(page: Page, form: str, error: ProblemError, **kept: Any) -> Response:
    undo(page, error)
    return profile_page(page, status_code=int(error.status), errors={form: error.detail}, **kept)


@profile_pages.get(PROFILE)
def profile(page: SignedInPage) -> Response:
    return profile_page(page)


@profile_pages.post(f"{PROFILE}/name")
def rename(page: SignedInPage, name: FormText = "") -> Response:
    try:
        checked = ProfileUpdate(name=name)
    except ValidationError:
        return profile_page(page, status_code=422, errors={"name": NAME_REFUSED}, name=name[:200])
    profile_service(page).rename(page.user, checked.name, device_of(page.request))
    return done(page, PROFILE, "name")


@profile_pages.post(f"{PROFILE}/avatar")
def upload_avatar(
    page: SignedInPage, file: Annotated[UploadFile | None, File()] = None
) -> Response:
    # One byte more than allowed tells "too large" apart, as the API does.
    data = file.file.read(MAX_AVATAR_BYTES + 1) if file is not None else b""
    if not data:
        return profile_page(page, status_code=422, errors={"avatar": NO_PICTURE})
    try:
        profile_service(page).set_avatar(page.user, data, device_of(page.request))
    except ProblemError as error:  # too large, not a picture, too many pixels
        return refused(page, "avatar", error)
    return done(page, PROFILE, "avatar")


@profile_pages.post(f"{PROFILE}/avatar/remove")
def remove_avatar(page: SignedInPage) -> Response:
    profile_service(page).remove_avatar(page.user, device_of(page.request))
    return done(page, PROFILE, "avatar-removed")


@profile_pages.post(f"{PROFILE}/email")
def change_email(page: SignedInPage, new_email: FormText = "") -> Response:
    if (confirm := needs_password(page, PROFILE)) is not None:
        return confirm
    kept = new_email.strip()[:320]
    try:
        checked = EmailChangeRequest(new_email=new_email.strip())
    except ValidationError:
        return profile_page(page, status_code=422, errors={"email": EMAIL_REFUSED}, new_email=kept)
    state = page.request.app.state
    service = EmailChangeService(page.session, page.settings, state.mailer, state.clock)
    try:
        service.request_change(page.user, checked.new_email, device_of(page.request))
    except ProblemError as error:  # taken, or already yours
        return refused(page, "email", error, new_email=kept)
    return done(page, PROFILE, "email")


@profile_pages.post(f"{PROFILE}/password")
def change_password(
    page: SignedInPage,
    current_password: FormText = "",
    new_password: FormText = "",
    new_password_again: FormText = "",
) -> Response:
    if not current_password:
        message = "Enter your current password: it proves the change is yours."
        return profile_page(page, status_code=422, errors={"password": message})
    if len(new_password) > MAX_PASSWORD_LENGTH:
        message = f"Choose a password of at most {MAX_PASSWORD_LENGTH} characters."
        return profile_page(page, status_code=422, errors={"password": message})
    if new_password != new_password_again:
        message = "The two new passwords differ; type the same new password twice."
        return profile_page(page, status_code=422, errors={"password": message})
    state = page.request.app.state
    service = PasswordService(page.session, page.settings, state.mailer, state.clock)
    try:
        with guessing_guard(page.request, page.current):
            service.change_password(
                page.user,
                page.current.session,
                current_password,
                new_password,
                device_of(page.request),
            )
    except ProblemError as error:  # wrong current password, weak new one, too many tries
        return refused(page, "password", error)
    return done(page, PROFILE, "password")
