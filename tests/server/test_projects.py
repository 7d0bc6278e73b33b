"""Projects through the HTTP API, on every backend: CRUD, listing, MIDI upload with the
engine's parser, thumbnails behind signed links, settings, and other users' projects."""

import io
import math
import struct
import uuid
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from notefall.server.kit.settings import Settings
from PIL import Image

from .conftest import TestClient, create_app, make_settings, signed_in_headers
from .test_app import assert_problem

PROJECTS = "/api/v1/projects"
PRELUDE = Path(__file__).resolve().parents[2] / "common" / "examples" / "prelude_in_c.mid"


@pytest.fixture
def ada(client: TestClient, settings: Settings) -> dict[str, str]:
    return signed_in_headers(client, settings, "ada@example.com")


@pytest.fixture
def bob(client: TestClient, settings: Settings) -> dict[str, str]:
    return signed_in_headers(client, settings, "bob@example.com")


def _create(client: TestClient, headers: dict[str, str], name: str, **fields: object) -> dict:
    response = client.post(PROJECTS, json={"name": name, **fields}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def _upload(client: TestClient, headers: dict[str, str], project_id: str, data: bytes):
    files = {"file": ("song.mid", data, "audio/midi")}
    return client.put(f"{PROJECTS}/{project_id}/midi", files=files, headers=headers)


def _stored_files(settings: Settings) -> list[str]:
    root = settings.data_dir / "storage"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _follow(client: TestClient, response: httpx.Response) -> httpx.Response:
    """GET the signed link a redirect points at (the link names the public URL's host)."""
    assert response.status_code == 307
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}" == "http://notefall.test"
    return client.get(f"{location.path}?{location.query}")


def test_create_read_update_and_delete_a_project(client: TestClient, ada: dict):
    created = _create(client, ada, "  Prelude  ", tags=["bach", "bach", "practice"])
    assert created["name"] == "Prelude" and created["tags"] == ["bach", "practice"]
    assert created["settings"] == {} and created["song"] is None
    assert created["thumbnail_url"] is None
    url = f"{PROJECTS}/{created['id']}"
    assert client.get(url, headers=ada).json() == created

    patched = client.patch(url, json={"name": "Prelude in C"}, headers=ada).json()
    assert patched["name"] == "Prelude in C" and patched["tags"] == ["bach", "practice"]
    assert patched["updated_at"] >= created["updated_at"]
    patched = client.patch(url, json={"settings": {"theme": "neon", "fps": 60}}, headers=ada)
    assert patched.json()["settings"] == {"theme": "neon", "fps": 60}

    assert client.delete(url, headers=ada).status_code == 204
    assert_problem(client.get(url, headers=ada), 404, "not_found")
    assert_problem(client.delete(url, headers=ada), 404, "not_found")


def test_projects_need_a_signed_in_user(client: TestClient):
    assert_problem(client.get(PROJECTS), 401, "invalid_access_token")
    assert_problem(client.post(PROJECTS, json={"name": "x"}), 401, "invalid_access_token")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": "   "},
        {"name": "x" * 201},
        {"name": "x", "colour": "red"},
        {"name": "x", "tags": [""]},
    ],
)
def test_invalid_project_bodies_are_refused(client: TestClient, ada: dict, body: dict):
    assert_problem(client.post(PROJECTS, json=body, headers=ada), 422, "invalid_request")


