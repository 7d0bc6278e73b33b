"""What users may do with their own account beyond signing in. Never commits: the request's
session does, once; files are removed and mail is sent only after that commit."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from notefall.server.accounts.device import Device
from notefall.server.accounts.errors import WrongPasswordError
from notefall.server.accounts.models import User
from notefall.server.accounts.passwords import verify_password
from notefall.server.accounts.two_factor import TwoFactorService
from notefall.server.activity import ActivityKind, record
from notefall.server.kit.db import after_commit
from notefall.server.kit.errors import NotFoundError
from notefall.server.kit.mail import Mailer, compose, send_after_commit
from notefall.server.kit.settings import Settings
from notefall.server.projects.errors import FileTooLargeError
from notefall.server.storage.storage import Storage
from sqlalchemy import delete
from sqlalchemy.orm import Session

from .avatar import MAX_AVATAR_BYTES, OversizedImage, UnreadableImage, avatar_png
from .deletion import run_account_deleted_hooks
from .errors import ExportPendingError, ImageTooLargeError, NotAnImageError
from .models import DEFAULT_NOTIFICATIONS, DEFAULT_PRIVACY, DataExport, ExportStatus
from .repository import ProfileRepository

Clock = Callable[[], datetime]

AVATAR_LINK_LIFETIME = timedelta(hours=1)
EXPORT_LINK_LIFETIME = timedelta(hours=1)


def notification_preferences(session: Session, user_id: uuid.UUID) -> dict[str, bool]:
    """What mail ``user_id`` wants, for the domains that send it (renders, billing, news)."""
    profile = ProfileRepository(session).profile_of(user_id)
    if profile is None:
        return dict(DEFAULT_NOTIFICATIONS)
    return {name: getattr(profile, f"notify_{name}") for name in DEFAULT_NOTIFICATIONS}


def privacy_settings(session: Session, user_id: uuid.UUID) -> dict[str, bool]:
    """``user_id``'s privacy choices, for sharing, collaborator invites and analytics."""
    profile = ProfileRepository(session).profile_of(user_id)
    if profile is None:
        return dict(DEFAULT_PRIVACY)
    return {name: getattr(profile, name) for name in DEFAULT_PRIVACY}


def avatar_url(session: Session, storage: Storage, user_id: uuid.UUID) -> str | None:
    """A signed link to ``user_id``'s avatar that expires, or None without one."""
    profile = ProfileRepository(session).profile_of(user_id)
    if profile is None or profile.avatar_key is None:
        return None
    return storage.signed_url(profile.avatar_key, AVATAR_LINK_LIFETIME)


