"""Errors the renders API reports; codes are part of the API contract (docs/renders.md)."""

from __future__ import annotations

from http import HTTPStatus

from notefall.server.kit.errors import ProblemError


class _LimitError(ProblemError):
    """A limit of the user's plan: the body also carries ``upgrade_url`` (the billing page)
    and the limit and usage it names, for clients that show an upgrade button."""

    def __init__(self, detail: str, upgrade_url: str, **members: object) -> None:
        super().__init__(detail)
        self.members = {"upgrade_url": upgrade_url, **members}


class NotInPlanError(_LimitError):
    """The settings are valid but the plan does not render them; the code is the tier
    rules' own (``resolution_not_in_plan``, ``frame_rate_not_in_plan``, ...)."""

    # 403: the request is understood and allowed for other plans; sending it again as it is
    # cannot succeed until the plan changes (unlike a quota, which the next month resets).
    status = HTTPStatus.FORBIDDEN
    code = "not_in_plan"
    title = "Not included in your plan"

    def __init__(self, code: str, detail: str, upgrade_url: str) -> None:
        super().__init__(detail, upgrade_url)
        self.code = code


class RenderQuotaExceededError(_LimitError):
    status = HTTPStatus.CONFLICT
    code = "render_quota_exceeded"
    title = "Monthly render quota used up"


class TooManyConcurrentRendersError(_LimitError):
    status = HTTPStatus.CONFLICT
    code = "too_many_concurrent_renders"
    title = "Too many renders at once"


class ProjectHasNoMidiError(ProblemError):
    status = HTTPStatus.CONFLICT
    code = "project_has_no_midi"
    title = "The project has no MIDI file"


class InvalidIdempotencyKeyError(ProblemError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    code = "invalid_idempotency_key"
    title = "Invalid Idempotency-Key"


class IdempotencyKeyReusedError(ProblemError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    code = "idempotency_key_reused"
    title = "Idempotency-Key used for another request"


class RenderFinishedError(ProblemError):
    status = HTTPStatus.CONFLICT
    code = "render_finished"
    title = "The render has already finished"


class RenderNotReadyError(ProblemError):
    status = HTTPStatus.CONFLICT
    code = "render_not_ready"
    title = "The render has not finished yet"


class RenderHasNoVideoError(ProblemError):
    status = HTTPStatus.CONFLICT
    code = "render_has_no_video"
    title = "The render ended without a video"


class RenderExpiredError(ProblemError):
    status = HTTPStatus.GONE
    code = "render_expired"
    title = "The video was deleted"