def test_list_pages_searches_and_sorts(client: TestClient, ada: dict, bob: dict):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i, name in enumerate(["Nocturne", "arabesque", "Clair de lune", "Gymnopédie 100%"]):
        client.app.state.clock = lambda i=i: start + timedelta(hours=i)  # type: ignore[attr-defined]
        _create(client, ada, name)
    _create(client, bob, "Bob's nocturne")

    def names(**params: object) -> list[str]:
        response = client.get(PROJECTS, params=params, headers=ada)
        assert response.status_code == 200, response.text
        return [p["name"] for p in response.json()["items"]]

    # Created in this order one after another, so newest first is the reverse.
    assert names() == ["Gymnopédie 100%", "Clair de lune", "arabesque", "Nocturne"]
    assert names(sort="created") == ["Nocturne", "arabesque", "Clair de lune", "Gymnopédie 100%"]
    assert names(sort="name") == ["Clair de lune", "Gymnopédie 100%", "Nocturne", "arabesque"]
    assert names(sort="-name")[0] == "arabesque"
    page = client.get(PROJECTS, params={"limit": 2, "offset": 1}, headers=ada).json()
    assert [p["name"] for p in page["items"]] == ["Clair de lune", "arabesque"]
    assert (page["total"], page["limit"], page["offset"]) == (4, 2, 1)
    assert names(q="NOCT") == ["Nocturne"]  # case-insensitive, and only Ada's
    assert names(q="100%") == ["Gymnopédie 100%"]  # % is a character, not a wildcard
    assert names(q="%") == ["Gymnopédie 100%"]
    assert names(q="sonata") == []
    assert_problem(
        client.get(PROJECTS, params={"sort": "size"}, headers=ada), 422, "invalid_request"
    )
    assert_problem(client.get(PROJECTS, params={"limit": 0}, headers=ada), 422, "invalid_request")


def test_list_sorts_by_last_update(client: TestClient, ada: dict):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ids = []
    for i, name in enumerate(["first", "second"]):
        client.app.state.clock = lambda i=i: start + timedelta(hours=i)  # type: ignore[attr-defined]
        ids.append(_create(client, ada, name)["id"])
    client.patch(f"{PROJECTS}/{ids[0]}", json={"tags": ["touched"]}, headers=ada)
    items = client.get(PROJECTS, params={"sort": "-updated"}, headers=ada).json()["items"]
    assert [p["name"] for p in items] == ["first", "second"]


def test_search_finds_the_song_title(client: TestClient, ada: dict):
    project = _create(client, ada, "Practice")
    _create(client, ada, "Other")
    assert _upload(client, ada, project["id"], PRELUDE.read_bytes()).status_code == 200
    items = client.get(PROJECTS, params={"q": "bwv 846"}, headers=ada).json()["items"]
    assert [p["name"] for p in items] == ["Practice"]


def test_midi_upload_summarizes_the_song_and_draws_a_thumbnail(
    client: TestClient, settings: Settings, ada: dict
):
    project = _create(client, ada, "Prelude")
    response = _upload(client, ada, project["id"], PRELUDE.read_bytes())
    assert response.status_code == 200, response.text
    song = response.json()["song"]
    assert song["title"] == "Prelude in C major, BWV 846"
    assert song["duration"] == pytest.approx(126.411) and song["note_count"] == 549
    assert len(song["midi_sha256"]) == 64
    thumbnail_url = response.json()["thumbnail_url"]
    assert thumbnail_url == f"{PROJECTS}/{project['id']}/thumbnail"

    image = _follow(client, client.get(thumbnail_url, headers=ada, follow_redirects=False))
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    png = Image.open(io.BytesIO(image.content))
    assert png.format == "PNG" and png.size == (640, 360)
    assert len(_stored_files(settings)) == 2


def test_changing_settings_redraws_the_thumbnail_and_drops_the_old_one(
    client: TestClient, settings: Settings, ada: dict
):
    project = _create(client, ada, "Prelude")
    _upload(client, ada, project["id"], PRELUDE.read_bytes())
    thumbnail = f"{PROJECTS}/{project['id']}/thumbnail"
    before = _follow(client, client.get(thumbnail, headers=ada, follow_redirects=False)).content
    files_before = _stored_files(settings)
    response = client.patch(
        f"{PROJECTS}/{project['id']}", json={"settings": {"theme": "paper"}}, headers=ada
    )
    assert response.status_code == 200, response.text
    after = _follow(client, client.get(thumbnail, headers=ada, follow_redirects=False)).content
    assert after != before and Image.open(io.BytesIO(after)).size == (640, 360)
    files_after = _stored_files(settings)
    assert len(files_after) == 2 and files_after != files_before
    # Sending the same settings again (an autosave) keeps the picture: no redraw.
    again = client.patch(
        f"{PROJECTS}/{project['id']}", json={"settings": {"theme": "paper"}}, headers=ada
    )
    assert again.status_code == 200 and _stored_files(settings) == files_after


