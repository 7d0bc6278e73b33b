"""Errors the accounts domain reports; codes are part of the API contract."""

from http import HTTPStatus

from notefall.server.kit.errors import ProblemError


class WeakPasswordError(ProblemError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    code = "weak_password"
    title = "Password too weak"


class InvalidTokenError(ProblemError):
    status = HTTPStatus.BAD_REQUEST
    code = "invalid_token"
    title = "Invalid or expired link"
