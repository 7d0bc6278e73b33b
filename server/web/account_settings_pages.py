"""The account pages under /account, all server-rendered and never cached: profile,
security, notifications, privacy, activity and your data. One router gathers them."""

from __future__ import annotations

from fastapi import APIRouter

from .account_activity_pages import activity_pages
from .account_data_pages import data_pages
from .account_preference_pages import preference_pages
from .account_profile_pages import profile_pages
from .account_security_pages import security_pages

account_settings_pages = APIRouter(include_in_schema=False)
for pages in (profile_pages, security_pages, preference_pages, activity_pages, data_pages):
    account_settings_pages.include_router(pages)