def test_a_project_without_midi_has_no_thumbnail(client: TestClient, ada: dict):
    project = _create(client, ada, "Empty")
    response = client.get(f"{PROJECTS}/{project['id']}/thumbnail", headers=ada)
    assert_problem(response, 404, "not_found")


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"This is a text file, not a song.\n", "not_midi"),
        (PRELUDE.read_bytes()[:6], "truncated_midi"),
    ],
)
def test_files_the_engine_cannot_read_are_refused_with_its_code(
    client: TestClient, settings: Settings, ada: dict, data: bytes, code: str
):
    project = _create(client, ada, "Broken")
    body = assert_problem(_upload(client, ada, project["id"], data), 422, code)
    assert body["detail"] and "\n" not in body["detail"]
    assert client.get(f"{PROJECTS}/{project['id']}", headers=ada).json()["song"] is None
    assert _stored_files(settings) == []


def test_a_midi_file_over_the_limit_is_413(tmp_path: Path, migrated_url: str):
    settings = make_settings(tmp_path / "data", migrated_url, max_midi_bytes=1000)
    with TestClient(create_app(settings)) as client:
        ada = signed_in_headers(client, settings, "ada@example.com")
        project = _create(client, ada, "Big")
        body = assert_problem(
            _upload(client, ada, project["id"], PRELUDE.read_bytes()), 413, "file_too_large"
        )
        assert "at most 1,000 bytes" in body["detail"]
        assert _stored_files(settings) == []


def test_a_replaced_midi_file_is_deleted(client: TestClient, settings: Settings, ada: dict):
    project = _create(client, ada, "Prelude")
    _upload(client, ada, project["id"], PRELUDE.read_bytes())
    data = PRELUDE.read_bytes()
    # Same music, another file: a different trailing byte after the last track.
    changed = _upload(client, ada, project["id"], data + b"\x00")
    assert changed.status_code == 200, changed.text
    assert len([f for f in _stored_files(settings) if f.endswith(".mid")]) == 1


@pytest.mark.parametrize(
    ("settings_body", "message"),
    [
        ({"colour": "red"}, "unknown setting"),
        ({"fps": 7}, "fps"),
        ({"background_image": "/etc/hostname"}, "background_image"),
        ({"theme": "nope"}, "no theme called 'nope'"),
    ],
)
def test_bad_settings_are_refused(client: TestClient, ada: dict, settings_body: dict, message: str):
    response = client.post(PROJECTS, json={"name": "x", "settings": settings_body}, headers=ada)
    assert message in assert_problem(response, 422, "invalid_settings")["detail"]
    project = _create(client, ada, "y")
    response = client.patch(
        f"{PROJECTS}/{project['id']}", json={"settings": settings_body}, headers=ada
    )
    assert_problem(response, 422, "invalid_settings")


def test_deleting_a_project_deletes_its_files(client: TestClient, settings: Settings, ada: dict):
    project = _create(client, ada, "Prelude")
    _upload(client, ada, project["id"], PRELUDE.read_bytes())
    keep = _create(client, ada, "Keep")
    _upload(client, ada, keep["id"], PRELUDE.read_bytes())
    assert len(_stored_files(settings)) == 4
    assert client.delete(f"{PROJECTS}/{project['id']}", headers=ada).status_code == 204
    remaining = _stored_files(settings)
    assert len(remaining) == 2 and all(keep["id"] in f for f in remaining)


