"""What the broker holds: the task ids of messages waiting in the render queues and of
messages a worker has taken but not yet acknowledged.

The reconciler compares these with the steps the database says should be queued, so it
must read Redis the way kombu 5.4's Redis transport (kombu/transport/redis.py) writes it:

- A queue is one Redis list per priority bucket. kombu's ``PRIORITY_STEPS`` are 0, 3, 6
  and 9; bucket 0 is the queue's own name and the others are ``<queue>\\x06\\x16<step>``
  (``Channel.sep`` and ``Channel._q_for_pri``). ``LLEN`` of the bare name under-counts.
- Each list entry is a JSON message; Celery (protocol 2) puts the task id in
  ``headers["id"]`` and also in ``properties["correlation_id"]``.
- A delivered, unacknowledged message (``acks_late``: the whole time its task runs, and an
  ETA/countdown message from the moment a worker fetches it until it runs) sits in the hash
  ``unacked`` as JSON ``[message, exchange, routing_key]`` under its delivery tag, with the
  time it was delivered in the sorted set ``unacked_index``.

Cost: every call reads every message of the lists (LRANGE in chunks of ``CHUNK``) and the
whole ``unacked`` hash (HSCAN), then parses each message's JSON, so it is O(messages),
about a second per 100,000 queued messages on a small machine; the Redis server does the
same work in short commands (no single command blocks it for long). ``limit`` bounds the
scan: past it ``ScanTooLarge`` is raised rather than answering with part of the truth.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import redis

# kombu.transport.redis (5.4.2): Channel.sep, PRIORITY_STEPS, unacked_key, unacked_index_key.
PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)
UNACKED = "unacked"
UNACKED_INDEX = "unacked_index"

CHUNK = 1000
# Far beyond any healthy backlog of this farm; past it the reconciler skips the lost-message
# check for that run (logged) instead of re-publishing steps it could not look for.
DEFAULT_LIMIT = 200_000


class ScanTooLarge(Exception):
    """The broker holds more messages than the scan's limit."""


def priority_keys(queue: str) -> list[str]:
    """Every Redis list that holds messages of ``queue``, highest priority first."""
    return [queue if step == 0 else f"{queue}{PRIORITY_SEPARATOR}{step}" for step in PRIORITY_STEPS]


def task_id_of(message: Any) -> str | None:
    """The Celery task id of one kombu message (a dict), or None if it names none."""
    if not isinstance(message, dict):
        return None
    headers = message.get("headers")
    if isinstance(headers, dict) and isinstance(headers.get("id"), str):
        return str(headers["id"])
    properties = message.get("properties")
    if isinstance(properties, dict) and isinstance(properties.get("correlation_id"), str):
        return str(properties["correlation_id"])
    return None


def _loads(raw: bytes | str) -> Any:
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        return None


def _list_entries(client: redis.Redis, key: str) -> Iterator[bytes]:
    """Every entry of a list, in chunks. Producers LPUSH at the head and workers pop at the
    tail, so an entry's index only grows while it stays: reading chunks from the head until
    a short one sees every entry present for the whole scan (some twice, which is harmless)."""
    start = 0
    while True:
        chunk: list[bytes] = client.lrange(key, start, start + CHUNK - 1)  # type: ignore[assignment]
        yield from chunk
        if len(chunk) < CHUNK:
            return
        start += CHUNK


def _count(entries: Iterable[Any], limit: int | None) -> Iterator[Any]:
    for seen, entry in enumerate(entries, start=1):
        if limit is not None and seen > limit:
            raise ScanTooLarge(f"more than {limit} messages in the broker")
        yield entry


def queued_task_ids(
    client: redis.Redis, queues: Iterable[str], *, limit: int | None = DEFAULT_LIMIT
) -> set[str]:
    """Task ids of the messages waiting in ``queues`` (every priority bucket)."""
    entries = (
        entry
        for queue in queues
        for key in priority_keys(queue)
        for entry in _list_entries(client, key)
    )
    ids = set()
    for entry in _count(entries, limit):
        task_id = task_id_of(_loads(entry))
        if task_id is not None:
            ids.add(task_id)
    return ids


def unacked_deliveries(
    client: redis.Redis, *, limit: int | None = DEFAULT_LIMIT
) -> dict[str, float | None]:
    """Task id -> Unix time its message was delivered (None if the index lacks it), for every
    message a worker holds unacknowledged, whatever its queue."""
    held: dict[str, float | None] = {}
    pending: list[tuple[str, bytes]] = []

    def flush() -> None:
        pipe = client.pipeline(transaction=False)
        for _task_id, tag in pending:
            pipe.zscore(UNACKED_INDEX, tag)
        for (task_id, _tag), score in zip(pending, pipe.execute(), strict=True):
            held[task_id] = None if score is None else float(score)
        pending.clear()

    entries = client.hscan_iter(UNACKED, count=CHUNK)
    for tag, raw in _count(entries, limit):
        payload = _loads(raw)
        message = payload[0] if isinstance(payload, list) and payload else None
        task_id = task_id_of(message)
        if task_id is not None:
            pending.append((task_id, tag))
        if len(pending) >= CHUNK:
            flush()
    if pending:
        flush()
    return held


def unacked_task_ids(client: redis.Redis, *, limit: int | None = DEFAULT_LIMIT) -> set[str]:
    """Task ids of the messages workers hold unacknowledged (running, or waiting for their ETA)."""
    return set(unacked_deliveries(client, limit=limit))
