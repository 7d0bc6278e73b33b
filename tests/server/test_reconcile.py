"""The broker scan and the reconciler, against a real Redis and real kombu messages.

Rows are written with the models and steps.add_step, messages are published with the same
code the farm uses (steps.publish_after_commit / publish_now), and a message is "lost" by
deleting it from Redis, as a crash, a restart or an emptied Redis would.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import redis
from kombu import Connection, Queue
from notefall.cli.main import EXIT_OK, main
from notefall.common.tiers import Tier
from notefall.server.accounts.models import User
from notefall.server.jobs import enqueue
from notefall.server.kit.db import Database, transaction_scope
from notefall.server.kit.models import utcnow
from notefall.server.kit.settings import Settings
from notefall.server.renders import broker, keys, queues, steps
from notefall.server.renders.models import Render, RenderStep
from notefall.server.renders.reconcile import LOCK_KEY, reconcile
from notefall.server.renders.states import RenderStatus, StepName, StepStatus
from sqlalchemy import select

from .conftest import TEST_SECRET_KEY

FREE = queues.RENDER_QUEUES[Tier.FREE]


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    db = Database(settings.database_url)
    yield db
    db.dispose()


@pytest.fixture
def client(settings: Settings) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(str(settings.redis_url))
    yield c
    c.close()


def new_render(
    database: Database, settings: Settings, *, publish: bool = True, tier: str = "free"
) -> tuple[uuid.UUID, steps.StepRef]:
    """A queued render with its PREPARE step, published after commit as a submit does."""
    with transaction_scope(database) as session:
        user = User(email=f"{uuid.uuid4().hex[:8]}@example.com", name="Ada", password_hash="x")
        session.add(user)
        session.flush()
        render = Render(
            owner_id=user.id,
            project_name="Nocturne",
            tier=tier,
            queue=queues.queue_for(tier),
            settings={},
            fingerprint="f" * 64,
            midi_sha256="m" * 64,
            input_midi_key="renders/x/input.mid",
            period="2026-11",
        )
        session.add(render)
        session.flush()
        step = steps.add_step(session, render, StepName.PREPARE)
        if publish:
            steps.publish_after_commit(session, settings, render, step)
        return render.id, steps.ref_of(step)


def messages_for(client: redis.Redis, ref: steps.StepRef) -> int:
    ids = broker.queued_task_ids(client, queues.RENDER_QUEUES.values())
    return sum(1 for task_id in ids if steps.step_ref_of_task_id(task_id) == ref)


def drop_messages_for(client: redis.Redis, ref: steps.StepRef) -> None:
    """Lose the step's messages, as a Redis that restarted without its last writes would."""
    for queue in queues.RENDER_QUEUES.values():
        for key in broker.priority_keys(queue):
            for entry in client.lrange(key, 0, -1):  # type: ignore[union-attr]
                task_id = broker.task_id_of(broker._loads(entry))
                if task_id and steps.step_ref_of_task_id(task_id) == ref:
                    client.lrem(key, 0, entry)


def later(settings: Settings, seconds: float | None = None) -> datetime:
    """A moment past the requeue grace period (and the stale limit) from now."""
    wait = seconds or max(settings.render_requeue_grace_seconds, settings.render_stale_seconds)
    return utcnow() + timedelta(seconds=wait + 1)


def label(ref: steps.StepRef) -> str:
    return f"{ref.render_id} {ref.name.value}:{ref.index}"


# The broker scan ------------------------------------------------------------------------------


def test_the_scan_finds_task_ids_in_every_priority_bucket_and_in_unacked(
    settings: Settings, client: redis.Redis
):
    sent = {
        enqueue(settings, "notefall.ping", queue=FREE, priority=priority, task_id=f"t-{priority}")
        for priority in range(10)
    }
    sent.add(enqueue(settings, "notefall.ping", queue="render.pro", task_id="t-pro"))
    sent.add(enqueue(settings, "notefall.ping", queue=FREE, countdown=600, task_id="t-eta"))
    # kombu spreads priorities 0..9 over four lists; the bare name alone holds only some.
    assert sum(client.llen(key) for key in broker.priority_keys(FREE)) == 11  # type: ignore[misc]
    assert client.llen(FREE) < 11
    assert broker.queued_task_ids(client, queues.RENDER_QUEUES.values()) == sent
    assert broker.unacked_task_ids(client) == set()

    # A consumer that takes a message without acknowledging it, as an acks_late worker does.
    with Connection(str(settings.redis_url)) as connection:
        channel = connection.channel()
        taken = Queue(FREE, routing_key=FREE).bind(channel).get(no_ack=False)
        assert taken is not None
        held = taken.headers["id"]
        assert broker.unacked_task_ids(client) == {held}
        deliveries = broker.unacked_deliveries(client)
        assert deliveries[held] is not None and abs(deliveries[held] - utcnow().timestamp()) < 30
        assert broker.queued_task_ids(client, queues.RENDER_QUEUES.values()) == sent - {held}
        taken.ack()
    assert broker.unacked_task_ids(client) == set()


