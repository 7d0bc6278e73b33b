"""The plan's limits at submit, on every backend: renders per month, renders at once and
storage room, each checked under a lock of the submitter's row so two submits at once
cannot both take the last slot; a refused submit writes, copies and publishes nothing."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
import redis
from notefall.common.settings import RenderSettings
from notefall.common.tiers import GB, MB
from notefall.server.accounts.models import User
from notefall.server.kit.db import Database, transaction_scope
from notefall.server.kit.settings import Settings
from notefall.server.renders.models import Render, RenderStep
from notefall.server.renders.service import estimated_output_bytes, next_reset, period_of
from notefall.server.usage.models import ChargedFile
from sqlalchemy import func, select, update

from tests.support.render_farm import FAST_SETTINGS, project_with_midi

from .conftest import TestClient, signed_in_headers
from .test_app import assert_problem

RENDERS = "/api/v1/renders"


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    db = Database(settings.database_url)
    yield db
    db.dispose()


@pytest.fixture
def ada(client: TestClient, settings: Settings) -> dict[str, str]:
    return signed_in_headers(client, settings, "ada@example.com")


def _user(database: Database, email: str) -> User:
    with transaction_scope(database) as session:
        return session.scalars(select(User).where(User.email == email)).one()


def _set_tier(database: Database, email: str, tier: str) -> None:
    with transaction_scope(database) as session:
        session.execute(update(User).where(User.email == email).values(tier=tier))


def _add_renders(
    database: Database, email: str, count: int, status: str, period: str | None = None
) -> None:
    """Earlier renders of ``email``, written as rows (what the quota counts)."""
    owner = _user(database, email)
    with transaction_scope(database) as session:
        for _ in range(count):
            render_id = uuid.uuid4()
            session.add(
                Render(
                    id=render_id,
                    owner_id=owner.id,
                    project_name="Earlier",
                    status=status,
                    tier=owner.tier,
                    queue=f"render.{owner.tier}",
                    settings={},
                    fingerprint=uuid.uuid4().hex,
                    midi_sha256="0" * 64,
                    input_midi_key=f"renders/{render_id}/input.mid",
                    period=period or period_of(datetime.now(UTC)),
                )
            )


def _files(settings: Settings) -> list:
    return sorted(p for p in (settings.data_dir / "storage").rglob("*") if p.is_file())


def _count(database: Database, model: type) -> int:
    with transaction_scope(database) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _queued_messages(settings: Settings) -> int:
    client = redis.Redis.from_url(str(settings.redis_url))
    try:
        return sum(int(client.llen(name)) for name in client.scan_iter(match="render.*"))
    finally:
        client.close()


def _submit(client: TestClient, headers: dict, project_id: str, **settings: object):
    body = {"project_id": project_id, "settings": {**FAST_SETTINGS, **settings}}
    return client.post(RENDERS, json=body, headers=headers)


def _at_once(calls: list[Callable[[], object]]) -> list:
    """Run the calls in threads released together; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_the_monthly_quota_counts_this_months_queued_running_and_succeeded_renders(
    client: TestClient, settings: Settings, ada: dict, database: Database
):
    project_id = project_with_midi(client, ada)
    _add_renders(database, "ada@example.com", 4, "succeeded")
    # These do not count: failed, cancelled and dead renders, and last month's.
    for status in ("failed", "cancelled", "dead"):
        _add_renders(database, "ada@example.com", 2, status)
    _add_renders(database, "ada@example.com", 3, "succeeded", period="2020-01")
    assert _submit(client, ada, project_id).status_code == 202

    _add_renders(database, "ada@example.com", 1, "succeeded")  # its slot of concurrency is free
    with transaction_scope(database) as session:
        session.execute(update(Render).where(Render.status == "queued").values(status="failed"))
    problem = assert_problem(_submit(client, ada, project_id, fps=30), 409, "render_quota_exceeded")
    resets = next_reset(datetime.now(UTC))
    assert problem["detail"].startswith(
        "You have used 5 of the 5 renders your Free plan includes this month; the quota "
        f"starts again on {resets:%B} 1."
    )
    assert "http://notefall.test/billing" in problem["detail"]
    assert problem["upgrade_url"] == "http://notefall.test/billing"
    assert (problem["limit"], problem["used"]) == (5, 5)
    assert problem["resets_at"] == resets.isoformat()

    usage = client.get("/api/v1/usage", headers=ada).json()
    assert usage["renders"] == {
        "used_this_month": 5,
        "monthly_limit": 5,
        "running": 0,
        "concurrent_limit": 1,
        "resets_at": resets.isoformat().replace("+00:00", "Z"),
    }
    assert usage["storage_bytes"] > 0 and usage["limits"]["renders_per_month"] == 5


def test_an_unlimited_plan_has_no_monthly_quota(client: TestClient, ada: dict, database: Database):
    _set_tier(database, "ada@example.com", "enterprise")
    _add_renders(database, "ada@example.com", 60, "succeeded")
    project_id = project_with_midi(client, ada)
    response = _submit(client, ada, project_id)
    assert response.status_code == 202, response.text
    assert (response.json()["tier"], response.json()["queue"]) == (
        "enterprise",
        "render.enterprise",
    )
    usage = client.get("/api/v1/usage", headers=ada).json()["renders"]
    assert (usage["used_this_month"], usage["monthly_limit"]) == (61, None)
    assert (usage["running"], usage["concurrent_limit"]) == (1, 4)


