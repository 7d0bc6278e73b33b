"""/account/notifications and /account/privacy: the switches of PUT /api/v1/me/notifications
and PUT /api/v1/me/privacy, saved all at once (an unticked box is a "no")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, Response
from notefall.server.profile.schemas import NotificationPreferences, PrivacySettings
from notefall.server.profile.service import notification_preferences, privacy_settings
from pydantic import BaseModel

from .account_forms import done, render_account
from .account_profile_pages import profile_service
from .layout import Page, SignedInPage

preference_pages = APIRouter(include_in_schema=False)

NOTIFICATIONS = "/account/notifications"
PRIVACY = "/account/privacy"
# A ticked box sends its value; an unticked one sends nothing at all.
Ticked = Annotated[str | None, Form()]


@dataclass(frozen=True)
class Switch:
    name: str
    label: str
    hint: str
    on: bool


def switches(
    model: type[BaseModel],
    labels: dict[str, str],
    values: dict[str, bool],
    hints: dict[str, str] | None = None,
) -> list[Switch]:
    """One switch per setting, in the schema's order; its hint is the API's own description
    unless the page says it better."""
    return [
        Switch(name, labels[name], (hints or {}).get(name, field.description or ""), values[name])
        for name, field in model.model_fields.items()
    ]


NOTIFICATION_LABELS = {
    "render_finished": "Render finished",
    "render_failed": "Render failed",
    "billing": "Billing",
    "news": "Product news",
}
PRIVACY_LABELS = {
    "show_name_on_shared_projects": "Show my name on shared projects",
    "discoverable_by_email": "Let people invite me by my email address",
    "product_analytics": "Share anonymous usage statistics",
}
PRIVACY_HINTS = {
    "show_name_on_shared_projects": "People you share a project with see your name; when off, "
    "they see \u201ca Notefall user\u201d.",
    "discoverable_by_email": "Others can add you to their projects by typing your email address.",
    "product_analytics": "Anonymous figures about how Notefall is used help us improve it. "
    "Off unless you turn it on.",
}


def preferences_page(page: Page, template: str, section: str, items: list[Switch]) -> Response:
    return render_account(page, template, section, switches=items)


@preference_pages.get(NOTIFICATIONS)
def notifications(page: SignedInPage) -> Response:
    values = notification_preferences(page.session, page.user.id)
    items = switches(NotificationPreferences, NOTIFICATION_LABELS, values)
    return preferences_page(page, "account_notifications.html", "notifications", items)


@preference_pages.post(NOTIFICATIONS)
def save_notifications(
    page: SignedInPage,
    render_finished: Ticked = None,
    render_failed: Ticked = None,
    billing: Ticked = None,
    news: Ticked = None,
) -> Response:
    chosen = NotificationPreferences(
        render_finished=render_finished is not None,
        render_failed=render_failed is not None,
        billing=billing is not None,
        news=news is not None,
    )
    profile_service(page).set_notifications(page.user, chosen.model_dump())
    return done(page, NOTIFICATIONS, "notifications")


@preference_pages.get(PRIVACY)
def privacy(page: SignedInPage) -> Response:
    values = privacy_settings(page.session, page.user.id)
    items = switches(PrivacySettings, PRIVACY_LABELS, values, PRIVACY_HINTS)
    return preferences_page(page, "account_privacy.html", "privacy", items)


@preference_pages.post(PRIVACY)
def save_privacy(
    page: SignedInPage,
    show_name_on_shared_projects: Ticked = None,
    discoverable_by_email: Ticked = None,
    product_analytics: Ticked = None,
) -> Response:
    chosen = PrivacySettings(
        show_name_on_shared_projects=show_name_on_shared_projects is not None,
        discoverable_by_email=discoverable_by_email is not None,
        product_analytics=product_analytics is not None,
    )
    profile_service(page).set_privacy(page.user, chosen.model_dump())
    return done(page, PRIVACY, "privacy")
