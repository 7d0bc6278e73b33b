"""Business counters of billing, kept in Redis so every process adds to the same numbers.

The API (checkouts started) and every worker (what webhooks tell) add to one hash, so
``/metrics`` on any API process reports the whole service, and a restart resets nothing.
Recording is best-effort: a Redis hiccup must never fail the checkout or the event it
counts (errors are logged at debug and swallowed). Counters are added after the change they
count has committed.

Layout (hashes):

- ``notefall:metrics:billing``: counter name -> count (``COUNTERS``)
- ``notefall:metrics:billing_lag``: ``<le>`` -> events processed with that lag (not
  cumulative), ``sum`` and ``count``: seconds from Stripe creating an event to its effects
  being committed here.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import redis
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

log = logging.getLogger("notefall.server.billing.metrics")

COUNTERS_KEY = "notefall:metrics:billing"
LAG_KEY = "notefall:metrics:billing_lag"

# name -> help text; the Prometheus metric is notefall_billing_<name>_total.
COUNTERS: dict[str, str] = {
    "checkouts_started": "Checkout sessions created for a paid plan",
    "checkouts_completed": "Subscription checkouts Stripe reported completed",
    "payments_succeeded": "Invoices paid (invoice.paid)",
    "payments_failed": "Failed invoice payments (invoice.payment_failed)",
    "webhook_errors": "Attempts at processing a stored webhook event that failed",
    "upgrades": "Accounts moved to a higher plan",
    "downgrades": "Accounts moved to a lower plan (Free included)",
    "cancellations": "Subscriptions that ended (canceled or expired)",
    "conversions": "Accounts moved from Free to a paid plan",
}

LAG_BUCKETS: tuple[float, ...] = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, math.inf)


def _label(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else f"{bound:g}"


def count(client: redis.Redis | None, name: str, amount: int = 1) -> None:
    """Add ``amount`` to the counter ``name`` (one of COUNTERS)."""
    if client is None:
        return
    if name not in COUNTERS:
        log.warning("unknown billing counter %r not counted", name)
        return
    try:
        client.hincrby(COUNTERS_KEY, name, amount)
    except redis.RedisError as error:
        log.debug("billing counter %s not counted: %s", name, error)


def observe_lag(client: redis.Redis | None, seconds: float) -> None:
    """Add one processed event's lag (event created → processed) to the histogram."""
    if client is None:
        return
    seconds = max(0.0, float(seconds))
    bucket = next(_label(b) for b in LAG_BUCKETS if seconds <= b)
    try:
        pipe = client.pipeline(transaction=True)
        pipe.hincrby(LAG_KEY, bucket, 1)
        pipe.hincrbyfloat(LAG_KEY, "sum", seconds)
        pipe.hincrby(LAG_KEY, "count", 1)
        pipe.execute()
    except redis.RedisError as error:
        log.debug("billing webhook lag not observed: %s", error)


@dataclass(slots=True)
class Recorded:
    counters: dict[str, float]
    lag_buckets: list[tuple[str, float]] = field(default_factory=list)
    lag_sum: float = 0.0
    lag_count: float = 0.0

    @property
    def payment_success_ratio(self) -> float:
        """Succeeded over attempted payments; 1.0 before any payment (nothing failed)."""
        attempted = self.counters["payments_succeeded"] + self.counters["payments_failed"]
        return self.counters["payments_succeeded"] / attempted if attempted else 1.0


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def read(client: redis.Redis) -> Recorded:
    """Everything recorded so far; raises redis.RedisError (the caller reports Redis down)."""
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(COUNTERS_KEY)
    pipe.hgetall(LAG_KEY)
    raw_counters, raw_lag = pipe.execute()
    counters = {name: 0.0 for name in COUNTERS}
    for name, value in raw_counters.items():
        if _text(name) in counters:
            counters[_text(name)] = float(value)
    lag = {_text(name): float(value) for name, value in raw_lag.items()}
    recorded = Recorded(counters, lag_sum=lag.get("sum", 0.0), lag_count=lag.get("count", 0.0))
    running = 0.0
    for bound in LAG_BUCKETS:
        running += lag.get(_label(bound), 0.0)
        recorded.lag_buckets.append((_label(bound), running))
    return recorded


def metric_families(client: redis.Redis) -> Iterator[Metric]:
    """The billing metrics for a Prometheus collector (``/metrics``)."""
    recorded = read(client)
    for name, help_text in COUNTERS.items():
        family = CounterMetricFamily(f"notefall_billing_{name}", help_text)
        family.add_metric([], recorded.counters[name])
        yield family
    ratio = GaugeMetricFamily(
        "notefall_billing_payment_success_ratio",
        "Paid invoices over attempted payments since counting began (1 before any)",
    )
    ratio.add_metric([], recorded.payment_success_ratio)
    yield ratio
    lag = HistogramMetricFamily(
        "notefall_billing_webhook_lag_seconds",
        "Seconds from Stripe creating a webhook event to its effects committed here",
    )
    lag.add_metric([], recorded.lag_buckets, recorded.lag_sum)
    yield lag


class BillingCollector:
    """A Prometheus collector of the billing counters (register it in /metrics' registry).
    Redis down or unset: nothing is yielded (``notefall_redis_up`` already says why)."""

    def __init__(self, client: redis.Redis | None) -> None:
        self.client = client

    def describe(self) -> list[Metric]:
        # Registering must not read Redis.
        return []

    def collect(self) -> Iterator[Metric]:
        if self.client is None:
            return
        try:
            families = list(metric_families(self.client))
        except redis.RedisError as error:
            log.debug("billing metrics not read: %s", error)
            return
        yield from families