# Requests that would succeed for the owner, per (method, path) under /projects; the ids in
# braces are filled in with the owner's project, share link and collaborator.
_ITEM = "/api/v1/projects/{project_id}"
_OWNER_REQUESTS: dict[tuple[str, str], dict] = {
    ("GET", _ITEM): {},
    ("PATCH", _ITEM): {"json": {"name": "taken", "settings": {}}},
    ("DELETE", _ITEM): {},
    ("PUT", f"{_ITEM}/midi"): {"files": {"file": ("x.mid", PRELUDE.read_bytes(), "audio/midi")}},
    ("PUT", f"{_ITEM}/audio"): {"files": {"file": ("take.wav", b"", "audio/wav")}},
    ("DELETE", f"{_ITEM}/audio"): {},
    ("GET", f"{_ITEM}/thumbnail"): {"follow_redirects": False},
    ("GET", f"{_ITEM}/midi"): {"follow_redirects": False},
    ("GET", f"{_ITEM}/audio"): {"follow_redirects": False},
    ("GET", f"{_ITEM}/renders"): {},
    ("POST", f"{_ITEM}/duplicate"): {"json": {}},
    ("GET", f"{_ITEM}/settings/export"): {},
    ("POST", f"{_ITEM}/settings/import"): {"json": {"notefall_preset": 1, "settings": {}}},
    ("POST", f"{_ITEM}/share-links"): {"json": {}},
    ("GET", f"{_ITEM}/share-links"): {},
    ("DELETE", f"{_ITEM}/share-links/{{link_id}}"): {},
    ("POST", f"{_ITEM}/collaborators"): {"json": {"email": "dan@example.com", "role": "viewer"}},
    ("GET", f"{_ITEM}/collaborators"): {},
    ("PATCH", f"{_ITEM}/collaborators/{{collaborator_id}}"): {"json": {"role": "editor"}},
    ("DELETE", f"{_ITEM}/collaborators/{{collaborator_id}}"): {},
    # Collection routes that name projects in their body.
    ("POST", f"{PROJECTS}/bulk-delete"): {"json": {"ids": ["{project_id}"]}},
    ("POST", f"{PROJECTS}/bulk-tag"): {"json": {"ids": ["{project_id}"], "add": ["x"]}},
}
_COLLECTION_ROUTES = {("GET", PROJECTS), ("POST", PROJECTS)}
# What each role may do beyond the owner's project being visible to it.
_VIEWER_MAY = {
    ("GET", _ITEM),
    ("GET", f"{_ITEM}/thumbnail"),
    ("GET", f"{_ITEM}/midi"),
    ("GET", f"{_ITEM}/audio"),
    ("GET", f"{_ITEM}/renders"),
    ("GET", f"{_ITEM}/settings/export"),
}
_EDITOR_MAY = _VIEWER_MAY | {
    ("PATCH", _ITEM),
    ("PUT", f"{_ITEM}/midi"),
    ("PUT", f"{_ITEM}/audio"),
    ("DELETE", f"{_ITEM}/audio"),
    ("POST", f"{_ITEM}/duplicate"),
    ("POST", f"{_ITEM}/settings/import"),
    ("POST", f"{PROJECTS}/bulk-tag"),
}


