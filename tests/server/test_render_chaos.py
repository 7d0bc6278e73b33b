"""The farm never loses a render: real workers killed, stopped and starved of their Redis.

Everything is real: ``notefall worker`` processes (tests/support/render_farm.py), a
``notefall beat`` process, ``redis-server`` processes this file starts and restarts on a
fixed port, FFmpeg, and the database. The reconciler runs either in that beat process
(NOTEFALL_RECONCILE_EVERY_SECONDS=1) or, where a test says so, from the test's own loop.

Settings make failures quick to notice: 1-second segments, heartbeats every 0.5 s, a step
is stale after 3 s, a lost message is published again after 1 s.

"No step ran twice at the same time" is read from each render's event stream: every
delivery logs ``<step> started on <worker>`` and one of finished/stopped/failed, with the
step and the worker as fields (work.py). A delivery on a killed worker never logs its end;
it ended when its process group was killed.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis
from notefall.common.tiers import Tier
from notefall.server.admin.service import AdminService
from notefall.server.jobs import enqueue
from notefall.server.jobs.app import DEFAULT_QUEUE
from notefall.server.kit.app import create_app
from notefall.server.kit.db import Database, transaction_scope
from notefall.server.kit.mail import mailer_for
from notefall.server.kit.models import utcnow
from notefall.server.kit.redis_server import RedisServer, free_port
from notefall.server.kit.settings import Settings
from notefall.server.renders import broker, keys, queues
from notefall.server.renders.models import Render, RenderStep
from notefall.server.renders.reconcile import reconcile
from notefall.server.renders.states import RenderStatus, StepName, StepStatus
from notefall.server.usage.models import ChargedFile
from sqlalchemy import select

from tests.support.render_farm import (
    FAST_SETTINGS,
    Worker,
    project_with_midi,
    submit_render,
    tiny_midi,
    worker_env,
)

from .conftest import TestClient, make_settings, signed_in_headers

FARM_SETTINGS: dict[str, Any] = {
    "render_segment_seconds": 1.0,
    "render_stale_seconds": 3,
    "render_heartbeat_seconds": 0.5,
    "render_requeue_grace_seconds": 1,
    "render_retry_base_seconds": 0.2,
    "reconcile_every_seconds": 1,
    "rate_limit_scale": 1000.0,
}
TERMINAL_VALUES = {s.value for s in (RenderStatus.SUCCEEDED, RenderStatus.FAILED,
                                     RenderStatus.CANCELLED, RenderStatus.DEAD)}  # fmt: skip


def farm_settings(data_dir: Path, database_url: str, redis_url: str, **extra: Any) -> Settings:
    return make_settings(data_dir, database_url, redis_url=redis_url, **{**FARM_SETTINGS, **extra})


@dataclass
class Farm:
    """The API in-process (TestClient), the database and Redis, and helpers to drive them."""

    settings: Settings
    client: TestClient
    database: Database
    log_dir: Path
    processes: list[Worker | Beat] = field(default_factory=list)

    @property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(str(self.settings.redis_url), socket_timeout=5)

    def user(self, email: str, tier: Tier = Tier.ENTERPRISE) -> dict[str, str]:
        """A signed-in user on ``tier`` (set by the operators' service, as `notefall admin
        set-tier` does), so the plan's quotas never refuse a test's renders."""
        headers = signed_in_headers(self.client, self.settings, email)
        with transaction_scope(self.database) as session:
            AdminService(session, mailer_for(self.settings), utcnow()).set_tier(email, tier)
        return headers

    def project(self, headers: dict[str, str], seconds: float = 2.0, pitch: int = 60) -> str:
        return project_with_midi(self.client, headers, tiny_midi(seconds, pitch=pitch))

    def submit(self, headers: dict[str, str], project_id: str, **settings: Any) -> uuid.UUID:
        render = submit_render(self.client, headers, project_id, {**FAST_SETTINGS, **settings})
        return uuid.UUID(render["id"])

    def worker(self, name: str, **kwargs: Any) -> Worker:
        worker = Worker(self.settings, self.log_dir, name=name, **kwargs)
        self.processes.append(worker)
        return worker

    def beat(self) -> Beat:
        beat = Beat(self.settings, self.log_dir)
        self.processes.append(beat)
        return beat

    def renders(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Render]:
        with transaction_scope(self.database) as session:
            rows = session.scalars(select(Render).where(Render.id.in_(ids))).all()
            for row in rows:
                session.expunge(row)
        return {row.id: row for row in rows}

    def steps(self, render_id: uuid.UUID) -> list[RenderStep]:
        with transaction_scope(self.database) as session:
            rows = session.scalars(
                select(RenderStep).where(RenderStep.render_id == render_id)
            ).all()
            for row in rows:
                session.expunge(row)
        return list(rows)

    def wait(
        self,
        ids: Sequence[uuid.UUID],
        timeout: float,
        *,
        done: Callable[[Render], bool] = lambda r: r.status in TERMINAL_VALUES,
        reconciling: bool = False,
    ) -> dict[uuid.UUID, Render]:
        """Poll the rows until ``done`` holds for every render; with ``reconciling`` the test
        itself runs the reconciler between polls (instead of a beat process)."""
        deadline = time.monotonic() + timeout
        while True:
            if reconciling:
                with _redis_may_be_down():
                    reconcile(self.settings)
            rows = self.renders(ids)
            if len(rows) == len(ids) and all(done(row) for row in rows.values()):
                return rows
            if time.monotonic() > deadline:
                states = {str(i): (r.status, r.stage, r.percent) for i, r in rows.items()}
                raise AssertionError(f"renders not done after {timeout} s: {states}\n{self.logs()}")
            time.sleep(0.2)

    def logs(self) -> str:
        return "\n".join(f"--- {p.log_path.name}\n{p.log()[-3000:]}" for p in self.processes)

    def stop(self) -> None:
        for process in self.processes:
            if process.process.poll() is None:
                process.process.send_signal(signal.SIGTERM)
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.process.wait(30)
            process.kill_group()


class Beat(Worker):
    """A ``notefall beat`` process (the scheduler that sends the reconciler every second)."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.log_path = log_dir / f"beat-{time.monotonic_ns()}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "notefall.cli", "beat"],
                env=worker_env(settings),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )


class _redis_may_be_down:
    """The test's own reconciler loop goes on while a test has Redis stopped."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        return exc_type is not None and issubclass(exc_type, redis.RedisError)


@pytest.fixture
def farm(settings: Settings, tmp_path: Path) -> Iterator[Farm]:
    """A farm on the test's database and its own emptied Redis, with the quick settings."""
    yield from _farm(
        farm_settings(settings.data_dir, settings.database_url, str(settings.redis_url)), tmp_path
    )


def _farm(settings: Settings, tmp_path: Path) -> Iterator[Farm]:
    log_dir = tmp_path / "logs"
    log_dir.mkdir(exist_ok=True)
    database = Database(settings.database_url)
    with TestClient(create_app(settings)) as client:
        farm = Farm(settings, client, database, log_dir)
        try:
            yield farm
        finally:
            farm.stop()
            database.dispose()


# What the tests check -------------------------------------------------------------------------


def events_of(client: redis.Redis, render_id: uuid.UUID) -> list[dict[str, str]]:
    return [
        {k.decode(): v.decode() for k, v in fields.items()}
        for _id, fields in client.xrange(keys.events(render_id))  # type: ignore[union-attr]
    ]


def _at(event: dict[str, str]) -> datetime:
    return datetime.fromisoformat(event["at"])


def deliveries_of(
    client: redis.Redis, render_id: uuid.UUID, killed_at: datetime | None = None
) -> dict[str, list[tuple[datetime, datetime, str]]]:
    """Step -> [(start, end, worker)] of every delivery that ran it, from the log events.
    A delivery with no end event must have been on a killed worker: it ended at the kill."""
    runs: dict[str, list[tuple[datetime, datetime, str]]] = {}
    open_runs: dict[tuple[str, str], datetime] = {}
    for event in events_of(client, render_id):
        if event.get("type") != "log" or "step" not in event:
            continue
        step, worker, message = event["step"], event["worker"], event["message"]
        if " started on " in message:
            open_runs[(step, worker)] = _at(event)
        elif (step, worker) in open_runs and any(
            word in message for word in (" finished on ", " stopped on ", " failed on ")
        ):
            start = open_runs.pop((step, worker))
            runs.setdefault(step, []).append((start, _at(event), worker))
    for (step, worker), start in open_runs.items():
        assert killed_at is not None, f"{step} on {worker} never ended, and no worker was killed"
        assert start <= killed_at, f"{step} started on {worker} after the kill yet never ended"
        runs.setdefault(step, []).append((start, killed_at, worker))
    return runs


def assert_no_step_ran_twice_at_once(
    client: redis.Redis, render_id: uuid.UUID, killed_at: datetime | None = None
) -> dict[str, list[tuple[datetime, datetime, str]]]:
    # A delivery logs its end just after the commit that ended the render: let it land.
    deadline = time.monotonic() + 10
    while True:
        try:
            runs = deliveries_of(client, render_id, killed_at)
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    for step, intervals in runs.items():
        intervals.sort()
        for (_s1, end, w1), (start, _e2, w2) in itertools.pairwise(intervals):
            assert end <= start, f"{step} of {render_id} ran on {w1} and {w2} at once"
    return runs


def assert_succeeded_once(farm: Farm, render_id: uuid.UUID) -> None:
    """Succeeded, with one video and one thumbnail in storage and each charged once."""
    render = farm.renders([render_id])[render_id]
    assert render.status == RenderStatus.SUCCEEDED, (render.status, render.error_message)
    steps = farm.steps(render_id)
    for name in (StepName.PREPARE, StepName.JOIN, StepName.THUMBNAIL, StepName.FINALIZE):
        assert [s.status for s in steps if s.name == name] == [StepStatus.DONE]
    segments = [s for s in steps if s.name == StepName.SEGMENT]
    assert len(segments) == render.segment_count and {s.status for s in segments} == {"done"}
    # The inputs and the work folder are deleted just after the commit that ended it.
    folder = farm.settings.storage_dir / "renders" / str(render_id)
    expected = ["thumbnail.jpg", f"video.{render.format}"]
    deadline = time.monotonic() + 10
    # (Local storage leaves the emptied work folder; only files count.)
    while (files := sorted(p.name for p in folder.rglob("*") if p.is_file())) != expected:
        assert time.monotonic() < deadline, files
        time.sleep(0.1)
    with transaction_scope(farm.database) as session:
        charged = session.scalars(
            select(ChargedFile.key).where(ChargedFile.key.like(f"renders/{render_id}/%"))
        ).all()
    assert sorted(charged) == [render.thumbnail_key, render.output_key]


def worker_pids(worker: Worker) -> set[int]:
    try:
        parent = psutil.Process(worker.pid)
        return {parent.pid, *(child.pid for child in parent.children(recursive=True))}
    except psutil.NoSuchProcess:
        return set()


def wait_for_running_step(
    farm: Farm, render_id: uuid.UUID, worker: Worker, name: StepName, timeout: float = 30
) -> RenderStep:
    """The first step called ``name`` of the render seen running in ``worker``'s processes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = worker_pids(worker)
        for step in farm.steps(render_id):
            running = step.name == name and step.status == StepStatus.RUNNING
            if running and step.worker and int(step.worker.rsplit(":", 1)[1]) in pids:
                return step
        time.sleep(0.02)
    raise AssertionError(f"no {name} step ran on {worker.log_path.name}\n{farm.logs()}")


# The tests -----------------------------------------------------------------------------------


def test_kill_9_of_a_worker_mid_segment_the_render_still_succeeds_once(farm: Farm):
    headers = farm.user("ada@example.com")
    project = farm.project(headers, seconds=8.0)
    doomed = farm.worker("doomed")
    survivor = farm.worker("survivor")
    farm.beat()  # the reconciler, every second
    render_id = farm.submit(headers, project)
    taken = wait_for_running_step(farm, render_id, doomed, StepName.SEGMENT)
    doomed.kill_group()  # the machine is gone: worker, pool child and FFmpeg
    killed_at = utcnow()
    assert not worker_pids(doomed)

    farm.wait([render_id], 60)
    assert_succeeded_once(farm, render_id)
    runs = assert_no_step_ran_twice_at_once(farm.redis, render_id, killed_at)
    # The step the dead worker held was taken over by the survivor after its heartbeat aged.
    retaken = runs[f"segment:{taken.index}"]
    assert len(retaken) == 2 and retaken[-1][0] > killed_at
    step = next(s for s in farm.steps(render_id) if s.name == "segment" and s.index == taken.index)
    assert step.deliveries == 2 and step.worker != taken.worker
    assert survivor.process.poll() is None


def test_sigterm_mid_segment_finishes_the_segment_hands_back_what_it_held_and_exits(farm: Farm):
    """A warm shutdown: the running segment ends (it is bounded), the messages the worker
    held but had not started (here a countdown message) go back to Redis, exit code 0."""
    client = farm.redis
    held = enqueue(farm.settings, "notefall.ping", queue=DEFAULT_QUEUE, countdown=120)
    stopping = farm.worker("stopping")
    # Waits in the worker's memory (and in `unacked`) until its countdown ends.
    deadline = time.monotonic() + 30
    while held not in broker.unacked_task_ids(client):
        assert time.monotonic() < deadline, stopping.log()
        time.sleep(0.05)
    assert held not in broker.queued_task_ids(client, [DEFAULT_QUEUE])
    # The other worker takes renders only, so what comes back to `default` stays visible.
    farm.worker("other", queues=queues.RENDER_ORDER)
    headers = farm.user("ada@example.com")
    render_id = farm.submit(headers, farm.project(headers, seconds=8.0))
    taken = wait_for_running_step(farm, render_id, stopping, StepName.SEGMENT)

    signalled = time.monotonic()
    code = stopping.terminate(timeout=60)
    took = time.monotonic() - signalled
    assert code == 0, stopping.log()
    print(f"warm shutdown mid-segment took {took:.2f} s")

    assert held in broker.queued_task_ids(client, [DEFAULT_QUEUE])
    assert held not in broker.unacked_task_ids(client)
    farm.wait([render_id], 60, reconciling=True)
    assert_succeeded_once(farm, render_id)
    assert_no_step_ran_twice_at_once(client, render_id)
    # The segment it was drawing was finished by it, not run again elsewhere.
    step = next(s for s in farm.steps(render_id) if s.name == "segment" and s.index == taken.index)
    assert (step.deliveries, step.worker) == (1, taken.worker)


@pytest.fixture
def restartable_redis(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    """A Redis of this test's own on a fixed port, keeping an append-only file when the test
    is marked ``persistent`` (appendfsync everysec, as in production)."""
    persistent = bool(getattr(request, "param", False))
    server = RedisServer(tmp_path / "redis", persistent=persistent, port=free_port())
    with server:
        yield server


@pytest.fixture
def own_farm(settings: Settings, tmp_path: Path, restartable_redis: RedisServer) -> Iterator[Farm]:
    yield from _farm(
        farm_settings(settings.data_dir, settings.database_url, restartable_redis.url), tmp_path
    )


def restart(server: RedisServer, *, empty: bool) -> None:
    """SIGTERM (which writes out the append-only file), a pause, then the same port and
    folder again; ``empty`` first deletes what it kept, as a Redis without persistence."""
    port = server.port
    gc.collect()  # results of earlier publishes let go of their Redis connections first
    server.stop()
    if empty:
        for path in server.data_dir.iterdir():
            if path.name != "redis.log":
                if path.is_dir():
                    for child in path.iterdir():
                        child.unlink()
                    path.rmdir()
                else:
                    path.unlink()
    time.sleep(1.0)  # the workers notice Redis is gone
    server.port = port
    server.start()


def submit_many(farm: Farm, count: int, seconds: float = 2.0) -> list[uuid.UUID]:
    headers = farm.user("ada@example.com")
    # Distinct songs: an equal song with equal settings is answered with the first render.
    projects = [farm.project(headers, seconds=seconds, pitch=48 + n) for n in range(count)]
    return [farm.submit(headers, project) for project in projects]


@pytest.mark.parametrize("restartable_redis", [True], indirect=True)
def test_redis_restarted_mid_queue_with_its_append_only_file_every_render_completes(
    own_farm: Farm, restartable_redis: RedisServer
):
    farm = own_farm
    farm.worker("one")
    farm.worker("two")
    ids = submit_many(farm, 4)
    # Mid-queue: some renders running, others still waiting.
    farm.wait(ids, 30, done=lambda r: True)
    farm.wait(ids[:1], 30, done=lambda r: r.status == RenderStatus.RUNNING)
    restart(restartable_redis, empty=False)
    rows = farm.wait(ids, 90, reconciling=True)
    for render_id in ids:
        assert_succeeded_once(farm, render_id)
    assert {r.status for r in rows.values()} == {"succeeded"}


def test_redis_restarted_empty_the_reconciler_recovers_every_render_from_the_database(
    own_farm: Farm, restartable_redis: RedisServer
):
    farm = own_farm
    farm.worker("one")
    farm.worker("two")
    ids = submit_many(farm, 4)
    farm.wait(ids[:1], 30, done=lambda r: r.status == RenderStatus.RUNNING)
    # Work is still waiting in Redis (how much depends on the machine's speed), and Redis
    # loses all of it below: only the database knows what is left.
    assert any(r.status != RenderStatus.SUCCEEDED for r in farm.renders(ids).values())
    restart(restartable_redis, empty=True)
    assert farm.redis.dbsize() == 0 or not broker.queued_task_ids(
        farm.redis, queues.RENDER_QUEUES.values()
    )
    farm.wait(ids, 90, reconciling=True)
    for render_id in ids:
        assert_succeeded_once(farm, render_id)
