"""A project's audio recording, probed with the engine's FFmpeg, and the tiers' file caps."""

import io

import pytest
from notefall.common.tiers import MB, Tier, limits_for
from notefall.server.kit.settings import Settings
from PIL import Image

from .conftest import TestClient, signed_in_headers
from .test_app import assert_problem
from .test_projects import PRELUDE, PROJECTS, _create, _stored_files, _upload, wav_bytes


@pytest.fixture
def ada(client: TestClient, settings: Settings) -> dict[str, str]:
    return signed_in_headers(client, settings, "ada@example.com")


def _put_audio(client: TestClient, headers: dict, project_id: str, data: bytes, name="take.wav"):
    files = {"file": (name, data, "application/octet-stream")}
    return client.put(f"{PROJECTS}/{project_id}/audio", files=files, headers=headers)


def test_an_audio_upload_is_probed_summarized_replaced_and_removed(
    client: TestClient, settings: Settings, ada: dict
):
    project = _create(client, ada, "Take one")
    assert project["audio"] is None
    first = wav_bytes(seconds=0.5)
    response = _put_audio(client, ada, project["id"], first)
    assert response.status_code == 200, response.text
    audio = response.json()["audio"]
    assert audio["codec"] == "pcm_s16le" and audio["duration"] == 0.5
    assert len(audio["sha256"]) == 64
    assert client.get(f"{PROJECTS}/{project['id']}", headers=ada).json()["audio"] == audio
    assert _stored_files(settings) == [f"projects/{project['id']}/audio-{audio['sha256']}.wav"]

    second = _put_audio(client, ada, project["id"], wav_bytes(seconds=0.25), name="TAKE.WAV")
    assert second.json()["audio"]["duration"] == 0.25
    assert len(_stored_files(settings)) == 1  # the old take is gone

    removed = client.delete(f"{PROJECTS}/{project['id']}/audio", headers=ada)
    assert removed.status_code == 200 and removed.json()["audio"] is None
    assert _stored_files(settings) == []
    # Removing nothing is fine too.
    assert client.delete(f"{PROJECTS}/{project['id']}/audio", headers=ada).status_code == 200


def test_the_offset_setting_goes_with_the_recording(client: TestClient, ada: dict):
    project = _create(client, ada, "Offset", settings={"audio_offset_ms": -250})
    response = _put_audio(client, ada, project["id"], wav_bytes())
    assert response.json()["settings"] == {"audio_offset_ms": -250}


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(out, format="PNG")
    return out.getvalue()


def test_files_ffmpeg_cannot_hear_are_refused(client: TestClient, settings: Settings, ada: dict):
    project = _create(client, ada, "Broken")
    for data, words in [
        (b"This is a text file, not a recording.\n" * 20, "FFmpeg cannot read"),
        (_png(), "finds no sound"),
        (PRELUDE.read_bytes(), "FFmpeg cannot read"),
    ]:
        body = assert_problem(_put_audio(client, ada, project["id"], data), 422, "unreadable_audio")
        assert words in body["detail"] and "WAV, FLAC, MP3" in body["detail"]
        # FFmpeg's message names the file it read; our temporary path must not leak.
        assert "/tmp" not in body["detail"] and "notefall-audio" not in body["detail"]
    assert client.get(f"{PROJECTS}/{project['id']}", headers=ada).json()["audio"] is None
    assert _stored_files(settings) == []


def test_audio_over_the_tier_cap_is_413(client: TestClient, settings: Settings, ada: dict):
    project = _create(client, ada, "Long")
    cap = limits_for(Tier.FREE).max_audio_bytes
    data = wav_bytes()
    response = _put_audio(client, ada, project["id"], data + b"\0" * (cap + 1 - len(data)))
    body = assert_problem(response, 413, "file_too_large")
    assert f"at most {cap // MB} MB" in body["detail"] and "plan" in body["detail"]
    assert _stored_files(settings) == []


def test_the_midi_cap_is_the_tiers_when_lower_than_the_servers(
    client: TestClient, settings: Settings, ada: dict
):
    cap = limits_for(Tier.FREE).max_midi_bytes
    assert cap < settings.max_midi_bytes  # so the tier's cap is the one that applies
    project = _create(client, ada, "Huge")
    data = PRELUDE.read_bytes()
    response = _upload(client, ada, project["id"], data + b"\0" * (cap + 1 - len(data)))
    assert f"at most {cap // MB} MB" in assert_problem(response, 413, "file_too_large")["detail"]
    padded = data + b"\0" * (cap - len(data))  # exactly the cap is fine
    assert _upload(client, ada, project["id"], padded).status_code == 200