def wav_bytes(seconds: float = 0.25, rate: int = 8000) -> bytes:
    """A real, tiny WAV recording: a 440 Hz tone."""
    frames = b"".join(
        struct.pack("<h", int(12000 * math.sin(2 * math.pi * 440 * i / rate)))
        for i in range(int(seconds * rate))
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(frames)
    return out.getvalue()


def _requests(ids: dict[str, str]) -> dict[tuple[str, str], tuple[str, dict]]:
    """(method, path) → (url, request kwargs) with ``ids`` filled in."""
    filled = {}
    for (method, path), template in _OWNER_REQUESTS.items():
        url = path.format(**ids) if "{" in path else path
        kwargs = {**template}
        if "json" in kwargs and "ids" in kwargs["json"]:
            kwargs["json"] = {**kwargs["json"], "ids": [ids["project_id"]]}
        if path.endswith("/audio") and method == "PUT":
            kwargs["files"] = {"file": ("take.wav", wav_bytes(), "audio/wav")}
        filled[(method, path)] = (url, kwargs)
    return filled


def _item_routes(client: TestClient) -> set[tuple[str, str]]:
    # The app's own route list (its OpenAPI paths), so a new endpoint cannot escape.
    openapi = client.app.openapi()  # type: ignore[attr-defined]
    return {
        (method.upper(), path)
        for path, operations in openapi["paths"].items()
        if path.startswith(PROJECTS)
        for method in operations
    } - _COLLECTION_ROUTES


def _shared_project(client: TestClient, owner: dict) -> dict[str, str]:
    """The owner's project with a MIDI file, a recording, a share link and a collaborator:
    their ids."""
    project = _create(client, owner, "Ada's", tags=["mine"])
    assert _upload(client, owner, project["id"], PRELUDE.read_bytes()).status_code == 200
    url = f"{PROJECTS}/{project['id']}"
    take = {"file": ("take.wav", wav_bytes(), "audio/wav")}
    assert client.put(f"{url}/audio", files=take, headers=owner).status_code == 200
    link = client.post(f"{url}/share-links", json={}, headers=owner).json()
    invite = {"email": "carol@example.com", "role": "viewer"}
    member = client.post(f"{url}/collaborators", json=invite, headers=owner).json()
    return {"project_id": project["id"], "link_id": link["id"], "collaborator_id": member["id"]}


def test_another_users_project_is_404_on_every_project_endpoint(
    client: TestClient, settings: Settings, ada: dict, bob: dict
):
    # A new endpoint must be added to _OWNER_REQUESTS, so it is checked here.
    assert _item_routes(client) == set(_OWNER_REQUESTS)
    ids = _shared_project(client, ada)
    before = client.get(f"{PROJECTS}/{ids['project_id']}", headers=ada).json()
    files = _stored_files(settings)
    missing_ids = {**ids, "project_id": str(uuid.UUID(int=0))}
    missing_requests = _requests(missing_ids)
    for route, (url, kwargs) in sorted(_requests(ids).items()):
        body = assert_problem(
            client.request(route[0], url, headers=bob, **kwargs), 404, "not_found"
        )
        missing_url, missing_kwargs = missing_requests[route]
        missing = client.request(route[0], missing_url, headers=bob, **missing_kwargs)
        assert assert_problem(missing, 404, "not_found")["detail"] == body["detail"], route
    assert client.get(f"{PROJECTS}/{ids['project_id']}", headers=ada).json() == before
    assert _stored_files(settings) == files
    for shared in ("mine", "with_me", "all"):
        assert client.get(PROJECTS, params={"shared": shared}, headers=bob).json()["total"] == 0


@pytest.mark.parametrize(("role", "may"), [("viewer", _VIEWER_MAY), ("editor", _EDITOR_MAY)])
def test_collaborators_may_do_what_their_role_allows_and_get_403_otherwise(
    client: TestClient, settings: Settings, ada: dict, role: str, may: set
):
    ids = _shared_project(client, ada)
    url = f"{PROJECTS}/{ids['project_id']}"
    invite = {"email": "grace@example.com", "role": role}
    assert client.post(f"{url}/collaborators", json=invite, headers=ada).status_code == 201
    grace = signed_in_headers(client, settings, "grace@example.com")
    requests = _requests(ids)
    before = client.get(url, headers=ada).json()
    files = _stored_files(settings)
    # Refusals first: they must change nothing at all.
    for route in sorted(set(requests) - may):
        request_url, kwargs = requests[route]
        response = client.request(route[0], request_url, headers=grace, **kwargs)
        body = assert_problem(response, 403, "forbidden_for_role")
        assert role in body["detail"], route
    assert client.get(url, headers=ada).json() == before
    assert _stored_files(settings) == files
    # Reads first: an editor's DELETE of the recording would leave nothing to fetch.
    for route in sorted(may, key=lambda r: (r[0] != "GET", r)):
        request_url, kwargs = requests[route]
        response = client.request(route[0], request_url, headers=grace, **kwargs)
        assert response.status_code in (200, 201, 307), (route, response.text)
    seen = client.get(url, headers=grace).json()
    assert seen["role"] == role
    assert client.get(url, headers=ada).json()["role"] == "owner"


def test_settings_that_do_not_fit_the_song_are_refused_and_change_nothing(
    client: TestClient, settings: Settings, ada: dict
):
    project = _create(client, ada, "Prelude")
    _upload(client, ada, project["id"], PRELUDE.read_bytes())
    before = client.get(f"{PROJECTS}/{project['id']}", headers=ada).json()
    files = _stored_files(settings)
    response = client.patch(
        f"{PROJECTS}/{project['id']}", json={"settings": {"start": 500}}, headers=ada
    )
    assert "after the song ends" in assert_problem(response, 422, "invalid_settings")["detail"]
    assert client.get(f"{PROJECTS}/{project['id']}", headers=ada).json() == before
    assert _stored_files(settings) == files

    late = _create(client, ada, "Late start", settings={"start": 500})
    response = _upload(client, ada, late["id"], PRELUDE.read_bytes())
    assert_problem(response, 422, "invalid_settings")
    assert client.get(f"{PROJECTS}/{late['id']}", headers=ada).json()["song"] is None
    assert _stored_files(settings) == files
