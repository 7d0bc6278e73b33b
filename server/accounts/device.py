"""Where a request comes from, and what 'now' is: shared by every accounts service."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from notefall.server.activity import ActivityKind, record
from sqlalchemy.orm import Session

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Device:
    """Where a sign-in or change comes from, shown in the session list and activity log."""

    user_agent: str | None
    ip: str | None


# For calls with no request behind them.
UNKNOWN_DEVICE = Device(user_agent=None, ip=None)


def record_event(
    session: Session,
    user_id: uuid.UUID,
    kind: ActivityKind,
    device: Device,
    at: datetime,
    **detail: object,
) -> None:
    """Add ``kind`` to the account's activity log, with where the request came from."""
    record(session, user_id, kind, ip=device.ip, user_agent=device.user_agent, at=at, **detail)
