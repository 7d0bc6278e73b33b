"""Profile rows: one ``profiles`` row per user (created on first change) and data exports."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from notefall.server.kit.models import Base, utcnow
from sqlalchemy import Boolean, ForeignKey, Index, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

# What a user who never changed a setting has; also the column defaults.
DEFAULT_NOTIFICATIONS = {
    "render_finished": True,
    "render_failed": True,
    "billing": True,
    "news": False,
}
DEFAULT_PRIVACY = {
    "show_name_on_shared_projects": True,
    "discoverable_by_email": True,
    "product_analytics": False,
}


class UserProfile(Base):
    """What a user chose about their account beyond sign-in: avatar, mail, privacy.

    A user without a row has the defaults below, so no row is written until they change one.
    """

    __tablename__ = "profiles"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    avatar_key: Mapped[str | None] = mapped_column(String(300))
    # Mail the user wants; security and account mail (sign-up, resets) is always sent.
    notify_render_finished: Mapped[bool] = mapped_column(
        Boolean, default=DEFAULT_NOTIFICATIONS["render_finished"]
    )
    notify_render_failed: Mapped[bool] = mapped_column(
        Boolean, default=DEFAULT_NOTIFICATIONS["render_failed"]
    )
    notify_billing: Mapped[bool] = mapped_column(Boolean, default=DEFAULT_NOTIFICATIONS["billing"])
    notify_news: Mapped[bool] = mapped_column(Boolean, default=DEFAULT_NOTIFICATIONS["news"])
    # Privacy: see docs/server.md for what each one governs.
    show_name_on_shared_projects: Mapped[bool] = mapped_column(
        Boolean, default=DEFAULT_PRIVACY["show_name_on_shared_projects"]
    )
    discoverable_by_email: Mapped[bool] = mapped_column(
        Boolean, default=DEFAULT_PRIVACY["discoverable_by_email"]
    )
    product_analytics: Mapped[bool] = mapped_column(
        Boolean, default=DEFAULT_PRIVACY["product_analytics"]
    )
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ExportStatus(StrEnum):
    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


class DataExport(Base):
    """One request for a copy of everything the account holds, built by a background job."""

    __tablename__ = "data_exports"
    __table_args__ = (
        # One pending export per user, held by the database even against concurrent requests.
        Index(
            "uq_data_exports_pending_user_id",
            "user_id",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(20), default=ExportStatus.PENDING.value)
    # The zip in storage once ready.
    storage_key: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    # When the zip is removed (the tier's retention); its link stops working then.
    expires_at: Mapped[datetime | None] = mapped_column()
