"""Browser sign-ins: the cookie that stands for one row of ``sessions``."""

from __future__ import annotations

import uuid
from datetime import datetime

from notefall.server.kit.models import Base
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column


class BrowserSession(Base):
    """The cookie of a session opened in a browser. Its own table rather than a column of
    ``sessions``: API sessions never have one, and the sessions table stays the accounts
    domain's. Ending the session (sign-out, the session list, a password reset) ends the
    cookie with it, because the cookie is only honoured while its session is active."""

    __tablename__ = "browser_sessions"

    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True
    )
    # SHA-256 of the cookie value: a leaked table cannot sign anyone in.
    cookie_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Slides forward on use (see BrowserSessions.resolve).
    expires_at: Mapped[datetime] = mapped_column()
