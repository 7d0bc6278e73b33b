"""HTTP endpoints of the profile domain, under /api/v1/me: name, avatar, notification and
privacy settings, data export and account deletion."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, File, Request, Response, UploadFile, status
from fastapi.responses import RedirectResponse
from notefall.server.accounts.device import Device
from notefall.server.accounts.errors import (
    InvalidAccessTokenError,
    InvalidOtpError,
    OtpRequiredError,
    WrongPasswordError,
)
from notefall.server.accounts.router import Current, RequestSession, guessing_guard, me
from notefall.server.accounts.schemas import Profile
from notefall.server.kit.errors import NotFoundError, problem_responses
from notefall.server.kit.ratelimit import TooManyAttemptsError
from notefall.server.projects.errors import FileTooLargeError

from .avatar import MAX_AVATAR_BYTES
from .errors import ExportPendingError, ImageTooLargeError, NotAnImageError
from .export_job import enqueue_export
from .models import DataExport, ExportStatus
from .schemas import (
    AccountDeletion,
    DataExportOut,
    NotificationPreferences,
    PrivacySettings,
    ProfileUpdate,
)
from .service import ProfileService, notification_preferences, privacy_settings

router = APIRouter(
    prefix="/me", tags=["account"], responses=problem_responses(InvalidAccessTokenError)
)


def profile_service(request: Request, session: RequestSession) -> ProfileService:
    return ProfileService(
        session,
        request.app.state.settings,
        request.app.state.storage,
        request.app.state.mailer,
        request.app.state.clock,
    )


Service = Annotated[ProfileService, Depends(profile_service)]


def _device(request: Request) -> Device:
    return Device(
        user_agent=request.headers.get("user-agent"),
        ip=request.client.host if request.client else None,
    )


@router.patch("", summary="Change your name")
def update_profile(
    body: ProfileUpdate,
    request: Request,
    current: Current,
    service: Service,
    # GET /me's answer, built by its own endpoint (before the change), so both stay alike.
    profile: Annotated[Profile, Depends(me)],
) -> Profile:
    user = service.rename(current.user, body.name, _device(request))
    return profile.model_copy(update={"name": user.name})


@router.delete(
    "",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(
        WrongPasswordError, OtpRequiredError, InvalidOtpError, TooManyAttemptsError
    ),
    summary="Delete your account, its projects and files; signs out everywhere",
)
def delete_account(
    body: AccountDeletion, request: Request, current: Current, service: Service
) -> None:
    """Cannot be undone. A goodbye notice is mailed to the account's address."""
    with guessing_guard(request, current):
        service.delete_account(current.user, body.password, body.otp, _device(request))


@router.put(
    "/avatar",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(FileTooLargeError, NotAnImageError, ImageTooLargeError),
    summary="Upload your avatar (multipart field `file`: PNG, JPEG, WebP or GIF, up to 5 MB)",
)
def upload_avatar(
    file: Annotated[UploadFile, File(description="a PNG, JPEG, WebP or GIF picture")],
    request: Request,
    current: Current,
    service: Service,
) -> None:
    """Stored as a 256×256 PNG, cropped square from the centre, without any metadata;
    GET /api/v1/me shows its link as `avatar_url`."""
    data = file.file.read(MAX_AVATAR_BYTES + 1)  # one byte more tells "too large" apart
    service.set_avatar(current.user, data, _device(request))


@router.get(
    "/avatar",
    response_class=RedirectResponse,
    status_code=status.HTTP_307_TEMPORARY_REDIRECT,
    responses=problem_responses(NotFoundError),
    summary="Your avatar: a redirect to a signed link that expires",
)
def get_avatar(current: Current, service: Service) -> RedirectResponse:
    url = service.avatar_url(current.user)
    return RedirectResponse(url, status_code=status.HTTP_307_TEMPORARY_REDIRECT)


@router.delete(
    "/avatar",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Remove your avatar",
)
def delete_avatar(request: Request, current: Current, service: Service) -> None:
    service.remove_avatar(current.user, _device(request))


@router.get("/notifications", summary="Which mail you want")
def get_notifications(current: Current, session: RequestSession) -> NotificationPreferences:
    return NotificationPreferences(**notification_preferences(session, current.user.id))


@router.put("/notifications", summary="Choose which mail you want (every field, true or false)")
def put_notifications(
    body: NotificationPreferences, current: Current, service: Service
) -> NotificationPreferences:
    return NotificationPreferences(**service.set_notifications(current.user, body.model_dump()))


@router.get("/privacy", summary="Your privacy settings")
def get_privacy(current: Current, session: RequestSession) -> PrivacySettings:
    return PrivacySettings(**privacy_settings(session, current.user.id))


@router.put("/privacy", summary="Change your privacy settings (every field, true or false)")
def put_privacy(body: PrivacySettings, current: Current, service: Service) -> PrivacySettings:
    return PrivacySettings(**service.set_privacy(current.user, body.model_dump()))


def _export_out(service: ProfileService, export: DataExport) -> DataExportOut:
    url = service.export_download_url(export)
    status = ExportStatus(export.status)
    # A ready export past its expiry shows as expired until retention removes it.
    shown = "expired" if status is ExportStatus.READY and url is None else status.value
    return DataExportOut(
        id=export.id,
        status=shown,
        created_at=export.created_at,
        finished_at=export.finished_at,
        expires_at=export.expires_at,
        download_url=url,
    )


@router.post(
    "/export",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(ExportPendingError),
    summary="Ask for a zip of everything your account holds; it is prepared in the background",
)
def request_export(request: Request, current: Current, service: Service) -> DataExportOut:
    """Follow it with GET /api/v1/me/exports/{id}; one export may be pending at a time."""
    export = service.request_export(current.user, _device(request))
    enqueue_export(request.app.state.settings, export.id)
    return _export_out(service, export)


@router.get(
    "/exports/{export_id}",
    responses=problem_responses(NotFoundError),
    summary="One of your data exports, with its download link once ready",
)
def get_export(export_id: uuid.UUID, current: Current, service: Service) -> DataExportOut:
    return _export_out(service, service.export_of(current.user, export_id))
