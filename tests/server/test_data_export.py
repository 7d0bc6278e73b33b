"""Data export: POST /api/v1/me/export, GET /api/v1/me/exports/{id} and the job that builds it."""

import hashlib
import io
import json
import uuid
import zipfile
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from notefall.server.kit.db import transaction
from notefall.server.kit.models import utcnow
from notefall.server.kit.settings import Settings
from notefall.server.profile.export_job import EXPORT_TASK, BuildOutcome, build_export
from notefall.server.profile.retention import purge_expired_exports
from notefall.server.profile.tasks import build_export_task
from PIL import Image
from sqlalchemy import text

from .conftest import TestClient, create_app, signed_in_headers
from .test_app import assert_problem

EXPORT = "/api/v1/me/export"
EXPORTS = "/api/v1/me/exports"
PRELUDE = Path(__file__).resolve().parents[2] / "common" / "examples" / "prelude_in_c.mid"


@pytest.fixture
def ada(client: TestClient, settings: Settings) -> dict[str, str]:
    return signed_in_headers(client, settings, "ada@example.com")


def _request(client: TestClient, headers: dict) -> dict:
    response = client.post(EXPORT, headers=headers)
    assert response.status_code == 202, response.text
    return response.json()


def _build(client: TestClient, settings: Settings, export_id: str, **later: float) -> BuildOutcome:
    now = utcnow() + timedelta(**later)
    return build_export(settings, client.app.state.storage, uuid.UUID(export_id), now)  # type: ignore[attr-defined]


def _download(client: TestClient, url: str) -> zipfile.ZipFile:
    link = urlsplit(url)
    response = client.get(f"{link.path}?{link.query}")
    assert response.status_code == 200
    return zipfile.ZipFile(io.BytesIO(response.content))


def _queued_tasks(redis_url: str) -> list[dict]:
    server = redis.Redis.from_url(redis_url)
    messages = []
    for key in server.keys("*"):
        if server.type(key) == b"list":
            messages += [json.loads(m) for m in server.lrange(key, 0, -1)]
    return [m["headers"] for m in messages]


def test_an_export_is_queued_once_at_a_time_and_private(
    client: TestClient, settings: Settings, ada: dict
):
    export = _request(client, ada)
    assert export["status"] == "pending"
    assert export["download_url"] is None and export["expires_at"] is None
    [task] = _queued_tasks(str(settings.redis_url))
    assert task["task"] == EXPORT_TASK and export["id"] in task["argsrepr"]
    assert client.get(f"{EXPORTS}/{export['id']}", headers=ada).json() == export

    problem = assert_problem(client.post(EXPORT, headers=ada), 409, "export_pending")
    assert export["id"] in problem["detail"]
    kinds = [e["kind"] for e in client.get("/api/v1/me/activity", headers=ada).json()["items"]]
    assert kinds.count("data_export_requested") == 1

    # Exports are private.
    bob = signed_in_headers(client, settings, "bob@example.com")
    assert_problem(client.get(f"{EXPORTS}/{export['id']}", headers=bob), 404, "not_found")
    assert_problem(client.get(f"{EXPORTS}/{uuid.uuid4()}", headers=ada), 404, "not_found")
    assert_problem(client.get(f"{EXPORTS}/{export['id']}"), 401, "invalid_access_token")
    assert_problem(client.post(EXPORT), 401, "invalid_access_token")