def test_the_scan_reads_long_queues_in_chunks_and_refuses_past_its_limit(
    settings: Settings, client: redis.Redis
):
    count = broker.CHUNK * 2 + 17
    with Connection(str(settings.redis_url)) as connection:
        producer = connection.Producer()
        for n in range(count):
            producer.publish(
                {}, routing_key=FREE, headers={"id": f"bulk-{n}"}, declare=[Queue(FREE)]
            )
    assert len(broker.queued_task_ids(client, [FREE])) == count
    with pytest.raises(broker.ScanTooLarge):
        broker.queued_task_ids(client, [FREE], limit=count - 1)


# The reconciler ------------------------------------------------------------------------------


def test_a_pending_step_whose_message_was_lost_is_published_again_and_a_present_one_is_left(
    settings: Settings, database: Database, client: redis.Redis
):
    _lost_render, lost = new_render(database, settings)
    _kept_render, kept = new_render(database, settings)
    assert messages_for(client, lost) == messages_for(client, kept) == 1
    drop_messages_for(client, lost)
    assert messages_for(client, lost) == 0

    # Within the grace period nothing is done: the message may still be on its way.
    early = reconcile(settings, utcnow())
    assert early.republished == [] and early.skipped is None

    report = reconcile(settings, later(settings))
    assert report.lost == [label(lost)]
    assert report.stale == report.next_steps == []
    assert messages_for(client, lost) == 1
    assert messages_for(client, kept) == 1  # present: not doubled
    with transaction_scope(database) as session:
        step = session.scalars(
            select(RenderStep).where(RenderStep.render_id == lost.render_id)
        ).one()
        assert step.status == StepStatus.PENDING and step.enqueued_at is not None
        assert step.enqueued_at > utcnow()  # the run's own clock, past the grace period

    # The next run finds the new message: nothing more is sent.
    assert reconcile(settings, later(settings)).republished == []
    assert messages_for(client, lost) == 1


def test_a_step_never_published_because_redis_was_down_is_published(
    settings: Settings, database: Database, client: redis.Redis
):
    _render_id, ref = new_render(database, settings, publish=False)
    report = reconcile(settings, later(settings))
    assert report.lost == [label(ref)]
    assert messages_for(client, ref) == 1


def test_a_retry_that_is_not_due_yet_is_left_alone(
    settings: Settings, database: Database, client: redis.Redis
):
    _render_id, ref = new_render(database, settings, publish=False)
    with transaction_scope(database) as session:
        step = session.scalars(
            select(RenderStep).where(RenderStep.render_id == ref.render_id)
        ).one()
        step.not_before = utcnow() + timedelta(hours=1)
    assert reconcile(settings, later(settings)).republished == []
    assert messages_for(client, ref) == 0


def test_a_running_step_whose_heartbeat_went_stale_gets_a_new_message_once(
    settings: Settings, database: Database, client: redis.Redis
):
    _render_id, ref = new_render(database, settings)
    drop_messages_for(client, ref)  # the dead worker's copy sits in `unacked` or nowhere
    with transaction_scope(database) as session:
        lease = steps.claim(session, settings, ref, worker="gone:1", now=utcnow())
    assert lease is not None

    # Heartbeat still fresh: a live worker holds it.
    assert reconcile(settings, utcnow()).republished == []

    when = later(settings)
    report = reconcile(settings, when)
    assert report.stale == [label(ref)]
    assert messages_for(client, ref) == 1
    # Whoever watches the render is told why it paused.
    [(_id, notice)] = client.xrange(keys.events(ref.render_id))
    assert notice[b"type"] == b"log" and notice[b"worker"] == b"gone:1"
    assert b"stopped answering" in notice[b"message"]
    # The copy waits for a worker: later runs do not add more.
    assert reconcile(settings, when + timedelta(seconds=1)).republished == []
    assert messages_for(client, ref) == 1

    # The new delivery takes the step over, and the old holder's heartbeat is refused.
    with transaction_scope(database) as session:
        second = steps.claim(session, settings, ref, worker="alive:2", now=when)
    assert second is not None and second.deliveries == 2
    with transaction_scope(database) as session:
        assert not steps.heartbeat(session, lease, now=when)


def test_a_message_held_unacknowledged_by_a_worker_counts_until_the_step_is_long_due(
    settings: Settings, database: Database, client: redis.Redis
):
    _render_id, ref = new_render(database, settings)
    with Connection(str(settings.redis_url)) as connection:
        channel = connection.channel()
        taken = Queue(FREE, routing_key=FREE).bind(channel).get(no_ack=False)
        assert taken is not None and steps.step_ref_of_task_id(taken.headers["id"]) == ref
        # Past the grace period but within the stale limit: the worker may still claim it.
        grace_only = utcnow() + timedelta(seconds=settings.render_requeue_grace_seconds + 1)
        assert grace_only < utcnow() + timedelta(seconds=settings.render_stale_seconds)
        assert reconcile(settings, grace_only).republished == []
        # A worker that held a due step this long without claiming it is gone.
        report = reconcile(settings, later(settings))
        assert report.lost == [label(ref)]
        assert messages_for(client, ref) == 1
        taken.ack()


