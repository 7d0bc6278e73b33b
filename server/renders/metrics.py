"""Render counters and the render-duration histogram, kept in Redis.

Every worker process on every machine adds to the same numbers (hashes under
``keys.METRICS``), so ``/metrics`` on any API process reports the whole farm, and a
restarted worker does not reset a counter. Recording is best-effort: a Redis hiccup must
never fail the render it counts, so errors are logged at debug and swallowed.

Layout (all hashes):

- ``notefall:metrics:outcomes``: outcome (succeeded, failed, cancelled, dead) -> count
- ``notefall:metrics:counters``: ``retries`` -> count
- ``notefall:metrics:render_seconds``: ``<resolution>|<le>`` -> observations in that
  bucket (not cumulative: one HINCRBY per observation), ``<resolution>|sum`` (float) and
  ``<resolution>|count``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import redis
from fastapi import APIRouter, Request, Response
from notefall.server.billing.metrics import BillingCollector
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from . import keys
from .broker import UNACKED, priority_keys

log = logging.getLogger("notefall.server.renders.metrics")

OUTCOMES = ("succeeded", "failed", "cancelled", "dead")
OUTCOMES_KEY = f"{keys.METRICS}:outcomes"
COUNTERS_KEY = f"{keys.METRICS}:counters"
RENDER_SECONDS_KEY = f"{keys.METRICS}:render_seconds"
RETRIES_FIELD = "retries"
# From a few-second clip to an hour-long concert; the last bucket catches the rest.
RENDER_SECONDS_BUCKETS: tuple[float, ...] = (
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1200.0,
    1800.0,
    3600.0,
    math.inf,
)


def _bucket_label(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else f"{bound:g}"


def _bucket_for(seconds: float) -> str:
    for bound in RENDER_SECONDS_BUCKETS:
        if seconds <= bound:
            return _bucket_label(bound)
    return "+Inf"


def record_outcome(client: redis.Redis, outcome: str) -> None:
    """Count a render that ended as ``outcome`` (succeeded, failed, cancelled or dead)."""
    outcome = str(outcome)
    if outcome not in OUTCOMES:
        # A caller's mistake must not fail the render it counts either.
        log.warning("unknown render outcome %r not counted; expected one of %s", outcome, OUTCOMES)
        return
    try:
        client.hincrby(OUTCOMES_KEY, outcome, 1)
    except redis.RedisError as error:
        log.debug("render outcome %s not counted: %s", outcome, error)


def record_retry(client: redis.Redis) -> None:
    """Count a step handed back for another delivery after a transient error."""
    try:
        client.hincrby(COUNTERS_KEY, RETRIES_FIELD, 1)
    except redis.RedisError as error:
        log.debug("render retry not counted: %s", error)


RESOLUTION_CLASSES = (720, 1080, 1440, 2160)


def resolution_class(resolution: str) -> str:
    """``1080p`` for "1080p" or "1920x1080" (and "1080x1920"); smaller sizes are the
    smallest class, sizes between two classes the larger one; unreadable text ``other``."""
    text = resolution.strip().lower()
    try:
        if text.endswith("p"):
            short = int(text[:-1])
        else:
            width, height = (int(part) for part in text.split("x"))
            short = min(width, height)
    except ValueError:
        return "other"
    for height in RESOLUTION_CLASSES:
        if short <= height:
            return f"{height}p"
    return "other"


def observe_render_seconds(client: redis.Redis, resolution: str, seconds: float) -> None:
    """Add a finished render's wall time (submit to finish, or first start to finish) to
    the histogram of its resolution class: ``720p``, ``1080p``, ``1440p``, ``2160p`` or
    ``other`` (any WxH is filed by its shorter side, so users cannot mint new series)."""
    label = resolution_class(resolution)
    seconds = max(0.0, float(seconds))
    try:
        pipe = client.pipeline(transaction=True)
        pipe.hincrby(RENDER_SECONDS_KEY, f"{label}|{_bucket_for(seconds)}", 1)
        pipe.hincrbyfloat(RENDER_SECONDS_KEY, f"{label}|sum", seconds)
        pipe.hincrby(RENDER_SECONDS_KEY, f"{label}|count", 1)
        pipe.execute()
    except redis.RedisError as error:
        log.debug("render duration for %s not observed: %s", label, error)


# Reading (for /metrics) --------------------------------------------------------------------


@dataclass(slots=True)
class Histogram:
    """One resolution's observations: cumulative buckets as Prometheus wants them."""

    buckets: list[tuple[str, float]] = field(default_factory=list)
    sum: float = 0.0
    count: float = 0.0


