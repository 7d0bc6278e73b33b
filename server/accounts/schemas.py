"""Request and response bodies of the accounts API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .passwords import MAX_PASSWORD_LENGTH


class SignupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320, examples=["ada@example.com"])
    # No min_length here: the service answers short passwords with code weak_password.
    password: str = Field(max_length=MAX_PASSWORD_LENGTH)
    name: str = Field(min_length=1, max_length=200, examples=["Ada Lovelace"])

    @field_validator("email")
    @classmethod
    def _plausible_email(cls, value: str) -> str:
        # Deliverability is proven by the verification mail; this only catches typos.
        value = value.strip()
        local, at, domain = value.rpartition("@")
        if not at or not local or "." not in domain.strip(".") or any(c.isspace() for c in value):
            raise ValueError("must be an email address such as ada@example.com")
        return value

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("must not be blank")
        return value


class SignupAccepted(BaseModel):
    """The same answer whether or not the address already had an account."""

    email: str
    detail: str


class VerifyEmailRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=200)


class EmailVerified(BaseModel):
    email: str
    email_verified: bool = True


class TokenRequest(BaseModel):
    """The OAuth2 token request (RFC 6749), sent as a form."""

    model_config = ConfigDict(extra="forbid")

    grant_type: Literal["password", "refresh_token"]
    username: str | None = Field(default=None, max_length=320, description="The email address")
    password: str | None = Field(default=None, max_length=MAX_PASSWORD_LENGTH)
    refresh_token: str | None = Field(default=None, max_length=200)
    # OAuth2 clients (the Authorize dialog of /docs among them) may send these; Notefall
    # has one scope and only public clients, so they are accepted and ignored.
    scope: str = Field(default="", max_length=200)
    client_id: str | None = Field(default=None, max_length=200)
    client_secret: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _fields_of_the_grant(self) -> TokenRequest:
        needed = ["username", "password"] if self.grant_type == "password" else ["refresh_token"]
        missing = [name for name in needed if not getattr(self, name)]
        if missing:
            raise ValueError(f"grant_type={self.grant_type} needs {' and '.join(missing)}")
        return self


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires")


class Profile(BaseModel):
    id: uuid.UUID
    email: str
    name: str
    email_verified: bool


class SessionInfo(BaseModel):
    id: uuid.UUID
    created_at: datetime
    last_seen_at: datetime
    user_agent: str | None
    ip: str | None
    current: bool = Field(description="True for the session making this request")


class PasswordResetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # No format check: any string gets the same 202, so the answer reveals nothing.
    email: str = Field(max_length=320, examples=["ada@example.com"])


class PasswordResetAccepted(BaseModel):
    """The same answer whether or not the address has an account."""

    detail: str


class PasswordResetConfirm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=200)
    # No min_length here: the service answers short passwords with code weak_password.
    password: str = Field(max_length=MAX_PASSWORD_LENGTH)


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(max_length=MAX_PASSWORD_LENGTH)
    new_password: str = Field(max_length=MAX_PASSWORD_LENGTH)
