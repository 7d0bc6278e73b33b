"""The usage ledger: one row per stored file a user is charged for."""

from __future__ import annotations

import uuid
from datetime import datetime

from notefall.server.kit.models import Base, utcnow
from sqlalchemy import BigInteger, ForeignKey, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column


class ChargedFile(Base):
    """A stored file counted against its owner's quota (not the storage's own StoredFile)."""

    __tablename__ = "stored_files"

    # The storage key: one file is charged once, to one user.
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    owner_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    bytes: Mapped[int] = mapped_column(BigInteger)
    # What the file is: "midi", "audio", "avatar", "export", ...
    kind: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
