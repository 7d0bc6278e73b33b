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
    oauth_error: ClassVar[str | None] = "invalid_grant"


class RefreshTokenReusedError(ProblemError):
    status = HTTPStatus.BAD_REQUEST
    code = "refresh_token_reused"
    title = "Refresh token already used"
    oauth_error: ClassVar[str | None] = "invalid_grant"
    # The session this error revokes must stay revoked.
    keeps_changes: ClassVar[bool] = True


class InvalidAccessTokenError(ProblemError):
    """Missing, forged or expired, or its session has ended: clients refresh or sign in again."""

    status = HTTPStatus.UNAUTHORIZED
    code = "invalid_access_token"
    title = "Invalid or expired access token"
    headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": "Bearer"}


class SignInRefusedError(InvalidGrantError):
    """A refused password sign-in; keeps the sign_in_failed entry it adds to the activity log."""

    keeps_changes: ClassVar[bool] = True


class OtpRequiredError(ProblemError):
    """Right password, two-factor is on and no code came: clients ask for one and retry."""

    status = HTTPStatus.UNAUTHORIZED
    code = "otp_required"
    title = "Two-factor code required"
    oauth_error: ClassVar[str | None] = "invalid_grant"


class InvalidOtpError(ProblemError):
    status = HTTPStatus.BAD_REQUEST
    code = "invalid_otp"
    title = "Wrong two-factor code"
    oauth_error: ClassVar[str | None] = "invalid_grant"
    # The failed attempt stays in the activity log.
    keeps_changes: ClassVar[bool] = True


class ReauthenticationRequiredError(ProblemError):
    status = HTTPStatus.FORBIDDEN
    code = "reauthentication_required"
    title = "Confirm your password first"


class TwoFactorStateError(ProblemError):
    """Enabling what is on, disabling what is off, or enabling without a pending setup."""

    status = HTTPStatus.CONFLICT
    code = "two_factor_state"
    title = "Two-factor is not in that state"


class EmailTakenError(ProblemError):
    status = HTTPStatus.CONFLICT
    code = "email_taken"
    title = "Email address in use"


class ReauthRefusedError(WrongPasswordError):
    """A wrong password at re-authentication; keeps the sign_in_failed entry it records."""

    keeps_changes: ClassVar[bool] = True
