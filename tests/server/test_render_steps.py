"""Leases on render steps: the rules that keep any step from running twice at once."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis
from notefall.server.accounts.models import User
from notefall.server.kit.db import Database, transaction_scope
from notefall.server.kit.settings import Settings
from notefall.server.renders import keys, steps
from notefall.server.renders.models import Render, RenderStep
from notefall.server.renders.states import RenderStatus, StepName, StepStatus
from sqlalchemy import select

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.fixture
def database(settings: Settings):
    db = Database(settings.database_url)
    yield db
    db.dispose()


def new_render(database: Database) -> tuple[uuid.UUID, steps.StepRef]:
    with transaction_scope(database) as session:
        user = User(email=f"{uuid.uuid4().hex[:8]}@example.com", name="Ada", password_hash="x")
        session.add(user)
        session.flush()
        render = Render(
            owner_id=user.id,
            project_name="Nocturne",
            tier="free",
            queue="render.free",
            settings={},
            fingerprint="f" * 64,
            midi_sha256="m" * 64,
            input_midi_key="renders/x/input.mid",
            period="2026-11",
        )
        session.add(render)
        session.flush()
        step = steps.add_step(session, render, StepName.PREPARE)
        return render.id, steps.ref_of(step)


def claim(database: Database, settings: Settings, ref: steps.StepRef, now: datetime, worker="w1"):
    with transaction_scope(database) as session:
        return steps.claim(session, settings, ref, worker=worker, now=now)


def test_a_pending_step_is_claimed_once_and_its_render_starts_running(database, settings):
    render_id, ref = new_render(database)
    lease = claim(database, settings, ref, T0)
    assert lease is not None and lease.deliveries == 1
    # A second message for the same step (a duplicate, or the reconciler's copy) finds it held.
    assert claim(database, settings, ref, T0 + timedelta(seconds=1), worker="w2") is None
    with transaction_scope(database) as session:
        render = session.get(Render, render_id)
        assert render is not None
        assert (render.status, render.stage, render.started_at) == ("running", "preparing", T0)


def test_a_step_whose_heartbeat_went_stale_is_taken_over_and_its_old_holder_stops(
    database, settings
):
    _render_id, ref = new_render(database)
    first = claim(database, settings, ref, T0)
    assert first is not None
    with transaction_scope(database) as session:
        assert steps.heartbeat(session, first, fraction=0.5, now=T0 + timedelta(seconds=10))
    # Not stale yet: still held.
    assert claim(database, settings, ref, T0 + timedelta(seconds=30), worker="w2") is None
    late = T0 + timedelta(seconds=10 + settings.render_stale_seconds + 1)
    second = claim(database, settings, ref, late, worker="w2")
    assert second is not None and second.deliveries == 2
    with transaction_scope(database) as session:
        # The first holder learns at its next heartbeat, and cannot complete the step.
        assert not steps.heartbeat(session, first, now=late)
        assert steps.complete(session, first) is None
        assert steps.complete(session, second) is not None
        step = session.scalars(select_step(ref)).one()
        assert (step.status, step.worker, step.fraction) == ("done", "w2", 1.0)


def select_step(ref: steps.StepRef):
    return select(RenderStep).where(
        RenderStep.render_id == ref.render_id, RenderStep.name == ref.name.value
    )


def test_a_step_released_for_retry_waits_for_its_delay(database, settings):
    _render_id, ref = new_render(database)
    lease = claim(database, settings, ref, T0)
    assert lease is not None
    with transaction_scope(database) as session:
        released = steps.release_for_retry(session, settings, lease, "FFmpeg crashed", 8.0, now=T0)
        assert released is not None and released.status == "pending"
    assert claim(database, settings, ref, T0 + timedelta(seconds=7)) is None
    again = claim(database, settings, ref, T0 + timedelta(seconds=8))
    assert again is not None and again.deliveries == 2


def test_retry_delays_grow_to_the_cap_with_jitter(settings):
    delays = [steps.retry_delay(settings, n, 0.0) for n in range(1, 12)]
    assert delays == sorted(delays) and delays[0] < delays[3]
    assert max(delays) == settings.render_retry_cap_seconds / 2
    assert steps.retry_delay(settings, 1, 0.999) < settings.render_retry_base_seconds
    assert steps.retry_delay(settings, 40, 0.999) <= settings.render_retry_cap_seconds


def test_a_cancelled_render_lets_no_step_start_and_stops_running_ones(database, settings):
    render_id, ref = new_render(database)
    lease = claim(database, settings, ref, T0)
    assert lease is not None
    with transaction_scope(database) as session:
        ended = steps.fail_render(
            session, render_id, 1, RenderStatus.CANCELLED, "cancelled", "You cancelled it."
        )
        assert ended is not None
        # Ending it twice changes nothing.
        assert steps.fail_render(session, render_id, 1, RenderStatus.FAILED, "x", "y") is None
    with transaction_scope(database) as session:
        assert not steps.heartbeat(session, lease, now=T0 + timedelta(seconds=1))
        assert steps.complete(session, lease) is None
        step = session.scalars(select_step(ref)).one()
        assert step.status == StepStatus.FAILED
        render = session.get(Render, render_id)
        assert render is not None and render.status == "cancelled"
    assert claim(database, settings, ref, T0 + timedelta(hours=1)) is None


def test_steps_of_an_older_attempt_do_nothing(database, settings):
    render_id, ref = new_render(database)
    with transaction_scope(database) as session:
        render = session.get(Render, render_id)
        assert render is not None
        render.attempt = 2
    assert claim(database, settings, ref, T0) is None


def test_a_dead_render_is_recorded_and_listed_for_operators(database, settings):
    render_id, ref = new_render(database)
    client = redis.Redis.from_url(str(settings.redis_url))
    with transaction_scope(database) as session:
        dead = steps.send_to_dead_letters(
            session, client, render_id, 1, ref, "delivered 6 times", now=T0
        )
        assert dead is not None and dead.status == "dead"
        # Listed only once the database says so.
        assert client.llen(keys.DEAD_LETTERS) == 0
    (entry,) = client.lrange(keys.DEAD_LETTERS, 0, -1)
    assert json.loads(entry) == {
        "render_id": str(render_id),
        "attempt": 1,
        "step": "prepare:0",
        "reason": "delivered 6 times",
        "at": T0.isoformat(),
    }


def test_message_ids_name_their_step():
    ref = steps.StepRef(uuid.uuid4(), 3, StepName.SEGMENT, 12)
    step = RenderStep(render_id=ref.render_id, attempt=3, name="segment", index=12)
    task_id = steps.task_id_for(step)
    assert steps.step_ref_of_task_id(task_id) == ref
    assert steps.task_id_for(step) != task_id  # republished copies are told apart
    assert steps.step_ref_of_task_id("4b0d1c1e-uuid-of-some-other-task") is None
    assert steps.step_ref_of_task_id(f"render.{ref.render_id}.x.segment.1.ab") is None
