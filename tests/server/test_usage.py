"""The usage ledger: every stored project file is charged to the project's owner, released
when it goes, and refused beyond the tier's storage quota; GET /usage reports it."""

import pytest
from notefall.common.tiers import Tier, limits_for
from notefall.server.accounts.models import User
from notefall.server.kit.db import Database, transaction
from notefall.server.kit.settings import Settings
from notefall.server.usage import charge_file, release_file
from sqlalchemy import select

from .conftest import TestClient, signed_in_headers
from .test_app import assert_problem
from .test_projects import PRELUDE, PROJECTS, _create, _stored_files, _upload, wav_bytes

FREE = limits_for(Tier.FREE)


@pytest.fixture
def ada(client: TestClient, settings: Settings) -> dict[str, str]:
    return signed_in_headers(client, settings, "ada@example.com")


def _stored_bytes(client: TestClient, headers: dict) -> int:
    response = client.get("/api/v1/usage", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["storage_bytes"]


def _charge_elsewhere(settings: Settings, email: str, key: str, n_bytes: int) -> None:
    """What another domain (an avatar, a data export) does through the usage functions."""
    database = Database(settings.database_url)
    try:
        for session in transaction(database):
            user = session.scalar(select(User).where(User.email == email))
            assert user is not None
            charge_file(session, user, key, n_bytes, "export")
    finally:
        database.dispose()


def _release_elsewhere(settings: Settings, key: str) -> None:
    database = Database(settings.database_url)
    try:
        for session in transaction(database):
            release_file(session, key)
    finally:
        database.dispose()


def test_usage_reports_the_tier_and_its_limits(client: TestClient, ada: dict):
    body = client.get("/api/v1/usage", headers=ada).json()
    assert body["tier"] == "free" and body["storage_bytes"] == 0
    assert body["storage_quota_bytes"] == FREE.storage_quota_bytes
    assert body["limits"]["max_audio_bytes"] == FREE.max_audio_bytes
    assert body["limits"]["renders_per_month"] == FREE.renders_per_month
    assert body["limits"]["title"] == "Free"
    # What a client needs to mark settings the plan does not include, before it submits.
    assert (body["limits"]["max_fps"], body["limits"]["formats"]) == (30, ["mp4", "webm"])
    assert body["limits"]["max_video_minutes"] == 10
    assert body["limits"]["transparent_video"] is False
    assert_problem(client.get("/api/v1/usage"), 401, "invalid_access_token")


def test_uploads_are_charged_and_released(client: TestClient, settings: Settings, ada: dict):
    midi, audio = PRELUDE.read_bytes(), wav_bytes()
    project = _create(client, ada, "Counted")
    _upload(client, ada, project["id"], midi)
    assert _stored_bytes(client, ada) == len(midi)  # thumbnails are not counted
    files = {"file": ("take.wav", audio, "audio/wav")}
    client.put(f"{PROJECTS}/{project['id']}/audio", files=files, headers=ada)
    assert _stored_bytes(client, ada) == len(midi) + len(audio)
    _upload(client, ada, project["id"], midi + b"\0\0")  # a replacement counts once
    assert _stored_bytes(client, ada) == len(midi) + 2 + len(audio)
    client.delete(f"{PROJECTS}/{project['id']}/audio", headers=ada)
    assert _stored_bytes(client, ada) == len(midi) + 2
    copy = client.post(f"{PROJECTS}/{project['id']}/duplicate", headers=ada).json()
    assert _stored_bytes(client, ada) == 2 * (len(midi) + 2)
    client.post(f"{PROJECTS}/bulk-delete", json={"ids": [project["id"], copy["id"]]}, headers=ada)
    assert _stored_bytes(client, ada) == 0


def test_a_collaborators_upload_is_charged_to_the_owner_and_a_copy_to_them(
    client: TestClient, settings: Settings, ada: dict
):
    project = _create(client, ada, "Shared")
    invite = {"email": "eddie@example.com", "role": "editor"}
    client.post(f"{PROJECTS}/{project['id']}/collaborators", json=invite, headers=ada)
    eddie = signed_in_headers(client, settings, "eddie@example.com")
    assert _upload(client, eddie, project["id"], PRELUDE.read_bytes()).status_code == 200
    assert _stored_bytes(client, ada) == len(PRELUDE.read_bytes())
    assert _stored_bytes(client, eddie) == 0
    client.post(f"{PROJECTS}/{project['id']}/duplicate", headers=eddie)
    assert _stored_bytes(client, eddie) == len(PRELUDE.read_bytes())


def test_files_beyond_the_quota_are_refused_and_not_stored(
    client: TestClient, settings: Settings, ada: dict
):
    midi = PRELUDE.read_bytes()
    project = _create(client, ada, "Full")
    _upload(client, ada, project["id"], midi)
    files_before = _stored_files(settings)
    # Another domain's file (a data export) fills the quota up to less than one more MIDI.
    room = FREE.storage_quota_bytes - len(midi) - (len(midi) - 1)
    _charge_elsewhere(settings, "ada@example.com", "exports/ada.zip", room)
    assert _stored_bytes(client, ada) == FREE.storage_quota_bytes - len(midi) + 1

    other = _create(client, ada, "Over")
    body = assert_problem(_upload(client, ada, other["id"], midi), 409, "storage_quota_exceeded")
    assert "you use 500.0 MB of the 500.0 MB your Free plan includes" in body["detail"]
    duplicate = client.post(f"{PROJECTS}/{project['id']}/duplicate", headers=ada)
    assert_problem(duplicate, 409, "storage_quota_exceeded")
    assert client.get(PROJECTS, headers=ada).json()["total"] == 2  # the copy was not made
    assert _stored_files(settings) == files_before
    # Replacing a file with one of the same size needs no new room.
    assert _upload(client, ada, project["id"], midi[:-1] + b"\1").status_code == 200

    _release_elsewhere(settings, "exports/ada.zip")
    assert _upload(client, ada, other["id"], midi).status_code == 200
