"""Request and response bodies of the profile API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from notefall.server.accounts.passwords import MAX_PASSWORD_LENGTH
from notefall.server.kit.text import OneLine
from pydantic import BaseModel, ConfigDict, Field, StrictBool


class ProfileUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, OneLine(200)] = Field(examples=["Ada Lovelace"])


class NotificationPreferences(BaseModel):
    """Which mail you want; mail about your account's security is always sent."""

    model_config = ConfigDict(extra="forbid")

    render_finished: StrictBool = Field(description="A render of yours succeeded")
    render_failed: StrictBool = Field(description="A render of yours failed")
    billing: StrictBool = Field(description="Receipts, failed payments, plan changes")
    news: StrictBool = Field(description="Occasional product news")


class PrivacySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    show_name_on_shared_projects: StrictBool = Field(
        description="People you share a project with see your name (else 'a Notefall user')"
    )
    discoverable_by_email: StrictBool = Field(
        description="Others can invite you as a collaborator by typing your email address"
    )
    product_analytics: StrictBool = Field(
        description="Allow anonymous usage statistics that help improve Notefall (opt-in)"
    )


class DataExportOut(BaseModel):
    id: uuid.UUID
    status: str = Field(
        description="pending, ready, failed, or expired (ready, but past `expires_at`)",
        examples=["pending"],
    )
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime | None = Field(description="When the zip is deleted")
    download_url: str | None = Field(
        description="A signed link to the zip (ready exports only); it expires within an hour"
    )


class AccountDeletion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(max_length=MAX_PASSWORD_LENGTH)
    otp: str | None = Field(
        default=None,
        max_length=64,
        description="With two-factor sign-in on: a code from your authenticator or a recovery code",
    )