def test_two_submits_at_once_cannot_both_take_the_last_slot_of_the_month(
    client: TestClient, settings: Settings, ada: dict, database: Database
):
    _set_tier(database, "ada@example.com", "pro")  # two at once: only the quota can refuse
    _add_renders(database, "ada@example.com", 49, "succeeded")
    project_id = project_with_midi(client, ada)
    responses = _at_once(
        [
            lambda: _submit(client, ada, project_id, fps=24),
            lambda: _submit(client, ada, project_id, fps=30),
        ]
    )
    assert sorted(r.status_code for r in responses) == [202, 409], [r.text for r in responses]
    [refused] = [r for r in responses if r.status_code == 409]
    assert_problem(refused, 409, "render_quota_exceeded")
    with transaction_scope(database) as session:
        assert session.scalar(select(func.count()).where(Render.status == "queued")) == 1
    assert _queued_messages(settings) == 1


def test_the_concurrent_render_limit_counts_queued_and_running_renders(
    client: TestClient, settings: Settings, ada: dict, database: Database
):
    project_id = project_with_midi(client, ada)
    first = _submit(client, ada, project_id)
    assert first.status_code == 202
    problem = assert_problem(
        _submit(client, ada, project_id, fps=30), 409, "too_many_concurrent_renders"
    )
    assert problem["detail"].startswith(
        "You have 1 render queued or running, the most your Free plan runs at once (1); wait "
        "for one to finish or cancel one"
    )
    assert (problem["limit"], problem["running"]) == (1, 1)
    assert problem["upgrade_url"] == "http://notefall.test/billing"
    # Running counts too; once it ends, the slot is free again.
    with transaction_scope(database) as session:
        session.execute(update(Render).values(status="running"))
    assert_problem(_submit(client, ada, project_id, fps=30), 409, "too_many_concurrent_renders")
    with transaction_scope(database) as session:
        session.execute(update(Render).values(status="succeeded"))
    assert _submit(client, ada, project_id, fps=30).status_code == 202


def test_two_submits_at_once_cannot_both_take_the_last_concurrent_slot(
    client: TestClient, settings: Settings, ada: dict, database: Database
):
    project_id = project_with_midi(client, ada)
    responses = _at_once(
        [
            lambda: _submit(client, ada, project_id, fps=24),
            lambda: _submit(client, ada, project_id, fps=30),
        ]
    )
    assert sorted(r.status_code for r in responses) == [202, 409], [r.text for r in responses]
    [refused] = [r for r in responses if r.status_code == 409]
    assert_problem(refused, 409, "too_many_concurrent_renders")
    assert _count(database, Render) == 1 and _count(database, RenderStep) == 1
    assert _queued_messages(settings) == 1


def test_a_render_that_would_not_fit_in_storage_is_refused_and_nothing_is_published(
    client: TestClient, settings: Settings, ada: dict, database: Database
):
    project_id = project_with_midi(client, ada)
    owner = _user(database, "ada@example.com")
    with transaction_scope(database) as session:
        # The project's MIDI is charged already; this leaves less room than the video needs.
        session.add(
            ChargedFile(
                key="projects/x/big.wav", owner_id=owner.id, bytes=500 * MB - 20_000, kind="audio"
            )
        )
    files_before = _files(settings)
    problem = assert_problem(
        _submit(client, ada, project_id, preset="high"), 409, "storage_quota_exceeded"
    )
    assert problem["detail"].startswith("This render's video needs about ")
    assert "of the 500.0 MB your Free plan includes" in problem["detail"]
    assert problem["upgrade_url"] == "http://notefall.test/billing"
    assert problem["limit"] == 500 * MB and problem["needed"] > 0
    assert problem["used"] + problem["needed"] > problem["limit"]
    # Nothing written, copied or published.
    assert _count(database, Render) == 0 and _count(database, RenderStep) == 0
    assert _queued_messages(settings) == 0
    assert _files(settings) == files_before


def test_the_storage_estimate_grows_with_pixels_frames_preset_and_length():
    small = RenderSettings(resolution="720p", fps=30, preset="standard")
    assert estimated_output_bytes(small, 60) == pytest.approx(
        (1280 * 720 * 30 * 0.08 + 192_000) * 60 / 8, rel=1e-6
    )
    assert estimated_output_bytes(small, 120) > estimated_output_bytes(small, 60)
    assert estimated_output_bytes(
        RenderSettings(resolution="1080p", fps=60, preset="master"), 60
    ) > 4 * estimated_output_bytes(small, 60)
    prores = RenderSettings(resolution="1080p", format="mov")
    assert estimated_output_bytes(prores, 600) > 10 * GB // 100
    silent = RenderSettings(resolution="720p", no_audio=True)
    assert estimated_output_bytes(silent, 60) < estimated_output_bytes(small, 60)
