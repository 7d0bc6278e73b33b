"""Bulk delete and tag, duplicating a project, and settings presets (export and import)."""

import json

import pytest
from notefall.server.kit.settings import Settings

from .conftest import TestClient, signed_in_headers
from .test_app import assert_problem
from .test_projects import PRELUDE, PROJECTS, _create, _follow, _stored_files, _upload, wav_bytes


@pytest.fixture
def ada(client: TestClient, settings: Settings) -> dict[str, str]:
    return signed_in_headers(client, settings, "ada@example.com")


def _with_files(client: TestClient, headers: dict, name: str, **fields: object) -> dict:
    project = _create(client, headers, name, **fields)
    assert _upload(client, headers, project["id"], PRELUDE.read_bytes()).status_code == 200
    files = {"file": ("take.wav", wav_bytes(), "audio/wav")}
    response = client.put(f"{PROJECTS}/{project['id']}/audio", files=files, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_bulk_delete_is_all_or_nothing_and_removes_the_files(
    client: TestClient, settings: Settings, ada: dict
):
    bob = signed_in_headers(client, settings, "bob@example.com")
    first = _with_files(client, ada, "First")
    second = _create(client, ada, "Second")
    keep = _create(client, ada, "Keep")
    bobs = _create(client, bob, "Bob's")
    files = _stored_files(settings)
    assert len(files) == 3  # MIDI, thumbnail and audio of the first

    response = client.post(
        f"{PROJECTS}/bulk-delete", json={"ids": [first["id"], bobs["id"]]}, headers=ada
    )
    assert_problem(response, 404, "not_found")
    assert client.get(f"{PROJECTS}/{first['id']}", headers=ada).status_code == 200
    assert _stored_files(settings) == files

    ids = [first["id"], second["id"], first["id"]]
    response = client.post(f"{PROJECTS}/bulk-delete", json={"ids": ids}, headers=ada)
    assert response.status_code == 200 and response.json() == {"deleted": 2}
    assert [p["id"] for p in client.get(PROJECTS, headers=ada).json()["items"]] == [keep["id"]]
    assert _stored_files(settings) == []
    assert_problem(
        client.post(f"{PROJECTS}/bulk-delete", json={"ids": []}, headers=ada),
        422,
        "invalid_request",
    )


def test_bulk_tag_adds_and_removes_on_every_project(client: TestClient, ada: dict):
    one = _create(client, ada, "One", tags=["Draft", "piano"])
    two = _create(client, ada, "Two", tags=["live"])
    body = {"ids": [one["id"], two["id"]], "add": ["final", "piano"], "remove": ["draft", "live"]}
    response = client.post(f"{PROJECTS}/bulk-tag", json=body, headers=ada)
    assert response.status_code == 200, response.text
    assert [p["tags"] for p in response.json()["items"]] == [["piano", "final"], ["final", "piano"]]
    listed = client.get(PROJECTS, params={"tag": "final"}, headers=ada).json()
    assert listed["total"] == 2
    assert client.get(PROJECTS, params={"tag": "draft"}, headers=ada).json()["total"] == 0

    crowded = _create(client, ada, "Crowded", tags=[f"t{i}" for i in range(19)])
    body = {"ids": [one["id"], crowded["id"]], "add": ["a", "b"]}
    response = client.post(f"{PROJECTS}/bulk-tag", json=body, headers=ada)
    assert "at most 20" in assert_problem(response, 422, "too_many_tags")["detail"]
    # Nothing changed on the project that was fine either.
    assert client.get(f"{PROJECTS}/{one['id']}", headers=ada).json()["tags"] == ["piano", "final"]


def test_duplicate_copies_settings_tags_and_files_under_new_keys(
    client: TestClient, settings: Settings, ada: dict
):
    source = _with_files(client, ada, "Original", tags=["bach"], settings={"theme": "neon"})
    response = client.post(f"{PROJECTS}/{source['id']}/duplicate", headers=ada)
    assert response.status_code == 201, response.text
    copy = response.json()
    assert copy["id"] != source["id"] and copy["name"] == "Original (copy)"
    assert copy["role"] == "owner"
    for field in ("tags", "settings", "song", "audio"):
        assert copy[field] == source[field], field
    files = _stored_files(settings)
    assert len(files) == 6 and sum(copy["id"] in f for f in files) == 3
    thumbnail = client.get(copy["thumbnail_url"], headers=ada, follow_redirects=False)
    assert _follow(client, thumbnail).headers["content-type"] == "image/png"
    named = client.post(
        f"{PROJECTS}/{source['id']}/duplicate", json={"name": "Variation"}, headers=ada
    )
    assert named.json()["name"] == "Variation"
    assert client.get(PROJECTS, params={"tag": "bach"}, headers=ada).json()["total"] == 3
    # Deleting the original leaves the copies' files alone.
    client.delete(f"{PROJECTS}/{source['id']}", headers=ada)
    assert len(_stored_files(settings)) == 6


def test_settings_export_and_import_as_a_preset(client: TestClient, settings: Settings, ada: dict):
    source = _create(client, ada, "Neon Nights!", settings={"theme": "neon", "fps": 60})
    exported = client.get(f"{PROJECTS}/{source['id']}/settings/export", headers=ada)
    assert exported.status_code == 200
    assert exported.headers["content-disposition"] == (
        'attachment; filename="neon-nights.notefall-preset.json"; '
        "filename*=UTF-8''Neon%20Nights%21.notefall-preset.json"
    )
    preset = exported.json()
    assert preset == {"notefall_preset": 1, "settings": {"theme": "neon", "fps": 60}}

    target = _create(client, ada, "Target")
    _upload(client, ada, target["id"], PRELUDE.read_bytes())
    thumbnail_before = _stored_files(settings)
    url = f"{PROJECTS}/{target['id']}/settings/import"
    response = client.post(url, json=preset, headers=ada)
    assert response.status_code == 200, response.text
    assert response.json()["settings"] == {"theme": "neon", "fps": 60}
    assert _stored_files(settings) != thumbnail_before  # redrawn under a new name

    as_file = {"notefall_preset": 1, "settings": {"theme": "paper"}}
    files = {
        "file": ("paper.notefall-preset.json", json.dumps(as_file).encode(), "application/json")
    }
    response = client.post(url, files=files, headers=ada)
    assert response.status_code == 200, response.text
    assert response.json()["settings"] == {"theme": "paper"}


_BAD_PRESETS = [
    (b"not json at all", "invalid_preset", "not JSON"),
    (b"[1, 2]", "invalid_preset", "notefall_preset"),
    (b'{"notefall_preset": 2, "settings": {}}', "invalid_preset", "notefall_preset"),
    (b'{"notefall_preset": 1, "settings": {}, "x": 1}', "invalid_preset", "nothing else"),
    (b'{"notefall_preset": 1, "settings": {"colour": "red"}}', "invalid_settings", "unknown"),
    (
        b'{"notefall_preset": 1, "settings": {"soundfont": "/etc/passwd"}}',
        "invalid_settings",
        "soundfont",
    ),
    (b'{"notefall_preset": 1, "settings": {"fps": 7}}', "invalid_settings", "fps"),
]


def test_bad_presets_are_refused_and_change_nothing(client: TestClient, ada: dict):
    # One test for every case: each would otherwise pay for its own sign-up and database.
    project = _create(client, ada, "Kept", settings={"fps": 24})
    url = f"{PROJECTS}/{project['id']}/settings/import"
    for body, code, words in _BAD_PRESETS:
        response = client.post(
            url, content=body, headers={**ada, "content-type": "application/json"}
        )
        assert words in assert_problem(response, 422, code)["detail"], body
    assert client.get(f"{PROJECTS}/{project['id']}", headers=ada).json()["settings"] == {"fps": 24}
    files = {"file": ("big.json", b" " * (65 * 1024), "application/json")}
    assert_problem(client.post(url, files=files, headers=ada), 413, "file_too_large")
