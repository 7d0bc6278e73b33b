"""Periodic tasks: domains register theirs with ``every`` when their task module is imported."""

from __future__ import annotations

from typing import Any

# Celery's beat_schedule, read by `celery beat` (started by `notefall stack`).
BEAT_SCHEDULE: dict[str, dict[str, Any]] = {}


def every(seconds: float, task: str, *, name: str | None = None, **options: Any) -> None:
    """Run ``task`` (its registered name) every ``seconds``; ``options`` go to apply_async."""
    # A message not started within one interval is superseded by the next one: without an
    # expiry, chores pile up while no worker consumes and then run back to back.
    options.setdefault("expires", seconds)
    BEAT_SCHEDULE[name or task] = {"task": task, "schedule": seconds, "options": options}
