"""Errors of the browser session; codes are part of the API contract."""

from http import HTTPStatus

from notefall.server.kit.errors import ProblemError


class CsrfFailedError(ProblemError):
    """A cookie-authenticated change without the session's CSRF token, or from another site."""

    status = HTTPStatus.FORBIDDEN
    code = "csrf_failed"
    title = "Cross-site request refused"
