"""The dead-letter queue for operators: list, requeue and discard, through
/api/v1/admin/dead-letters and `notefall admin dead-letters` (a real subprocess), and a
requeued render that runs to success on a real worker."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from notefall.cli.main import main
from notefall.server.kit.db import Database, transaction_scope
from notefall.server.kit.settings import Settings
from notefall.server.renders import keys, steps
from notefall.server.renders.models import Render
from notefall.server.renders.states import RenderStatus, StepName

from tests.support.render_farm import running_workers, worker_env

from .conftest import TestClient, create_app, signed_in_headers
from .test_app import assert_problem
from .test_metrics import scrape, value
from .test_render_events import create_render, user_id_of
from .test_render_pipeline import Farm, farm, submit, user_with_project

DEAD_LETTERS = "/api/v1/admin/dead-letters"


@pytest.fixture
def settings(tmp_path: Path, migrated_url: str, redis_url: str) -> Settings:
    # The render farm's fast test settings (1 s segments, short retries).
    return farm(tmp_path, migrated_url, redis_url)


@pytest.fixture
def view(settings: Settings) -> Iterator[Farm]:
    farm_view = Farm(settings)
    yield farm_view
    farm_view.close()


def notefall(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """`notefall ...` as an operator runs it: its own process, settings from NOTEFALL_*."""
    return subprocess.run(
        [sys.executable, "-m", "notefall.cli", *args],
        env=worker_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )


def notefall_here(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, *args: str
) -> tuple[int, str, str]:
    """`notefall ...` in this process (a subprocess costs seconds of imports): exit code,
    standard output and standard error."""
    for name, text in worker_env(settings).items():
        if name.startswith("NOTEFALL_"):
            monkeypatch.setenv(name, text)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def kill_render(settings: Settings, render_id: uuid.UUID, reason: str) -> None:
    """What a worker does with a step past its delivery limit."""
    database = Database(settings.database_url)
    client = redis.Redis.from_url(str(settings.redis_url))
    try:
        with transaction_scope(database) as session:
            render = session.get(Render, render_id)
            assert render is not None
            ref = steps.StepRef(render_id, render.attempt, StepName.PREPARE, 0)
            assert steps.send_to_dead_letters(
                session, client, render_id, render.attempt, ref, reason
            )
    finally:
        client.close()
        database.dispose()


def listed_ids(view: Farm) -> list[str]:
    return [json.loads(e)["render_id"] for e in view.redis.lrange(keys.DEAD_LETTERS, 0, -1)]


@pytest.fixture
def operator(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    headers = signed_in_headers(client, settings, "ops@example.com")
    code, out, err = notefall_here(monkeypatch, settings, "admin", "set-admin", "ops@example.com")
    assert code == 0, err
    assert "ops@example.com is now an operator" in out
    return headers


def test_only_operators_may_see_dead_letters(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    assert_problem(client.get(DEAD_LETTERS), 401, "invalid_access_token")
    headers = signed_in_headers(client, settings, "user@example.com")
    body = assert_problem(client.get(DEAD_LETTERS, headers=headers), 403, "admin_only")
    assert "notefall admin set-admin" in body["detail"]
    granted = notefall(settings, "admin", "set-admin", "user@example.com")
    assert granted.returncode == 0 and "is now an operator" in granted.stdout, granted.stderr
    assert client.get(DEAD_LETTERS, headers=headers).status_code == 200
    code, out, _ = notefall_here(
        monkeypatch, settings, "admin", "set-admin", "user@example.com", "--revoke"
    )
    assert code == 0 and "no longer an operator" in out
    assert_problem(client.get(DEAD_LETTERS, headers=headers), 403, "admin_only")


def test_list_joins_the_reason_and_relists_what_redis_lost(
    client: TestClient, settings: Settings, operator: dict[str, str], view: Farm
):
    owner = user_id_of(settings, "ops@example.com")
    poisoned = create_render(settings, owner, step_enqueued_seconds_ago=1)
    kill_render(settings, poisoned, "EncoderError: ffmpeg exited with 234")
    # Dead in the database, but its Redis entry is gone (Redis restarted empty, say).
    lost = create_render(settings, owner, status=RenderStatus.DEAD, error_code="render_dead")
    assert listed_ids(view) == [str(poisoned)]
    assert value(scrape(client), "notefall_dead_letters") == 1

    response = client.get(DEAD_LETTERS, headers=operator)
    assert response.status_code == 200
    items = {item["render_id"]: item for item in response.json()["items"]}
    assert set(items) == {str(poisoned), str(lost)}
    assert items[str(poisoned)]["reason"] == "EncoderError: ffmpeg exited with 234"
    assert items[str(poisoned)]["step"] == "prepare:0"
    assert items[str(poisoned)]["error_code"] == "render_dead"
    assert "listed again" in items[str(lost)]["reason"]
    assert sorted(listed_ids(view)) == sorted([str(poisoned), str(lost)])
    assert value(scrape(client), "notefall_dead_letters") == 2


def test_requeue_starts_the_render_over_and_a_worker_finishes_it(
    client: TestClient, settings: Settings, operator: dict[str, str], view: Farm, tmp_path: Path
):
    headers, project_id = user_with_project(client, settings, "composer@example.com")
    render_id = submit(client, headers, project_id)
    kill_render(settings, render_id, "poison: too many deliveries")
    dead = view.render(render_id)
    assert dead.status == "dead" and dead.attempt == 1

    response = client.post(f"{DEAD_LETTERS}/{render_id}/requeue", headers=operator)
    assert response.status_code == 202, response.text
    assert response.json() == {"render_id": str(render_id), "status": "queued", "attempt": 2}
    row = view.render(render_id)
    assert (row.status, row.error_code, row.stage, row.percent) == ("queued", None, None, 0.0)
    assert [(s.attempt, s.name, s.status) for s in view.steps(render_id)][-1:] == [
        (2, "prepare", "pending")
    ]
    assert listed_ids(view) == []
    assert view.events(render_id)[-1]["status"] == "queued"
    assert_problem(
        client.post(f"{DEAD_LETTERS}/{render_id}/requeue", headers=operator),
        409,
        "not_a_dead_letter",
    )
    with running_workers(settings, tmp_path, count=1) as workers:
        done = view.wait_until_ended(render_id, timeout=60, workers=workers)
    assert done.status == "succeeded" and done.attempt == 2 and done.output_key
    # Its steps came from the free plan's queue: the workers recorded consuming it.
    assert view.redis.hget(keys.CONSUMED, "render.free") is not None


def test_discard_keeps_the_render_dead_and_deletes_its_work_files(
    client: TestClient, settings: Settings, operator: dict[str, str], view: Farm
):
    owner = user_id_of(settings, "ops@example.com")
    render_id = create_render(settings, owner, step_enqueued_seconds_ago=1)
    kill_render(settings, render_id, "poison")
    segment = keys.segment(render_id, 1, 0, "mp4")
    view.storage.put(segment, b"half a video")
    assert view.storage.exists(segment)

    response = client.delete(f"{DEAD_LETTERS}/{render_id}", headers=operator)
    assert response.status_code == 204
    assert view.render(render_id).status == "dead"
    assert not view.storage.exists(segment)
    assert listed_ids(view) == []
    # Discarded for good: listing does not put it back.
    assert client.get(DEAD_LETTERS, headers=operator).json() == {"items": []}
    assert listed_ids(view) == []
    assert_problem(
        client.delete(f"{DEAD_LETTERS}/{render_id}", headers=operator), 409, "not_a_dead_letter"
    )
    assert_problem(
        client.delete(f"{DEAD_LETTERS}/{uuid.uuid4()}", headers=operator), 404, "not_found"
    )


def test_the_cli_lists_requeues_and_discards(
    client: TestClient, settings: Settings, view: Farm, monkeypatch: pytest.MonkeyPatch
):
    signed_in_headers(client, settings, "cli@example.com")
    owner = user_id_of(settings, "cli@example.com")
    first = create_render(settings, owner, step_enqueued_seconds_ago=1)
    second = create_render(settings, owner, step_enqueued_seconds_ago=1)
    for render_id in (first, second):
        kill_render(settings, render_id, f"poison {render_id}")

    listing = notefall(settings, "admin", "dead-letters", "list")
    assert listing.returncode == 0, listing.stderr
    rows = [line.split("\t") for line in listing.stdout.splitlines()]
    assert {row[0] for row in rows} == {str(first), str(second)}
    assert all(row[-1] == f"poison {row[0]}" for row in rows)

    requeued = notefall(settings, "admin", "dead-letters", "requeue", str(first))
    assert requeued.returncode == 0, requeued.stderr
    assert "queued again as attempt 2" in requeued.stdout
    assert view.render(first).status == "queued"
    discarded = notefall(settings, "admin", "dead-letters", "discard", str(second))
    assert discarded.returncode == 0, discarded.stderr
    assert view.render(second).status == "dead"
    assert listed_ids(view) == []

    code, out, err = notefall_here(monkeypatch, settings, "admin", "dead-letters", "list")
    assert code == 0 and out == "" and "empty" in err
    code, _, err = notefall_here(
        monkeypatch, settings, "admin", "dead-letters", "requeue", str(first)
    )
    assert code == 2 and err.startswith("notefall: error: This render is queued")
    code, _, err = notefall_here(
        monkeypatch, settings, "admin", "dead-letters", "discard", "not-an-id"
    )
    assert code == 2 and "dead-letters list" in err


def test_the_app_lists_dead_letters_from_the_database_when_redis_is_down(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    from notefall.server.kit.redis_server import free_port

    with TestClient(create_app(settings)) as up:
        headers = signed_in_headers(up, settings, "ops2@example.com")
    assert notefall_here(monkeypatch, settings, "admin", "set-admin", "ops2@example.com")[0] == 0
    owner = user_id_of(settings, "ops2@example.com")
    render_id = create_render(
        settings, owner, status=RenderStatus.DEAD, error_message="Set aside for our operators."
    )
    down = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    with TestClient(create_app(down)) as client:
        items = client.get(DEAD_LETTERS, headers=headers).json()["items"]
    assert [(i["render_id"], i["reason"]) for i in items] == [
        (str(render_id), "Set aside for our operators.")
    ]
