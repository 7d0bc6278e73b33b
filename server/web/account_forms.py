"""What the account pages share: their sub-navigation, the confirmation shown after a change,
refusals answered on the form, and the password confirmation sensitive changes need.

Every change is a POST form that answers with a redirect to its page and ``?done=<what>``
(so a reload never repeats it), or with the page again, its form showing what went wrong.
The request's database session commits after the route returns; a refusal rolls back what
the service did exactly as the API's would (``undo``), keeping only what the error says to
keep (a failed attempt in the activity log).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from fastapi import Response
from notefall.server.accounts.errors import ReauthenticationRequiredError
from notefall.server.accounts.sign_in import REAUTHENTICATION_WINDOW, SignInService
from notefall.server.kit.errors import ProblemError

from .account_devices import device_name
from .layout import Page


@dataclass(frozen=True)
class Section:
    key: str
    href: str
    label: str


SECTIONS = (
    Section("profile", "/account", "Profile"),
    Section("security", "/account/security", "Security"),
    Section("notifications", "/account/notifications", "Notifications"),
    Section("privacy", "/account/privacy", "Privacy"),
    Section("activity", "/account/activity", "Activity"),
    Section("data", "/account/data", "Your data"),
)
SECTION_PATHS = frozenset(section.href for section in SECTIONS)
CONFIRM_PASSWORD_PATH = "/account/confirm-password"
OTP_NEEDED = (
    "Two-factor sign-in is on: enter the 6-digit code from your authenticator app (or one "
    "of your recovery codes) with your password."
)

# What ``?done=`` may say: a fixed list, so a crafted link cannot put words on the page.
DONE_MESSAGES = {
    "name": "Your name is saved.",
    "avatar": "Your new avatar is saved.",
    "avatar-removed": "Your avatar is removed.",
    "email": "Check the inbox of your new address: the change takes effect once you open "
    "the link we sent there (within 24 hours). Your current address was told too.",
    "password": "Your password is changed. Your other sessions were signed out.",
    "confirmed": "Password confirmed: you can make sensitive changes for the next "
    f"{int(REAUTHENTICATION_WINDOW.total_seconds() // 60)} minutes.",
    "two-factor-off": "Two-factor sign-in is off. Your recovery codes no longer work.",
    "session-ended": "That session is signed out.",
    "others-ended": "Every other session is signed out; only this browser stays signed in.",
    "notifications": "Your notification settings are saved.",
    "privacy": "Your privacy settings are saved.",
    "export": "Your data export is being prepared.",
}


def when(moment: datetime | None) -> str:
    """A moment as people read it: 29 Nov 2026, 21:45 UTC."""
    if moment is None:
        return ""
    return moment.strftime("%d %b %Y, %H:%M UTC").lstrip("0")


def ago(moment: datetime, now: datetime) -> str:
    """How long ago, roughly: just now, 5 minutes ago, 3 hours ago, 2 days ago."""
    seconds = max(0, int((now - moment).total_seconds()))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'} ago"
    return "just now"


def unlocked_until(page: Page) -> datetime | None:
    """Until when this session may make sensitive changes without its password again."""
    stamped = page.current.session.reauthenticated_at
    if stamped is None:
        return None
    until = stamped + REAUTHENTICATION_WINDOW
    return until if until >= page.request.app.state.clock() else None


def confirm_password_link(back: str, *, expired: bool = False) -> str:
    return f"{CONFIRM_PASSWORD_PATH}?next={quote(back, safe='/')}" + (
        "&expired=1" if expired else ""
    )


def needs_password(page: Page, back: str) -> Response | None:
    """None when this session confirmed its password recently (the API's own check); else the
    redirect to the confirmation page, which comes back to ``back``."""
    sign_in = SignInService(page.session, page.settings, page.request.app.state.clock)
    try:
        sign_in.require_recent_reauthentication(page.current)
    except ReauthenticationRequiredError:
        return page.redirect(confirm_password_link(back, expired=True))
    return None


def undo(page: Page, error: ProblemError) -> None:
    """Roll back what a refused change did, unless the error keeps it (as the API does)."""
    if not error.keeps_changes:
        page.session.rollback()


def done(page: Page, path: str, what: str) -> Response:
    assert what in DONE_MESSAGES
    return page.redirect(f"{path}?done={what}")


def render_account(
    page: Page, template: str, section: str, *, status_code: int = 200, **context: Any
) -> Response:
    """An account page: the site's frame, the account sub-navigation, and the confirmation
    of the change just made when the address says so."""
    now: datetime = page.request.app.state.clock()
    done_key = page.request.query_params.get("done", "")
    return page.render(
        template,
        nav="account",
        status_code=status_code,
        sections=SECTIONS,
        section=section,
        done=DONE_MESSAGES.get(done_key) if status_code < 400 else None,
        when=when,
        ago=lambda moment: ago(moment, now),
        device_name=device_name,
        unlocked_until=unlocked_until(page),
        confirm_password_link=confirm_password_link,
        **context,
    )
