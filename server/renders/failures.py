"""What a step's exception means for its render: give up, try again, or just stop.

- An ``InputError`` (bad MIDI, a setting or a length the plan does not include) fails the
  render at once: running it again gives the same answer. Its message says what to do.
- ``RenderCancelled`` stops the step; the render was cancelled (or the step's lease was
  lost), so there is nothing to record, only files to clean up.
- Everything else is retried with a growing delay: FFmpeg crashes, storage, Redis or
  database hiccups, and bugs too (a bug that fails every time ends in the dead letters,
  where an operator sees it, instead of failing a user's render on the first hiccup).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import redis
from botocore.exceptions import BotoCoreError, ClientError
from notefall.common.errors import (
    AudioError,
    EncoderError,
    InputError,
    LimitExceeded,
    MidiError,
    PlanLimitError,
    RenderCancelled,
)
from sqlalchemy.exc import OperationalError


class Kind(StrEnum):
    PERMANENT = "permanent"
    TRANSIENT = "transient"
    CANCELLED = "cancelled"


# Failures expected in a healthy farm now and then: logged in one line, without a traceback.
EXPECTED_TRANSIENT = (EncoderError, OSError, redis.RedisError, OperationalError, BotoCoreError,
                      ClientError)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Failure:
    kind: Kind
    code: str
    message: str  # for the user (permanent) or the log and the retry event (transient)
    expected: bool = True  # False: a bug; logged with its traceback


def classify(error: BaseException) -> Failure:
    if isinstance(error, RenderCancelled):
        return Failure(Kind.CANCELLED, "cancelled", "The render was cancelled.")
    if isinstance(error, InputError):
        return Failure(Kind.PERMANENT, error.code, user_message(error))
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if isinstance(error, EXPECTED_TRANSIENT):
        return Failure(Kind.TRANSIENT, "transient", f"{type(error).__name__}: {reason}")
    return Failure(Kind.TRANSIENT, "internal", f"{type(error).__name__}: {reason}", expected=False)


def user_message(error: InputError) -> str:
    """The error's own sentence plus what to do about it, unless it already says so."""
    message = error.message.rstrip()
    if not message.endswith((".", "!", "?")):
        message += "."
    if isinstance(error, PlanLimitError):
        return message  # already names what the plan allows and how to get more
    if isinstance(error, (MidiError, LimitExceeded)):
        hint = "Upload a different MIDI file to the project, then start a new render."
    elif isinstance(error, AudioError):
        hint = "Upload a different recording to the project (or render without it), then start a new render."
    else:
        hint = "Change the render settings, then start a new render."
    return f"{message} {hint}"
