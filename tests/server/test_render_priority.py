"""Plans in priority order, with capacity that takes the free queue first (queues.py).

One real ``notefall worker`` with one process, renders submitted through the API; who
went first is read from the ``started_at`` of renders and of their steps (when a delivery
claimed them). These tests need worker.consume_queues_in_the_order_given: without it
kombu 5.4 polls the queues in an order that changes from process to process.
"""

from __future__ import annotations

import uuid

import pytest
from notefall.common.tiers import Tier
from notefall.server.kit.models import utcnow
from notefall.server.renders import queues
from notefall.server.stack import worker_arguments

from .test_render_chaos import Farm, assert_succeeded_once
from .test_render_chaos import farm as farm  # the fixture


def free_backlog(farm: Farm, count: int, seconds: float = 2.0) -> list[uuid.UUID]:
    """One render each from ``count`` free users (the free plan runs one at a time)."""
    ids = []
    for n in range(count):
        headers = farm.user(f"free{n}@example.com", Tier.FREE)
        ids.append(farm.submit(headers, farm.project(headers, seconds=seconds, pitch=50 + n)))
    return ids


def test_an_enterprise_render_goes_ahead_of_a_free_backlog_at_the_next_free_slot(farm: Farm):
    enterprise = farm.user("boss@example.com", Tier.ENTERPRISE)
    enterprise_project = farm.project(enterprise, seconds=2.0, pitch=70)
    backlog = free_backlog(farm, 3, seconds=4.0)
    farm.worker("only", concurrency=1)
    # Busy with the backlog: the first free render draws its segments.
    farm.wait(backlog[:1], 30, done=lambda r: r.stage == "rendering")
    urgent = farm.submit(enterprise, enterprise_project)
    sent = utcnow()  # its message is in Redis: it was published before the answer

    rows = farm.wait([*backlog, urgent], 60)
    assert {r.status for r in rows.values()} == {"succeeded"}
    urgent_steps = farm.steps(urgent)
    began = min(s.started_at for s in urgent_steps if s.started_at is not None)
    ended = max(s.finished_at for s in urgent_steps if s.finished_at is not None)
    free_steps = [s for i in backlog for s in farm.steps(i) if s.started_at is not None]
    later = [s for s in free_steps if s.started_at > sent]
    assert len(later) >= 10, "the backlog drained before the enterprise render came"
    # The next free slot: at most the one free step the worker had already taken.
    assert sum(1 for s in later if s.started_at < began) <= 1
    # And every step of it before any more free work (one render runs at a time here).
    assert sum(1 for s in later if s.started_at < ended) <= 1
    assert_succeeded_once(farm, urgent)


def test_a_worker_that_takes_the_free_queue_first_starts_a_free_render_first(farm: Farm):
    enterprise = farm.user("boss@example.com", Tier.ENTERPRISE)
    urgent = farm.submit(enterprise, farm.project(enterprise, seconds=2.0, pitch=70))
    (free,) = free_backlog(farm, 1)
    # Both wait when the worker starts; the free one was even submitted last.
    farm.worker("free-first", concurrency=1, queues=queues.FREE_FIRST)
    rows = farm.wait([urgent, free], 60)
    assert {r.status for r in rows.values()} == {"succeeded"}
    free_started, urgent_started = rows[free].started_at, rows[urgent].started_at
    assert free_started is not None and urgent_started is not None
    assert free_started < urgent_started
    # ...and it kept to the free queue while it had work there: the free render finished first.
    assert rows[free].finished_at < rows[urgent].finished_at


def test_the_stack_gives_its_first_worker_the_free_queue_first_when_it_runs_several(
    capsys: pytest.CaptureFixture[str],
):
    assert worker_arguments(1) == [["worker", "-c", "1"]]
    first, *others = worker_arguments(3)
    assert first == ["worker", "-c", "1", "-Q", ",".join(queues.FREE_FIRST)]
    assert others == [["worker", "-c", "1"]] * 2  # every queue, plans in priority order
    said = capsys.readouterr().err
    assert "worker 1 takes the free queue first: default, render.free" in said
