"""Errors the storage domain reports; codes are part of the API contract."""

from http import HTTPStatus

from notefall.server.kit import errors as kit_errors
from notefall.server.kit.errors import ProblemError


class InvalidFileLinkError(ProblemError):
    status = HTTPStatus.FORBIDDEN
    code = "invalid_file_link"
    title = "Invalid or expired file link"


# The base is reached through its module so it is not one of this module's own codes.
class StorageUnreachableError(kit_errors.ServiceUnavailableError):
    code = "storage_unreachable"
    title = "Storage unreachable"
