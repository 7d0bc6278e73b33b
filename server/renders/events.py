"""Progress and state events of a render: one Redis Stream per render.

Writers (the API on submit and cancel, every worker step) call ``publish``; readers (the
WebSocket) take a snapshot from the database, then read the stream from the last id they
saw, so a client that reconnects resumes where it left off (shared/QUEUE-NOTES.md).

An event is a flat mapping of strings:

- ``type``: ``state`` (status changed), ``progress`` (stage/percent/eta moved) or ``log``
- ``status``, ``stage``, ``percent`` (0..100 over the whole render), ``eta_seconds``
  (empty when unknown), ``message`` (for people; on failure it says what to do),
  ``error_code`` (on failure), ``at`` (ISO time).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import redis

from . import keys

# A render emits a few events a second at most; the tail a reconnecting client may need is
# short, and a finished render's stream expires.
STREAM_MAXLEN = 2000
STREAM_TTL_SECONDS = 7 * 24 * 60 * 60


def publish(
    client: redis.Redis,
    render_id: uuid.UUID | str,
    type: str,
    *,
    status: str,
    stage: str | None = None,
    percent: float | None = None,
    eta_seconds: float | None = None,
    message: str = "",
    error_code: str | None = None,
    fields: dict[str, str] | None = None,
) -> str | None:
    """Append an event; returns its stream id, or None when Redis did not take it.

    Progress is a courtesy: a Redis hiccup must never fail the render that reports it
    (the database row still holds the state, and the WebSocket's snapshot reads it).
    ``fields`` adds flat string fields (``log`` events name the ``worker`` and ``step``).
    """
    event: dict[Any, Any] = {
        "type": type,
        "status": status,
        "stage": stage or "",
        "percent": "" if percent is None else f"{percent:.1f}",
        "eta_seconds": "" if eta_seconds is None else f"{eta_seconds:.0f}",
        "message": message,
        "error_code": error_code or "",
        "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }
    for name, value in (fields or {}).items():
        event.setdefault(name, value)
    stream = keys.events(render_id)
    try:
        pipe = client.pipeline(transaction=False)
        pipe.xadd(stream, event, maxlen=STREAM_MAXLEN, approximate=True)
        pipe.expire(stream, STREAM_TTL_SECONDS)
        event_id, _ = pipe.execute()
    except redis.RedisError:
        return None
    return event_id.decode() if isinstance(event_id, bytes) else str(event_id)
