"""Errors the accounts domain reports; codes are part of the API contract."""

from http import HTTPStatus
from typing import ClassVar

from notefall.server.kit.errors import ProblemError


class WeakPasswordError(ProblemError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    code = "weak_password"
    title = "Password too weak"


class InvalidTokenError(ProblemError):
    status = HTTPStatus.BAD_REQUEST
    code = "invalid_token"
    title = "Invalid or expired link"


class WrongPasswordError(ProblemError):
    status = HTTPStatus.BAD_REQUEST
    code = "wrong_password"
    title = "Current password is wrong"


class InvalidGrantError(ProblemError):
    """The same answer for an unknown email and a wrong password (no account enumeration)."""

    status = HTTPStatus.BAD_REQUEST
    code = "invalid_grant"
    title = "Sign-in refused"


class EmailNotVerifiedError(ProblemError):
    status = HTTPStatus.FORBIDDEN
    code = "email_not_verified"
    title = "Email address not confirmed"


class RefreshTokenReusedError(ProblemError):
    status = HTTPStatus.BAD_REQUEST
    code = "refresh_token_reused"
    title = "Refresh token already used"
    # The session this error revokes must stay revoked.
    keeps_changes: ClassVar[bool] = True


class InvalidAccessTokenError(ProblemError):
    """Missing, forged or expired, or its session has ended: clients refresh or sign in again."""

    status = HTTPStatus.UNAUTHORIZED
    code = "invalid_access_token"
    title = "Invalid or expired access token"
    headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": "Bearer"}
