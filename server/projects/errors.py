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


class UnreadableAudioError(ProblemError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    code = "unreadable_audio"
    title = "Unreadable audio file"


class ForbiddenForRoleError(ProblemError):
    """A collaborator asked for something their role does not allow."""

    status = HTTPStatus.FORBIDDEN
    code = "forbidden_for_role"
    title = "Not allowed for your role"


class InvalidPresetError(ProblemError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    code = "invalid_preset"
    title = "Invalid settings preset"


class InvalidExpiryError(ProblemError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    code = "invalid_expiry"
    title = "Invalid expiry"


class AlreadyCollaboratorError(ProblemError):
    status = HTTPStatus.CONFLICT
    code = "already_collaborator"
    title = "Already a collaborator"


class CannotInviteOwnerError(ProblemError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    code = "cannot_invite_owner"
    title = "The owner cannot be a collaborator"


class TooManyTagsError(ProblemError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    code = "too_many_tags"
    title = "Too many tags"