def test_the_zip_holds_the_account_and_its_files(client: TestClient, settings: Settings, ada: dict):
    midi = PRELUDE.read_bytes()
    project = client.post(
        "/api/v1/projects", json={"name": "Prelude", "tags": ["bach"]}, headers=ada
    ).json()
    files = {"file": ("prelude.mid", midi, "audio/midi")}
    assert (
        client.put(f"/api/v1/projects/{project['id']}/midi", files=files, headers=ada).status_code
        == 200
    )
    png = io.BytesIO()
    Image.new("RGB", (50, 50), "green").save(png, format="PNG")
    avatar = {"file": ("me.png", png.getvalue(), "image/png")}
    assert client.put("/api/v1/me/avatar", files=avatar, headers=ada).status_code == 204
    preferences = {"render_finished": False, "render_failed": True, "billing": True, "news": True}
    client.put("/api/v1/me/notifications", json=preferences, headers=ada)
    export = _request(client, ada)

    assert _build(client, settings, export["id"]) is BuildOutcome.READY
    ready = client.get(f"{EXPORTS}/{export['id']}", headers=ada).json()
    assert ready["status"] == "ready" and ready["finished_at"] is not None
    archive = _download(client, ready["download_url"])
    account = json.loads(archive.read("account.json"))

    assert account["profile"]["email"] == "ada@example.com" and account["profile"]["tier"] == "free"
    assert account["notifications"] == preferences
    assert account["privacy"]["product_analytics"] is False
    assert len(account["sessions"]) == 1 and account["sessions"][0]["user_agent"] == "testclient"
    kinds = {event["kind"] for event in account["activity"]}
    assert {"data_export_requested", "signed_in"} <= kinds
    [exported] = account["projects"]
    assert exported["name"] == "Prelude" and exported["tags"] == ["bach"]
    assert exported["song"]["note_count"] > 0
    assert exported["song"]["midi_sha256"] == hashlib.sha256(midi).hexdigest()
    assert archive.read(exported["files"]["midi_key"]) == midi
    thumbnail = Image.open(io.BytesIO(archive.read(exported["files"]["thumbnail_key"])))
    assert thumbnail.size == (640, 360)
    avatar_file = f"files/{account['profile']['avatar_key']}"
    assert Image.open(io.BytesIO(archive.read(avatar_file))).size == (256, 256)
    assert archive.testzip() is None

    # Ready: another export may be asked for.
    assert _request(client, ada)["status"] == "pending"


def test_building_twice_is_harmless(client: TestClient, settings: Settings, ada: dict):
    export = _request(client, ada)
    assert _build(client, settings, export["id"]) is BuildOutcome.READY
    first = client.get(f"{EXPORTS}/{export['id']}", headers=ada).json()
    assert _build(client, settings, export["id"], minutes=5) is BuildOutcome.ALREADY_FINISHED
    second = client.get(f"{EXPORTS}/{export['id']}", headers=ada).json()
    assert (
        second["finished_at"] == first["finished_at"]
        and second["expires_at"] == first["expires_at"]
    )
    assert "account.json" in _download(client, second["download_url"]).namelist()
    unknown = str(uuid.uuid4())
    assert _build(client, settings, unknown) is BuildOutcome.MISSING


def test_expiry_follows_the_tier_and_ends_the_link(
    client: TestClient, settings: Settings, ada: dict
):
    with client.app.state.database.engine.begin() as connection:  # type: ignore[attr-defined]
        connection.execute(text("UPDATE users SET tier = 'pro'"))
    export = _request(client, ada)
    start = utcnow()
    build_export(settings, client.app.state.storage, uuid.UUID(export["id"]), start)  # type: ignore[attr-defined]
    ready = client.get(f"{EXPORTS}/{export['id']}", headers=ada).json()
    expires = ready["expires_at"]
    assert abs((_parse(expires) - start) - timedelta(days=30)) < timedelta(seconds=1)
    # Within an hour of the end, the link lasts only as long as the export.
    client.app.state.clock = lambda: start + timedelta(days=30, minutes=-10)  # type: ignore[attr-defined]
    ada = _sign_in_again(client)
    near_end = client.get(f"{EXPORTS}/{export['id']}", headers=ada).json()["download_url"]
    link_expiry = int(dict(p.split("=") for p in urlsplit(near_end).query.split("&"))["expires"])
    assert link_expiry <= int(_parse(expires).timestamp())
    client.app.state.clock = lambda: start + timedelta(days=30, seconds=1)  # type: ignore[attr-defined]
    ada = _sign_in_again(client)
    expired = client.get(f"{EXPORTS}/{export['id']}", headers=ada).json()
    assert expired["status"] == "expired" and expired["download_url"] is None


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _sign_in_again(client: TestClient) -> dict[str, str]:
    """Ada's headers under the app's clock (days later, the first access token is long dead)."""
    form = {
        "grant_type": "password",
        "username": "ada@example.com",
        "password": "falling notes over a grand piano",
    }
    response = client.post("/api/v1/auth/token", data=form)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_a_failed_build_is_marked_failed(client: TestClient, settings: Settings, ada: dict):
    export = _request(client, ada)
    root = settings.data_dir / "storage"
    root.mkdir(parents=True, exist_ok=True)
    (root / "exports").write_text("a file where the exports folder should be")
    assert _build(client, settings, export["id"]) is BuildOutcome.FAILED
    failed = client.get(f"{EXPORTS}/{export['id']}", headers=ada).json()
    assert failed["status"] == "failed" and failed["download_url"] is None
    assert _build(client, settings, export["id"]) is BuildOutcome.ALREADY_FINISHED
    assert _request(client, ada)["status"] == "pending"  # a failed one does not block
    # Retention keeps a failed export 30 days, so its owner sees it failed.
    database = client.app.state.database  # type: ignore[attr-defined]
    for days, expected in ((29, 0), (31, 1)):
        for session in transaction(database):
            at = utcnow() + timedelta(days=days)
            assert purge_expired_exports(session, client.app.state.storage, at) == expected  # type: ignore[attr-defined]


