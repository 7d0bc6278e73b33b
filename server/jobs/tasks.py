"""Built-in tasks of the queue itself."""

from __future__ import annotations

from .app import celery_app


@celery_app.task(name="notefall.ping", ignore_result=False)
def ping(message: str = "pong") -> str:
    """Answers ``message``: proves that a worker consumes from the queue end to end."""
    return message
