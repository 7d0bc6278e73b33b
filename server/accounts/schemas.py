"""Request and response bodies of the accounts API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

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
