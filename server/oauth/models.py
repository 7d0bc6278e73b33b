"""Authorization codes of the OAuth 2.0 authorization-code grant (RFC 6749 §4.1, RFC 7636)."""

from __future__ import annotations

import uuid
from datetime import datetime

from notefall.server.kit.models import Base, utcnow
from sqlalchemy import ForeignKey, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column


class AuthorizationCode(Base):
    __tablename__ = "oauth_authorization_codes"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    # SHA-256 of the code: a leaked table cannot be exchanged for tokens.
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(String(100))
    redirect_uri: Mapped[str] = mapped_column(String(2000))
    # BASE64URL(SHA-256(code_verifier)); only the S256 method exists here.
    code_challenge: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    expires_at: Mapped[datetime] = mapped_column()
    # Set by the one exchange that wins; a second exchange is a theft signal.
    used_at: Mapped[datetime | None] = mapped_column()
    # The session that exchange opened, revoked if the code is presented again.
    session_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("sessions.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
