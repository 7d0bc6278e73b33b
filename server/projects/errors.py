"""Errors the projects domain reports; codes are part of the API contract."""

from http import HTTPStatus

from notefall.common.errors import InputError
from notefall.server.kit.errors import ProblemError


class FileTooLargeError(ProblemError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    code = "file_too_large"
    title = "File too large"


class InvalidSettingsError(ProblemError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    code = "invalid_settings"
    title = "Invalid render settings"


class UnreadableMidiError(ProblemError):
    """A MIDI file the engine refused; the code is the engine's (``not_midi``, ...)."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY
    code = "invalid_midi"
    title = "Unreadable MIDI file"

    def __init__(self, error: InputError) -> None:
        super().__init__(error.message)
        self.code = error.code
