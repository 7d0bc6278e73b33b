"""What can go wrong talking to the Notefall server, as typed errors the UI can act on.

Every error has ``message``: one sentence for a person (the server's ``detail`` when it sent
one), so ``desktop.ops.user_message`` shows it as it is.
"""

from __future__ import annotations

from typing import Any

from notefall.common.errors import NotefallError


class CloudError(NotefallError):
    """Anything the cloud side reports to the user (``message``: one sentence for a person)."""

    code = "cloud_error"


class OfflineError(CloudError):
    """The server could not be reached (no network, server down, DNS). Nothing was changed
    on the server by the failed request; the UI shows a banner with Retry."""

    code = "offline"

    def __init__(self, server_url: str, reason: str = "") -> None:
        why = f" ({reason})" if reason else ""
        super().__init__(
            f"Cannot reach the Notefall server at {server_url}{why}. "
            "Check your connection and press Retry; nothing was lost."
        )
        self.server_url = server_url


class NotSignedInError(CloudError):
    """No tokens, or the server ended the session (refresh refused): sign in again."""

    code = "not_signed_in"

    def __init__(self, message: str = "Sign in to use the cloud.") -> None:
        super().__init__(message)


class ProblemError(CloudError):
    """An ``application/problem+json`` answer: the server's ``code`` and ``detail``."""

    def __init__(self, status: int, code: str, detail: str, body: dict[str, Any]) -> None:
        super().__init__(detail, code=code)
        self.status = status
        self.code = code
        self.detail = detail
        self.body = body


class LimitError(ProblemError):
    """A refusal because of the plan (quota, concurrent renders, storage, a setting the plan
    does not include): carries where to upgrade."""

    @property
    def upgrade_url(self) -> str | None:
        value = self.body.get("upgrade_url")
        return value if isinstance(value, str) else None


class OtpRequiredError(ProblemError):
    """Right password, two-factor sign-in is on: ask for the authenticator code."""


def problem_from(status: int, body: Any, fallback: str) -> ProblemError:
    """The typed error of a server answer; ``fallback`` when the body is not a problem."""
    if not isinstance(body, dict):
        body = {}
    code = str(body.get("code") or f"http_{status}")
    detail = str(body.get("detail") or fallback)
    if code == "otp_required":
        return OtpRequiredError(status, code, detail, body)
    if "upgrade_url" in body:
        return LimitError(status, code, detail, body)
    return ProblemError(status, code, detail, body)
