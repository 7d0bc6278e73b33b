"""Charging and releasing stored bytes against a user's quota. Never commits."""

from __future__ import annotations

import uuid

from notefall.common.tiers import TierLimits, limits_for
from notefall.server.accounts.models import User
from notefall.server.kit.text import file_size
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from .errors import StorageQuotaExceededError
from .models import ChargedFile


class UsageService:
    def __init__(self, session: Session) -> None:
        self.session = session

    def stored_bytes(self, owner_id: uuid.UUID) -> int:
        total = self.session.scalar(
            select(func.coalesce(func.sum(ChargedFile.bytes), 0)).where(
                ChargedFile.owner_id == owner_id
            )
        )
        return int(total or 0)

    def ensure_room(self, owner: User, n_bytes: int) -> None:
        """Refuse when ``n_bytes`` more would take ``owner`` over their tier's quota."""
        self._lock(owner)
        limits: TierLimits = limits_for(owner.tier)
        used = self.stored_bytes(owner.id)
        if used + n_bytes > limits.storage_quota_bytes:
            raise StorageQuotaExceededError(
                f"This file needs {file_size(n_bytes)}, and you use {file_size(used)} of the "
                f"{file_size(limits.storage_quota_bytes)} your {limits.title} plan includes. "
                "Delete projects or files you no longer need, or upgrade your plan."
            )

    def charge(
        self, owner: User, key: str, n_bytes: int, kind: str, *, allow_over_quota: bool = False
    ) -> None:
        """Count the file at ``key`` against ``owner`` (once the room is checked; with
        ``allow_over_quota`` it is counted even past the quota, for work already done)."""
        self._lock(owner)  # before reading the ledger, so what is read stays true
        existing = self.session.get(ChargedFile, key)
        already = existing.bytes if existing is not None and existing.owner_id == owner.id else 0
        if not allow_over_quota:
            self.ensure_room(owner, n_bytes - already)
        if existing is None:
            self.session.add(ChargedFile(key=key, owner_id=owner.id, bytes=n_bytes, kind=kind))
        else:
            existing.owner_id, existing.bytes, existing.kind = owner.id, n_bytes, kind
        self.session.flush()

    def _lock(self, owner: User) -> None:
        # The owner's row, locked until the transaction ends (PostgreSQL; SQLite has one
        # writer anyway): two uploads at once cannot both take the same free room.
        self.session.execute(select(User.id).where(User.id == owner.id).with_for_update())

    def release(self, *keys: str) -> None:
        """Stop counting these files (call it when the rows naming them go)."""
        if keys:
            self.session.execute(delete(ChargedFile).where(ChargedFile.key.in_(keys)))


def charge_file(
    session: Session,
    owner: User,
    key: str,
    n_bytes: int,
    kind: str,
    *,
    allow_over_quota: bool = False,
) -> None:
    """For other domains: charge ``owner`` for a file stored under ``key``, or raise
    ``StorageQuotaExceededError`` (409 ``storage_quota_exceeded``) when it does not fit.
    Call it before (or right after) ``storage.put``, inside the request's transaction.
    ``allow_over_quota`` counts it anyway (a finished render: the work is done)."""
    UsageService(session).charge(owner, key, n_bytes, kind, allow_over_quota=allow_over_quota)


def release_file(session: Session, *keys: str) -> None:
    """For other domains: the files at ``keys`` no longer count (their rows are gone)."""
    UsageService(session).release(*keys)