def test_the_celery_task_builds_with_the_workers_settings(
    client: TestClient, settings: Settings, ada: dict, monkeypatch: pytest.MonkeyPatch
):

    # A worker reads its settings from the environment, like `notefall worker`.
    monkeypatch.setenv("NOTEFALL_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("NOTEFALL_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("NOTEFALL_SECRET_KEY", settings.secret_key.get_secret_value())
    monkeypatch.setenv("NOTEFALL_PUBLIC_URL", settings.public_url)
    monkeypatch.setenv("NOTEFALL_ENVIRONMENT", "test")
    export = _request(client, ada)
    assert build_export_task.apply(args=[export["id"]]).get() == "ready"
    ready = client.get(f"{EXPORTS}/{export['id']}", headers=ada).json()
    assert "account.json" in _download(client, ready["download_url"]).namelist()


def test_retention_removes_expired_exports_and_their_zips(
    client: TestClient, settings: Settings, ada: dict
):
    storage = client.app.state.storage  # type: ignore[attr-defined]
    database = client.app.state.database  # type: ignore[attr-defined]
    export = _request(client, ada)
    start = utcnow()
    build_export(settings, storage, uuid.UUID(export["id"]), start)
    zips = list((settings.data_dir / "storage" / "exports").rglob("*.zip"))
    assert len(zips) == 1

    def purge(at: datetime) -> int:
        for session in transaction(database):
            count = purge_expired_exports(session, storage, at)
        return count

    assert purge(start + timedelta(days=7, seconds=-1)) == 0  # the free tier keeps 7 days
    assert zips[0].exists()
    assert purge(start + timedelta(days=7)) == 1
    assert not zips[0].exists()
    assert purge(start + timedelta(days=7)) == 0
    assert_problem(client.get(f"{EXPORTS}/{export['id']}", headers=ada), 404, "not_found")


def test_a_queue_that_does_not_answer_leaves_no_export_behind(
    client: TestClient, settings: Settings, ada: dict
):
    # The same database and storage, but nothing listens on port 1: a dead queue.
    dead_queue = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    with TestClient(create_app(dead_queue)) as broken:
        assert_problem(broken.post(EXPORT, headers=ada), 503, "queue_unavailable")
    # Rolled back: no export stays pending (which would block every later request), and
    # nothing was logged.
    with client.app.state.database.engine.connect() as connection:  # type: ignore[attr-defined]
        assert connection.execute(text("SELECT count(*) FROM data_exports")).scalar_one() == 0
    events = client.get("/api/v1/me/activity", headers=ada).json()["items"]
    assert "data_export_requested" not in [e["kind"] for e in events]
