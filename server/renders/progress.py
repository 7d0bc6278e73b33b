"""One percentage and one ETA for the whole render, from the fractions of its steps.

Each kind of step has a fixed share of the bar (segments share theirs equally), close to
where the wall time goes for a typical render. Events are throttled per render, across
every worker process, with a Redis key: many segments running at once still send a few
events a second, not a few per segment.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

import redis

from . import keys
from .states import StepName

WEIGHTS = {
    StepName.PREPARE: 5.0,
    StepName.SEGMENT: 85.0,
    StepName.JOIN: 7.0,
    StepName.THUMBNAIL: 1.0,
    StepName.FINALIZE: 2.0,
}
ORDER = [StepName.PREPARE, StepName.SEGMENT, StepName.JOIN, StepName.THUMBNAIL, StepName.FINALIZE]
# At most one progress event per render this often (about 4 a second).
EVENT_INTERVAL_MS = 250


def overall_percent(
    name: StepName, fraction: float, segment_fractions: Iterable[float] = ()
) -> float:
    """Percent of the whole render while step ``name`` is ``fraction`` done; for segments,
    ``segment_fractions`` are every segment's fractions (this one's included)."""
    before = sum(WEIGHTS[step] for step in ORDER[: ORDER.index(name)])
    if name is StepName.SEGMENT:
        fractions = list(segment_fractions) or [fraction]
        done = sum(min(max(f, 0.0), 1.0) for f in fractions) / len(fractions)
    else:
        done = min(max(fraction, 0.0), 1.0)
    return min(100.0, before + WEIGHTS[name] * done)


def eta_seconds(started_at: datetime | None, now: datetime, percent: float) -> float | None:
    """Seconds left if the rest goes as fast as what is done; None until it can be told."""
    if started_at is None or percent < 1.0:
        return None
    elapsed = (now - started_at).total_seconds()
    if elapsed <= 0:
        return None
    return max(0.0, elapsed * (100.0 - percent) / percent)


# Publish only ahead of what any step of the render published before, and at most once
# per interval: one atomic script, so two workers never interleave their checks.
_MAY_PUBLISH = """
local last = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) <= last then return 0 end
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return 1
"""
LAST_PERCENT_TTL_SECONDS = 24 * 60 * 60


def may_publish(client: redis.Redis, render_id: uuid.UUID | str, percent: float) -> bool:
    """True when ``percent`` is ahead of the render's last progress event and no step of
    the render published one in the last EVENT_INTERVAL_MS, on any machine."""
    try:
        answer = client.eval(
            _MAY_PUBLISH,
            2,
            keys.progress_percent(render_id),
            keys.progress_throttle(render_id),
            f"{percent:.1f}",
            str(EVENT_INTERVAL_MS),
            str(LAST_PERCENT_TTL_SECONDS),
        )
    except redis.RedisError:
        return False
    return bool(answer)