@dataclass(slots=True)
class Recorded:
    outcomes: dict[str, float]
    retries: float
    render_seconds: dict[str, Histogram]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def read(client: redis.Redis) -> Recorded:
    """Everything recorded so far; raises redis.RedisError (the caller reports Redis down)."""
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(OUTCOMES_KEY)
    pipe.hget(COUNTERS_KEY, RETRIES_FIELD)
    pipe.hgetall(RENDER_SECONDS_KEY)
    raw_outcomes, raw_retries, raw_seconds = pipe.execute()
    outcomes = {name: 0.0 for name in OUTCOMES}
    for name, value in raw_outcomes.items():
        outcomes[_text(name)] = float(value)
    per_bucket: dict[str, dict[str, float]] = {}
    for name, value in raw_seconds.items():
        label, _, part = _text(name).rpartition("|")
        per_bucket.setdefault(label, {})[part] = float(value)
    histograms: dict[str, Histogram] = {}
    for label, parts in sorted(per_bucket.items()):
        histogram = Histogram(sum=parts.get("sum", 0.0), count=parts.get("count", 0.0))
        running = 0.0
        for bound in RENDER_SECONDS_BUCKETS:
            running += parts.get(_bucket_label(bound), 0.0)
            # Exposed the way Prometheus writes bounds ("5.0", "+Inf").
            histogram.buckets.append((floatToGoString(bound), running))
        histograms[label] = histogram
    return Recorded(
        outcomes=outcomes,
        retries=float(raw_retries) if raw_retries is not None else 0.0,
        render_seconds=histograms,
    )


# Exposition (GET /metrics) ------------------------------------------------------------------


