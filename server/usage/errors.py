"""Errors the usage domain reports; codes are part of the API contract."""

from http import HTTPStatus

from notefall.server.kit.errors import ProblemError


class StorageQuotaExceededError(ProblemError):
    # 409, not 413: the file itself may be small; the account is what is full.
    status = HTTPStatus.CONFLICT
    code = "storage_quota_exceeded"
    title = "Storage quota exceeded"
