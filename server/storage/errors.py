"""Errors the storage domain reports; codes are part of the API contract."""

from http import HTTPStatus

from notefall.server.kit.errors import ProblemError


class InvalidFileLinkError(ProblemError):
    status = HTTPStatus.FORBIDDEN
    code = "invalid_file_link"
    title = "Invalid or expired file link"