def test_a_render_whose_segments_are_all_done_but_has_no_join_gets_one(
    settings: Settings, database: Database, client: redis.Redis
):
    render_id, prepare = new_render(database, settings, publish=False)
    finished = utcnow() - timedelta(hours=1)
    with transaction_scope(database) as session:
        render = session.get(Render, render_id)
        assert render is not None
        render.status, render.segment_count, render.frame_count = "running", 2, 48
        render.created_at = finished - timedelta(minutes=1)
        for index in range(2):
            steps.add_step(
                session,
                render,
                StepName.SEGMENT,
                index,
                first_frame=24 * index,
                last_frame=24 * (index + 1),
            )
        for step in session.scalars(select(RenderStep).where(RenderStep.render_id == render_id)):
            step.status, step.finished_at = StepStatus.DONE.value, finished
    report = reconcile(settings, utcnow())
    join = steps.StepRef(render_id, 1, StepName.JOIN, 0)
    assert report.next_steps == [label(join)]
    assert messages_for(client, join) == 1
    # Added once: the join is now pending with its message waiting.
    assert reconcile(settings, later(settings)).republished == []
    with transaction_scope(database) as session:
        names = sorted(
            s.name
            for s in session.scalars(select(RenderStep).where(RenderStep.render_id == render_id))
        )
    assert names == ["join", "prepare", "segment", "segment"]
    assert prepare.render_id == render_id


def test_renders_that_ended_and_steps_of_an_older_attempt_are_left_alone(
    settings: Settings, database: Database, client: redis.Redis
):
    ended, _ = new_render(database, settings, publish=False)
    older, _ = new_render(database, settings, publish=False)
    with transaction_scope(database) as session:
        steps.fail_render(session, ended, 1, RenderStatus.CANCELLED, "cancelled", "Cancelled.")
        render = session.get(Render, older)
        assert render is not None
        render.attempt = 2
        steps.add_step(session, render, StepName.PREPARE)
    report = reconcile(settings, later(settings))
    # Only the current attempt's prepare of the second render is published.
    assert report.lost == [label(steps.StepRef(older, 2, StepName.PREPARE, 0))]


def test_runs_never_overlap(settings: Settings, database: Database, client: redis.Redis):
    _render_id, ref = new_render(database, settings, publish=False)
    client.set(LOCK_KEY, "another-run", px=60_000)
    report = reconcile(settings, later(settings))
    assert report.skipped == "locked" and report.republished == []
    assert messages_for(client, ref) == 0
    assert client.get(LOCK_KEY) == b"another-run"  # not ours to release
    client.delete(LOCK_KEY)
    assert reconcile(settings, later(settings)).lost == [label(ref)]
    assert client.get(LOCK_KEY) is None


def test_admin_reconcile_prints_what_it_republished(
    settings: Settings,
    database: Database,
    client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    for name, value in {
        "NOTEFALL_DATA_DIR": str(settings.data_dir),
        "NOTEFALL_DATABASE_URL": settings.database_url,
        "NOTEFALL_REDIS_URL": str(settings.redis_url),
        "NOTEFALL_SECRET_KEY": TEST_SECRET_KEY,
        "NOTEFALL_ENVIRONMENT": "test",
        "NOTEFALL_PUBLIC_URL": "http://notefall.test",
        # A step counts as lost at once, so the command can be run right after the loss.
        "NOTEFALL_RENDER_REQUEUE_GRACE_SECONDS": "0.001",
    }.items():
        monkeypatch.setenv(name, value)
    _render_id, ref = new_render(database, settings, publish=False)
    assert main(["admin", "reconcile"]) == EXIT_OK
    out = capsys.readouterr().out
    assert f"lost from Redis, re-published: {label(ref)}" in out
    assert "Re-published 1 step" in out
    assert messages_for(client, ref) == 1
    assert main(["admin", "reconcile"]) == EXIT_OK
    assert capsys.readouterr().out.strip() == "Nothing to repair"


def test_a_dead_render_whose_redis_entry_was_lost_is_listed_again(
    settings: Settings, database: Database, client: redis.Redis
):
    render_id, ref = new_render(database, settings, publish=False)
    with transaction_scope(database) as session:
        assert steps.send_to_dead_letters(session, client, render_id, 1, ref, "poison") is not None
    assert client.llen(keys.DEAD_LETTERS) == 1
    client.delete(keys.DEAD_LETTERS)  # an emptied Redis
    report = reconcile(settings, utcnow())
    assert report.dead_letters_relisted == 1
    entries = [json.loads(e) for e in client.lrange(keys.DEAD_LETTERS, 0, -1)]  # type: ignore[union-attr]
    assert [e["render_id"] for e in entries] == [str(render_id)]
    # Listed once: the next run finds it there.
    assert reconcile(settings, utcnow()).dead_letters_relisted == 0
    assert client.llen(keys.DEAD_LETTERS) == 1
