"""The project's own error types.

Every problem a user can cause (bad file, bad setting) is an ``InputError`` with a
stable ``code`` and a one-line message that says what to do. Anything else that
escapes is a bug in Notefall.
"""

from __future__ import annotations


class NotefallError(Exception):
    """Base class for errors Notefall raises on purpose."""

    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code


class InputError(NotefallError):
    """The user's input cannot be used (corrupt MIDI, unsupported setting, ...)."""

    code = "invalid_input"


class MidiError(InputError):
    """The MIDI file is not one we can read."""

    code = "invalid_midi"


class LimitExceeded(InputError):
    """The input is valid but beyond what Notefall renders (MIDI bombs, huge files)."""

    code = "limit_exceeded"


class AudioError(InputError):
    """The user's audio file or SoundFont cannot be used."""

    code = "invalid_audio"


class SettingsError(InputError):
    """A render setting is invalid or not allowed."""

    code = "invalid_settings"


class RenderCancelled(NotefallError):
    """The render was cancelled through its cancel token (or Ctrl-C)."""

    code = "cancelled"


class EncoderError(NotefallError):
    """FFmpeg failed for a reason that is not the user's input (treated as transient)."""

    code = "encoder_failed"


class PlanLimitError(InputError):
    """The settings are valid but the user's plan does not include them (4K on Free, ...)."""

    code = "not_in_plan"
