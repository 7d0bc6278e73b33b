"""Errors of the authorization-code grant. Their codes are the RFC 6749 §5.2 error names,
so a client can branch on them as on any OAuth server's ``error``."""

from http import HTTPStatus
from typing import ClassVar

from notefall.server.kit.errors import ProblemError


class InvalidClientError(ProblemError):
    status = HTTPStatus.BAD_REQUEST
    code = "invalid_client"
    title = "Unknown client"


class AuthorizationCodeRefusedError(ProblemError):
    """Unknown, expired, or for another client or redirect URI, or a wrong code verifier."""

    status = HTTPStatus.BAD_REQUEST
    code = "invalid_grant"
    title = "Authorization code refused"


class AuthorizationCodeReusedError(ProblemError):
    """RFC 6749 §4.1.2: a code presented twice revokes what its first use issued."""

    status = HTTPStatus.BAD_REQUEST
    code = "invalid_grant"
    title = "Authorization code already used"
    # The session this error revokes must stay revoked.
    keeps_changes: ClassVar[bool] = True
