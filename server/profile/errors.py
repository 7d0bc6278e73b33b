"""Errors the profile domain reports; codes are part of the API contract.

An avatar over its size limit is answered with the projects' ``file_too_large``, and a
wrong password on account deletion with the accounts' ``wrong_password``: one code per
meaning across the API.
"""

from http import HTTPStatus

from notefall.server.kit.errors import ProblemError


class NotAnImageError(ProblemError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    code = "not_an_image"
    title = "Not an image"


class ImageTooLargeError(ProblemError):
    """An image whose header claims more pixels than we decode (a decompression bomb or a
    huge photo)."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY
    code = "image_too_large"
    title = "Image too large"


class ExportPendingError(ProblemError):
    status = HTTPStatus.CONFLICT
    code = "export_pending"
    title = "An export is already being prepared"
