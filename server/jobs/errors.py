"""Errors of the job queue."""

from __future__ import annotations

from notefall.server.kit import errors as kit_errors


class QueueUnavailableError(kit_errors.ServiceUnavailableError):
    code = "queue_unavailable"
    title = "Job queue unavailable"