class ProfileService:
    def __init__(
        self, session: Session, settings: Settings, storage: Storage, mailer: Mailer, clock: Clock
    ) -> None:
        self.session = session
        self.settings = settings
        self.storage = storage
        self.mailer = mailer
        self.clock = clock
        self.profiles = ProfileRepository(session)

    # -- name ---------------------------------------------------------------------------

    def rename(self, user: User, name: str, device: Device) -> User:
        if name != user.name:
            self._record(user, ActivityKind.PROFILE_UPDATED, device, fields=["name"])
            user.name = name
            self.session.flush()
        return user

    # -- avatar -------------------------------------------------------------------------

    def set_avatar(self, user: User, data: bytes, device: Device) -> None:
        if len(data) > MAX_AVATAR_BYTES:
            raise FileTooLargeError(
                f"Avatars may be at most {MAX_AVATAR_BYTES // (1024 * 1024)} MB; "
                "this picture is larger. Upload a smaller PNG, JPEG, WebP or GIF."
            )
        try:
            png = avatar_png(data)
        except OversizedImage:
            raise ImageTooLargeError(
                "This picture has too many pixels to be an avatar; scale it down "
                "(a few thousand pixels a side is plenty) and upload it again."
            ) from None
        except UnreadableImage:
            raise NotAnImageError(
                "This file is not a PNG, JPEG, WebP or GIF picture we can read; "
                "save it in one of those formats and upload it again."
            ) from None
        # A new name per picture, so no cache keeps showing the old one.
        key = f"avatars/{user.id}/avatar-{uuid.uuid4().hex}.png"
        self.storage.put(key, png)
        profile = self.profiles.profile_for_update(user.id)
        if profile.avatar_key is not None:
            self._delete_after_commit([profile.avatar_key])
        profile.avatar_key = key
        self._record(user, ActivityKind.PROFILE_UPDATED, device, fields=["avatar"])
        self.session.flush()

    def remove_avatar(self, user: User, device: Device) -> None:
        profile = self.profiles.profile_of(user.id)
        if profile is None or profile.avatar_key is None:
            return
        self._delete_after_commit([profile.avatar_key])
        profile.avatar_key = None
        self._record(user, ActivityKind.PROFILE_UPDATED, device, fields=["avatar"])
        self.session.flush()

    def avatar_url(self, user: User) -> str:
        url = avatar_url(self.session, self.storage, user.id)
        if url is None:
            raise NotFoundError("You have no avatar; upload one with PUT /api/v1/me/avatar.")
        return url

    # -- notification and privacy settings ----------------------------------------------

    def set_notifications(self, user: User, values: dict[str, bool]) -> dict[str, bool]:
        profile = self.profiles.profile_for_update(user.id)
        for name in DEFAULT_NOTIFICATIONS:
            setattr(profile, f"notify_{name}", values[name])
        self.session.flush()
        return notification_preferences(self.session, user.id)

    def set_privacy(self, user: User, values: dict[str, bool]) -> dict[str, bool]:
        profile = self.profiles.profile_for_update(user.id)
        for name in DEFAULT_PRIVACY:
            setattr(profile, name, values[name])
        self.session.flush()
        return privacy_settings(self.session, user.id)

    # -- data export --------------------------------------------------------------------

    def request_export(self, user: User, device: Device) -> DataExport:
        now = self.clock()
        export = DataExport(user_id=user.id, status=ExportStatus.PENDING.value, created_at=now)
        if not self.profiles.add_export(export):
            pending = self.profiles.pending_export_of(user.id)
            raise ExportPendingError(
                "Your previous export is still being prepared; follow it at "
                f"GET /api/v1/me/exports/{pending.id if pending else '…'} and ask again "
                "once it is ready or has failed."
            )
        self._record(user, ActivityKind.DATA_EXPORT_REQUESTED, device, export_id=str(export.id))
        self.session.flush()
        return export

    def export_of(self, user: User, export_id: uuid.UUID) -> DataExport:
        export = self.profiles.export(export_id)
        if export is None or export.user_id != user.id:
            raise NotFoundError("You have no data export with this id; request one first.")
        return export

    def export_download_url(self, export: DataExport) -> str | None:
        """A signed link to a ready, unexpired export; it ends no later than the export."""
        if export.status != ExportStatus.READY.value or export.storage_key is None:
            return None
        now = self.clock()
        if export.expires_at is None or export.expires_at <= now:
            return None
        lifetime = min(EXPORT_LINK_LIFETIME, export.expires_at - now)
        return self.storage.signed_url(export.storage_key, lifetime)

    # -- deletion -----------------------------------------------------------------------

    def delete_account(self, user: User, password: str, otp: str | None, device: Device) -> None:
        """Delete the account's rows in this transaction and its files after the commit.

        The password, and with two-factor sign-in on a code, confirm it is the owner.
        """
        if not verify_password(user.password_hash, password):
            raise WrongPasswordError(
                "That is not your password; enter your current password to delete the account."
            )
        TwoFactorService(self.session, self.settings, self.clock).check(user, otp, device)
        keys = [key for _project, key in self.profiles.project_file_keys(user.id)]
        profile = self.profiles.profile_of(user.id)
        if profile is not None and profile.avatar_key:
            keys.append(profile.avatar_key)
        keys += [e.storage_key for e in self.profiles.exports_of(user.id) if e.storage_key]
        keys += run_account_deleted_hooks(self.session, self.settings, user)
        email, name = user.email, user.name
        self.session.flush()
        # Sessions, tokens, projects, profile, exports and the activity log cascade with it;
        # with the sessions gone, every access and refresh token is refused from now on.
        self.session.execute(delete(User).where(User.id == user.id))
        # Loaded objects of the deleted rows (this request's session row, the user) must
        # not be written back at commit.
        self.session.expunge_all()
        self._delete_after_commit(keys)
        goodbye = compose(
            email,
            "Your Notefall account was deleted",
            f"Hello {name},\n\n"
            "Your Notefall account, its projects and every file we kept for it have been "
            "deleted, and every device was signed out. Thank you for using Notefall.\n\n"
            "If you did not ask for this, someone knew your password: it no longer opens "
            "anything here, but change it wherever else you use it.\n",
        )
        send_after_commit(self.session, self.mailer, goodbye)

    def _record(self, user: User, kind: ActivityKind, device: Device, **detail: object) -> None:
        record(
            self.session,
            user.id,
            kind,
            ip=device.ip,
            user_agent=device.user_agent,
            at=self.clock(),
            **detail,
        )

    def _delete_after_commit(self, keys: list[str]) -> None:
        # Only once no row names the files; a rolled-back request keeps them.
        def remove() -> None:
            for key in keys:
                self.storage.delete(key)

        after_commit(self.session, remove)
