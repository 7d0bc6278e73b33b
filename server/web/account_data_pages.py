"""/account/data: a zip of everything the account holds (POST /api/v1/me/export, followed
like GET /api/v1/me/exports/{id}), and deleting the account (DELETE /api/v1/me)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Response
from notefall.server.accounts.errors import OtpRequiredError
from notefall.server.accounts.passwords import MAX_PASSWORD_LENGTH
from notefall.server.accounts.router import guessing_guard
from notefall.server.accounts.two_factor import OTP_MAX_LENGTH, TwoFactorService
from notefall.server.kit.errors import ProblemError
from notefall.server.profile.errors import ExportPendingError
from notefall.server.profile.export_job import enqueue_export
from notefall.server.profile.models import DataExport, ExportStatus
from notefall.server.profile.repository import ProfileRepository
from notefall.server.profile.service import ProfileService

from .account_forms import OTP_NEEDED, done, render_account, undo
from .account_profile_pages import profile_service
from .layout import Page, SignedInPage
from .pages import device_of, render
from .session import clear_session_cookie

data_pages = APIRouter(include_in_schema=False)

FormText = Annotated[str, Form()]
DATA = "/account/data"
EXPORT_PENDING = (
    "Your previous export is still being prepared; ask for a new one once it is ready or "
    "has failed."
)
GOODBYE = (
    "Your Notefall account, its projects and every file we kept for it are deleted, and "
    "every device is signed out. We mailed a goodbye note to your address. Thank you for "
    "using Notefall."
)


@dataclass(frozen=True)
class ExportView:
    """The newest export as the page shows it (the API's statuses and link)."""

    id: str
    status: str  # pending, ready, failed or expired
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime | None
    download_url: str | None


def newest_export(service: ProfileService, page: Page) -> ExportView | None:
    exports = ProfileRepository(page.session).exports_of(page.user.id)
    if not exports:
        return None
    export: DataExport = max(exports, key=lambda e: e.created_at)
    url = service.export_download_url(export)
    status = ExportStatus(export.status)
    # As the API shows it: a ready export past its expiry is expired until retention runs.
    shown = "expired" if status is ExportStatus.READY and url is None else status.value
    return ExportView(
        str(export.id), shown, export.created_at, export.finished_at, export.expires_at, url
    )


def data_page(
    page: Page, *, status_code: int = 200, errors: dict[str, str] | None = None
) -> Response:
    service = profile_service(page)
    two_factor = TwoFactorService(page.session, page.settings, page.request.app.state.clock)
    return render_account(
        page,
        "account_data.html",
        "data",
        status_code=status_code,
        errors=errors or {},
        export=newest_export(service, page),
        two_factor_on=two_factor.is_enabled(page.user),
        max_password_length=MAX_PASSWORD_LENGTH,
        otp_max_length=OTP_MAX_LENGTH,
    )


def refused(page: Page, form: str, error: ProblemError, message: str | None = None) -> Response:
    undo(page, error)
    return data_page(page, status_code=int(error.status), errors={form: message or error.detail})


@data_pages.get(DATA)
def your_data(page: SignedInPage) -> Response:
    return data_page(page)


@data_pages.post(f"{DATA}/export")
def request_export(page: SignedInPage) -> Response:
    try:
        export = profile_service(page).request_export(page.user, device_of(page.request))
        # Before the commit, as the API: a queue that refuses it leaves no export pending.
        enqueue_export(page.settings, export.id)
    except ExportPendingError as error:
        return refused(page, "export", error, EXPORT_PENDING)
    except ProblemError as error:  # the queue is unavailable
        return refused(page, "export", error)
    return done(page, DATA, "export")


@data_pages.post(f"{DATA}/delete")
def delete_account(
    page: SignedInPage,
    password: FormText = "",
    otp: FormText = "",
    understood: Annotated[str | None, Form()] = None,
) -> Response:
    if understood is None:
        message = "Tick the box to confirm you understand that deleting cannot be undone."
        return data_page(page, status_code=422, errors={"delete": message})
    if not password or len(password) > MAX_PASSWORD_LENGTH:
        message = "Enter your password to delete the account."
        return data_page(page, status_code=422, errors={"delete": message})
    try:
        with guessing_guard(page.request, page.current):
            profile_service(page).delete_account(
                page.user, password, otp.strip() or None, device_of(page.request)
            )
    except OtpRequiredError as error:
        return refused(page, "delete", error, OTP_NEEDED)
    except ProblemError as error:  # wrong password, wrong code, too many tries
        return refused(page, "delete", error)
    goodbye = render(
        page.request,
        "notice.html",
        heading="Your account is deleted",
        message=GOODBYE,
        tone="success",
        action_href="/signup",
        action_label="Create a new account",
    )
    clear_session_cookie(goodbye)  # its session is gone with the account
    return goodbye
