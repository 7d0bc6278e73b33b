"""/account/activity: the account's activity log, newest first, a page at a time; what
GET /api/v1/me/activity returns, each kind in words."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Response
from notefall.server.activity import ActivityKind
from notefall.server.activity.repository import ActivityRepository

from .account_forms import render_account
from .layout import SignedInPage

activity_pages = APIRouter(include_in_schema=False)

ACTIVITY = "/account/activity"
PAGE_SIZE = 50
# Events of one kind that a person should look at twice.
WARNINGS = frozenset(
    {
        ActivityKind.SIGN_IN_FAILED,
        ActivityKind.REFRESH_TOKEN_REUSED,
        ActivityKind.PAYMENT_FAILED,
        ActivityKind.RENDER_FAILED,
    }
)

SIGN_INS = {
    "browser": "Signed in on the website",
    "desktop": "Signed in to Notefall Desktop",
    "password": "Signed in with the password (an app or the API)",
}
FAILURE_REASONS = {
    "wrong_password": "wrong password",
    "invalid_otp": "wrong two-factor code",
}


def _signed_in(detail: dict[str, Any]) -> str:
    return SIGN_INS.get(str(detail.get("via", "")), "Signed in")


def _sign_in_failed(detail: dict[str, Any]) -> str:
    reason = FAILURE_REASONS.get(str(detail.get("reason", "")), "refused")
    where = " while confirming your password" if detail.get("during") == "reauth" else ""
    return f"Failed sign-in{where}: {reason}"


def _profile_updated(detail: dict[str, Any]) -> str:
    fields = detail.get("fields") or []
    if fields == ["name"]:
        return "Name changed"
    if fields == ["avatar"]:
        return "Avatar changed"
    return "Profile changed"


def _recovery_code_used(detail: dict[str, Any]) -> str:
    left = detail.get("codes_left")
    return "Recovery code used" + (f" ({left} left)" if isinstance(left, int) else "")


def _email_change_requested(detail: dict[str, Any]) -> str:
    new_email = detail.get("new_email")
    return f"Email change to {new_email} requested" if new_email else "Email change requested"


def _email_changed(detail: dict[str, Any]) -> str:
    old_email = detail.get("old_email")
    return f"Email address changed (was {old_email})" if old_email else "Email address changed"


def _app_authorized(detail: dict[str, Any]) -> str:
    return f"{detail.get('app') or 'An app'} was allowed to use your account"


def _billing_changed(detail: dict[str, Any]) -> str:
    tier = detail.get("tier")
    return f"Plan changed to {str(tier).capitalize()}" if tier else "Billing changed"


def _by_operator(label: str, detail: dict[str, Any]) -> str:
    return f"{label} (by a Notefall operator)" if detail.get("by") == "operator" else label


LABELS: dict[str, str | Callable[[dict[str, Any]], str]] = {
    ActivityKind.SIGNED_UP: "Account created",
    ActivityKind.EMAIL_VERIFIED: "Email address confirmed",
    ActivityKind.SIGNED_IN: _signed_in,
    ActivityKind.SIGN_IN_FAILED: _sign_in_failed,
    ActivityKind.SIGNED_OUT: "Signed out",
    ActivityKind.SESSION_ENDED: "A session was signed out from the session list",
    ActivityKind.REFRESH_TOKEN_REUSED: "A session was ended: its sign-in was used from two places",
    ActivityKind.PASSWORD_CHANGED: "Password changed",
    ActivityKind.PASSWORD_RESET: "Password reset by mail",
    ActivityKind.TWO_FACTOR_ENABLED: "Two-factor sign-in turned on",
    ActivityKind.TWO_FACTOR_DISABLED: "Two-factor sign-in turned off",
    ActivityKind.RECOVERY_CODE_USED: _recovery_code_used,
    ActivityKind.EMAIL_CHANGE_REQUESTED: _email_change_requested,
    ActivityKind.EMAIL_CHANGED: _email_changed,
    ActivityKind.PROFILE_UPDATED: _profile_updated,
    ActivityKind.APP_AUTHORIZED: _app_authorized,
    ActivityKind.DATA_EXPORT_REQUESTED: "Data export requested",
    ActivityKind.RENDER_SUBMITTED: "Render started",
    ActivityKind.RENDER_SUCCEEDED: "Render finished",
    ActivityKind.RENDER_FAILED: "Render failed",
    ActivityKind.BILLING_CHANGED: _billing_changed,
    ActivityKind.PAYMENT_FAILED: "A payment failed",
}


def describe(kind: str, detail: dict[str, Any]) -> str:
    """The event in words; a kind added later reads as its own name until it gets some."""
    label = LABELS.get(kind)
    if label is None:
        text = kind.replace("_", " ").capitalize()
    else:
        text = label if isinstance(label, str) else label(detail)
    return _by_operator(text, detail)


@dataclass(frozen=True)
class Entry:
    label: str
    at: datetime
    ip: str | None
    user_agent: str | None
    warning: bool


def parse_before(value: str | None) -> datetime | None:
    """The `before` of an 'older events' link; ValueError for anything else."""
    if not value:
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@activity_pages.get(ACTIVITY)
def activity(page: SignedInPage, before: str | None = None) -> Response:
    try:
        older_than = parse_before(before)
    except ValueError:
        return render_account(
            page,
            "account_activity.html",
            "activity",
            status_code=400,
            error="This link to older events is broken; start again from the newest.",
            entries=[],
            next_before=None,
            paged=True,
        )
    events = ActivityRepository(page.session).newest_first(
        page.user.id, limit=PAGE_SIZE + 1, before=older_than
    )
    more = len(events) > PAGE_SIZE
    events = events[:PAGE_SIZE]
    entries = [
        Entry(describe(e.kind, e.detail or {}), e.at, e.ip, e.user_agent, e.kind in WARNINGS)
        for e in events
    ]
    return render_account(
        page,
        "account_activity.html",
        "activity",
        error=None,
        entries=entries,
        next_before=events[-1].at.isoformat() if more else None,
        paged=older_than is not None,
    )