class FarmCollector:
    """Reads the farm's state on every scrape: Redis (queues, workers, counters) and the
    database (renders by status, oldest queued, stale steps). Either may be down; what it
    cannot read is left out, and ``notefall_redis_up`` / ``notefall_database_up`` say so."""

    def __init__(
        self,
        database: Any,
        client: redis.Redis | None,
        settings: Any,
        clock: Callable[[], datetime],
    ) -> None:
        self.database = database
        self.client = client
        self.settings = settings
        self.clock = clock

    def describe(self) -> list[Metric]:
        # Registering must not scrape Redis and the database.
        return []

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        yield from self._from_redis(now)
        yield from self._from_database(now)

    def _from_redis(self, now: datetime) -> Iterator[Metric]:
        from .presence import alive_workers, last_consumed
        from .queues import PRIORITY_ORDER

        up = GaugeMetricFamily("notefall_redis_up", "1 when Redis (the broker) answers, else 0")
        if self.client is None:
            up.add_metric([], 0)
            yield up
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            for queue in PRIORITY_ORDER:
                for key in priority_keys(queue):
                    pipe.llen(key)
            pipe.hlen(UNACKED)
            pipe.llen(keys.DEAD_LETTERS)
            answers = pipe.execute()
            workers = alive_workers(self.client, now.timestamp())
            consumed = last_consumed(self.client)
            recorded = read(self.client)
        except redis.RedisError as error:
            log.debug("metrics from Redis unavailable: %s", error)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        length = GaugeMetricFamily(
            "notefall_queue_length",
            "Messages waiting in each queue (every priority bucket; running ones are not counted)",
            labels=["queue"],
        )
        per_queue = len(priority_keys(PRIORITY_ORDER[0]))
        for position, queue in enumerate(PRIORITY_ORDER):
            chunk = answers[position * per_queue : (position + 1) * per_queue]
            length.add_metric([queue], float(sum(int(n) for n in chunk)))
        yield length
        unacked = GaugeMetricFamily(
            "notefall_queue_unacked",
            "Messages delivered to a worker and not yet acknowledged (running or prefetched)",
        )
        unacked.add_metric([], float(answers[-2]))
        yield unacked
        dead = GaugeMetricFamily(
            "notefall_dead_letters", "Renders waiting in the dead-letter list for an operator"
        )
        dead.add_metric([], float(answers[-1]))
        yield dead
        alive = GaugeMetricFamily(
            "notefall_workers_alive", "Worker processes seen in the last minute"
        )
        alive.add_metric([], float(len(workers)))
        yield alive
        busy = GaugeMetricFamily("notefall_workers_busy", "Tasks running on the live workers")
        busy.add_metric([], float(sum(worker.busy for worker in workers)))
        yield busy
        capacity = GaugeMetricFamily(
            "notefall_workers_capacity", "Task slots (concurrency) of the live workers"
        )
        capacity.add_metric([], float(sum(worker.concurrency for worker in workers)))
        yield capacity
        latest = max(consumed.values(), default=None)
        if latest is not None:
            since = GaugeMetricFamily(
                "notefall_seconds_since_consumed",
                "Seconds since any worker last finished a task (absent before the first one)",
            )
            since.add_metric([], max(0.0, now.timestamp() - latest))
            yield since
        totals = CounterMetricFamily(
            "notefall_renders", "Renders that ended, by outcome", labels=["outcome"]
        )
        for outcome, count in recorded.outcomes.items():
            totals.add_metric([outcome], count)
        yield totals
        retries = CounterMetricFamily(
            "notefall_render_retries", "Steps handed back for a retry after a transient error"
        )
        retries.add_metric([], recorded.retries)
        yield retries
        seconds = HistogramMetricFamily(
            "notefall_render_seconds",
            "Wall time of succeeded renders, by resolution",
            labels=["resolution"],
        )
        for label, histogram in recorded.render_seconds.items():
            seconds.add_metric([label], histogram.buckets, histogram.sum)
        yield seconds

    def _from_database(self, now: datetime) -> Iterator[Metric]:
        from .models import Render, RenderStep
        from .queues import RENDER_QUEUES
        from .states import RenderStatus, StepStatus

        up = GaugeMetricFamily("notefall_database_up", "1 when the database answers, else 0")
        stale_before = now - timedelta(seconds=self.settings.render_stale_seconds)
        try:
            with self.database.read_sessions() as session:
                by_status = dict(
                    session.execute(
                        select(Render.status, func.count()).group_by(Render.status)
                    ).all()
                )
                oldest = dict(
                    session.execute(
                        select(Render.queue, func.min(Render.created_at))
                        .where(Render.status == RenderStatus.QUEUED.value)
                        .group_by(Render.queue)
                    ).all()
                )
                stale = session.scalar(
                    select(func.count())
                    .select_from(RenderStep)
                    .where(
                        RenderStep.status == StepStatus.RUNNING.value,
                        RenderStep.heartbeat_at < stale_before,
                    )
                )
        except SQLAlchemyError as error:
            log.debug("metrics from the database unavailable: %s", error)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        statuses = GaugeMetricFamily(
            "notefall_renders_by_status", "Renders in the database, by status", labels=["status"]
        )
        for status in RenderStatus:
            statuses.add_metric([status.value], float(by_status.get(status.value, 0)))
        yield statuses
        running = GaugeMetricFamily("notefall_renders_running", "Renders running now")
        running.add_metric([], float(by_status.get(RenderStatus.RUNNING.value, 0)))
        yield running
        waiting = GaugeMetricFamily(
            "notefall_oldest_queued_seconds",
            "Age of the oldest render still queued (not started), by queue; 0 when none",
            labels=["queue"],
        )
        for queue in RENDER_QUEUES.values():
            since = oldest.get(queue)
            age = 0.0 if since is None else max(0.0, (now - since).total_seconds())
            waiting.add_metric([queue], age)
        yield waiting
        stale_steps = GaugeMetricFamily(
            "notefall_stale_steps",
            "Running steps whose heartbeat is older than NOTEFALL_RENDER_STALE_SECONDS",
        )
        stale_steps.add_metric([], float(stale or 0))
        yield stale_steps


router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    summary="Prometheus metrics of the render farm (keep it off the public internet)",
    response_class=Response,
)
def metrics(request: Request) -> Response:
    state = request.app.state
    limiter = state.rate_limiter
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        FarmCollector(
            state.database,
            None if limiter is None else limiter.client,
            state.settings,
            lambda: state.clock(),
        )
    )
    # Billing's business counters (docs/billing.md), kept in the same Redis.
    registry.register(BillingCollector(None if limiter is None else limiter.client))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
