"""Recording activity. Every domain calls ``record`` inside its own request transaction, so an
event is written exactly when the change it describes is."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from .models import ActivityEvent


class ActivityKind(StrEnum):
    """Every kind of event the log holds. Clients show ``kind``; add new kinds here."""

    SIGNED_UP = "signed_up"
    EMAIL_VERIFIED = "email_verified"
    SIGNED_IN = "signed_in"
    SIGN_IN_FAILED = "sign_in_failed"
    SIGNED_OUT = "signed_out"
    SESSION_ENDED = "session_ended"
    REFRESH_TOKEN_REUSED = "refresh_token_reused"
    PASSWORD_CHANGED = "password_changed"
    PASSWORD_RESET = "password_reset"
    TWO_FACTOR_ENABLED = "two_factor_enabled"
    TWO_FACTOR_DISABLED = "two_factor_disabled"
    RECOVERY_CODE_USED = "recovery_code_used"
    EMAIL_CHANGE_REQUESTED = "email_change_requested"
    EMAIL_CHANGED = "email_changed"
    PROFILE_UPDATED = "profile_updated"
    APP_AUTHORIZED = "app_authorized"
    DATA_EXPORT_REQUESTED = "data_export_requested"
    RENDER_SUBMITTED = "render_submitted"
    RENDER_SUCCEEDED = "render_succeeded"
    RENDER_FAILED = "render_failed"
    BILLING_CHANGED = "billing_changed"
    PAYMENT_FAILED = "payment_failed"


def record(
    session: Session,
    user_id: uuid.UUID,
    kind: ActivityKind,
    *,
    ip: str | None = None,
    user_agent: str | None = None,
    at: datetime | None = None,
    **detail: Any,
) -> ActivityEvent:
    """Add one event to ``user_id``'s log (flushed with the caller's transaction).

    ``detail`` must be JSON-serialisable and never hold a secret: the user reads it back.
    """
    event = ActivityEvent(
        user_id=user_id,
        kind=str(kind),
        ip=ip,
        user_agent=user_agent[:500] if user_agent else None,
        detail=detail,
    )
    if at is not None:
        event.at = at
    session.add(event)
    return event
