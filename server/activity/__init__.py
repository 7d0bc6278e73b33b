"""The activity log: what happened to an account, readable by its owner (GET /api/v1/me/activity)."""

from .log import ActivityKind, record

__all__ = ["ActivityKind", "record"]
