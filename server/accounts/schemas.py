"""Request and response bodies of the accounts API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from notefall.server.kit.text import OneLine
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .passwords import MAX_PASSWORD_LENGTH


class SignupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320, examples=["ada@example.com"])
    # No min_length here: the service answers short passwords with code weak_password.
    password: str = Field(max_length=MAX_PASSWORD_LENGTH)
    name: Annotated[str, OneLine(200)] = Field(examples=["Ada Lovelace"])

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

    grant_type: Literal["password", "refresh_token", "authorization_code"]
    username: str | None = Field(default=None, max_length=320, description="The email address")
    password: str | None = Field(default=None, max_length=MAX_PASSWORD_LENGTH)
    refresh_token: str | None = Field(default=None, max_length=200)
    otp: str | None = Field(
        default=None,
        max_length=32,
        description="With grant_type=password when two-factor sign-in is on: the 6-digit code "
        "of the authenticator app, or a recovery code.",
    )
    # grant_type=authorization_code (the desktop's browser sign-in, RFC 6749 §4.1.3 with
    # RFC 7636 PKCE); client_id must then be notefall-desktop.
    code: str | None = Field(default=None, max_length=200)
    redirect_uri: str | None = Field(default=None, max_length=2000)
    code_verifier: str | None = Field(default=None, max_length=128)
    # OAuth2 clients (the Authorize dialog of /docs among them) may send these; Notefall
    # has one scope and only public clients, so they are accepted and ignored (except
    # client_id with an authorization code).
    scope: str = Field(default="", max_length=200)
    client_id: str | None = Field(default=None, max_length=200)
    client_secret: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _fields_of_the_grant(self) -> TokenRequest:
        needed = {
            "password": ["username", "password"],
            "refresh_token": ["refresh_token"],
            "authorization_code": ["code", "redirect_uri", "client_id", "code_verifier"],
        }[self.grant_type]
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
    two_factor_enabled: bool = Field(
        default=False, description="True when sign-in also needs an authenticator code"
    )
    tier: str = Field(default="free", description="Your plan: a tier of the tier table")
    avatar_url: str | None = Field(
        default=None,
        description="A signed link to your avatar, valid for an hour; null without one",
    )


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


class ReauthRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(max_length=MAX_PASSWORD_LENGTH)
    otp: str | None = Field(
        default=None,
        max_length=32,
        description="When two-factor sign-in is on: an authenticator code or a recovery code.",
    )


class Reauthenticated(BaseModel):
    reauthenticated_until: datetime = Field(
        description="Until when this session may make sensitive changes (2FA, email address)."
    )


class TwoFactorSetupOut(BaseModel):
    secret: str = Field(description="The base32 secret, for apps that cannot scan the QR code")
    otpauth_uri: str = Field(description="The otpauth:// URI the QR code holds")
    qr_svg: str = Field(description="An SVG image of the QR code, for authenticator apps to scan")


class TwoFactorCode(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(
        min_length=1,
        max_length=32,
        description="A 6-digit authenticator code (disable also takes a recovery code).",
    )


class RecoveryCodes(BaseModel):
    recovery_codes: list[str] = Field(
        description="Shown this once: each signs in once when the authenticator is lost."
    )


class EmailChangeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    new_email: str = Field(max_length=320, examples=["ada@example.org"])

    @field_validator("new_email")
    @classmethod
    def _plausible_email(cls, value: str) -> str:
        return SignupRequest._plausible_email(value)


class EmailChangeAccepted(BaseModel):
    new_email: str
    detail: str
