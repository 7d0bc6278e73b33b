"""A project's own MIDI file and recording, fetched back (the desktop opens cloud projects)."""

from __future__ import annotations

import pytest
from notefall.server.kit.settings import Settings

from .conftest import TestClient, signed_in_headers
from .test_app import assert_problem
from .test_projects import PRELUDE, PROJECTS, _create, _follow, _upload, wav_bytes


@pytest.fixture
def ada(client: TestClient, settings: Settings) -> dict[str, str]:
    return signed_in_headers(client, settings, "ada@example.com")


def test_the_uploaded_midi_and_recording_come_back_byte_for_byte(client: TestClient, ada: dict):
    project = _create(client, ada, "Émile's Prélude")
    midi = PRELUDE.read_bytes()
    assert _upload(client, ada, project["id"], midi).status_code == 200
    take = wav_bytes(seconds=0.5)
    files = {"file": ("take.wav", take, "audio/wav")}
    assert client.put(f"{PROJECTS}/{project['id']}/audio", files=files, headers=ada).is_success

    got_midi = _follow(
        client, client.get(f"{PROJECTS}/{project['id']}/midi", headers=ada, follow_redirects=False)
    )
    assert got_midi.status_code == 200 and got_midi.content == midi
    assert 'filename="emile-s-prelude.mid"' in got_midi.headers["content-disposition"]
    got_audio = _follow(
        client, client.get(f"{PROJECTS}/{project['id']}/audio", headers=ada, follow_redirects=False)
    )
    assert got_audio.status_code == 200 and got_audio.content == take
    assert 'filename="emile-s-prelude.wav"' in got_audio.headers["content-disposition"]


def test_missing_files_are_named_in_the_answer(client: TestClient, ada: dict):
    project = _create(client, ada, "Empty")
    midi = client.get(f"{PROJECTS}/{project['id']}/midi", headers=ada)
    assert_problem(midi, 404, "not_found")
    assert "no MIDI file yet" in midi.json()["detail"]
    _upload(client, ada, project["id"], PRELUDE.read_bytes())
    audio = client.get(f"{PROJECTS}/{project['id']}/audio", headers=ada)
    assert_problem(audio, 404, "not_found")
    assert "no recording" in audio.json()["detail"]


def test_collaborators_may_fetch_the_files_and_strangers_may_not(
    client: TestClient, settings: Settings, ada: dict
):
    bob = signed_in_headers(client, settings, "bob@example.com")
    eve = signed_in_headers(client, settings, "eve@example.com")
    project = _create(client, ada, "Trio")
    _upload(client, ada, project["id"], PRELUDE.read_bytes())
    invite = {"email": "bob@example.com", "role": "viewer"}
    client.post(f"{PROJECTS}/{project['id']}/collaborators", json=invite, headers=ada)

    viewer = client.get(f"{PROJECTS}/{project['id']}/midi", headers=bob, follow_redirects=False)
    assert _follow(client, viewer).content == PRELUDE.read_bytes()
    assert_problem(client.get(f"{PROJECTS}/{project['id']}/midi", headers=eve), 404, "not_found")
    assert_problem(client.get(f"{PROJECTS}/{project['id']}/audio", headers=eve), 404, "not_found")
