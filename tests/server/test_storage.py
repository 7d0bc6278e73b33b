"""Local storage: atomic files under DATA_DIR/storage, safe keys, and signed links that expire."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from notefall.server.kit.settings import Settings, SettingsError
from notefall.server.storage.storage import InvalidKeyError, LocalStorage

from .conftest import TestClient, make_settings
from .test_app import assert_problem

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _storage(root: Path, now: datetime = NOW) -> LocalStorage:
    return LocalStorage(root, "s" * 40, "http://notefall.test", clock=lambda: now)


def _path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_put_get_size_exists_and_delete(tmp_path: Path):
    storage = _storage(tmp_path)
    storage.put("projects/a/song.mid", b"MThd")
    assert storage.get("projects/a/song.mid") == b"MThd"
    assert storage.size("projects/a/song.mid") == 4 and storage.exists("projects/a/song.mid")
    storage.put("projects/a/song.mid", b"replaced")
    assert (tmp_path / "projects/a/song.mid").read_bytes() == b"replaced"
    assert [p.name for p in (tmp_path / "projects/a").iterdir()] == ["song.mid"]  # no leftovers
    storage.delete("projects/a/song.mid")
    storage.delete("projects/a/song.mid")  # deleting twice is fine
    assert not storage.exists("projects/a/song.mid")
    with pytest.raises(FileNotFoundError):
        storage.get("projects/a/song.mid")


@pytest.mark.parametrize(
    "key", ["../outside", "a/../../b", "/etc/passwd", "a//b", ".hidden", "a/./b", "", "a\\b", "a/"]
)
def test_keys_that_could_leave_the_storage_root_are_refused(tmp_path: Path, key: str):
    storage = _storage(tmp_path / "root")
    with pytest.raises(InvalidKeyError):
        storage.put(key, b"x")
    with pytest.raises(InvalidKeyError):
        storage.get(key)
    assert not storage.verify(key, 2**40, "anything")


def test_a_signed_link_verifies_until_it_expires(tmp_path: Path):
    url = _storage(tmp_path).signed_url("projects/a/thumb.png", timedelta(minutes=15))
    assert url.startswith("http://notefall.test/files/projects/a/thumb.png?")
    query = parse_qs(urlsplit(url).query)
    expires, sig = int(query["expires"][0]), query["sig"][0]
    assert expires == int((NOW + timedelta(minutes=15)).timestamp())
    later = _storage(tmp_path, NOW + timedelta(minutes=14, seconds=59))
    assert later.verify("projects/a/thumb.png", expires, sig)
    expired = _storage(tmp_path, NOW + timedelta(minutes=15))
    assert not expired.verify("projects/a/thumb.png", expires, sig)
    assert not later.verify("projects/a/other.png", expires, sig)
    assert not later.verify("projects/a/thumb.png", expires + 3600, sig)


def test_the_files_route_serves_a_signed_link(client: TestClient, settings: Settings):
    storage = client.app.state.storage  # type: ignore[attr-defined]
    storage.put("projects/p/notes.txt", b"hello")
    assert (settings.data_dir / "storage" / "projects/p/notes.txt").read_bytes() == b"hello"
    response = client.get(
        _path_and_query(storage.signed_url("projects/p/notes.txt", timedelta(60)))
    )
    assert response.status_code == 200 and response.content == b"hello"
    assert response.headers["content-type"].startswith("text/plain")


def test_the_files_route_refuses_tampered_missing_and_expired_links(client: TestClient):
    storage = client.app.state.storage  # type: ignore[attr-defined]
    storage.put("projects/p/a.png", b"a")
    storage.put("projects/p/b.png", b"b")
    link = _path_and_query(storage.signed_url("projects/p/a.png", timedelta(minutes=15)))
    path, query = link.split("?")
    params = parse_qs(query)
    expires, sig = params["expires"][0], params["sig"][0]
    tampered = [
        f"/files/projects/p/b.png?{query}",  # another file
        f"{path}?expires={int(expires) + 86400}&sig={sig}",  # a longer life
        f"{path}?expires={expires}&sig={sig[:-2]}AA",  # a forged signature
        f"{path}?expires={expires}",  # no signature
        path,  # nothing
    ]
    for url in tampered:
        body = assert_problem(client.get(url), 403, "invalid_file_link")
        assert "expired" in body["detail"]
    client.app.state.clock = lambda: datetime.now(UTC) + timedelta(minutes=16)  # type: ignore[attr-defined]
    assert_problem(client.get(link), 403, "invalid_file_link")


def test_a_signed_link_to_a_deleted_file_is_404(client: TestClient):
    storage = client.app.state.storage  # type: ignore[attr-defined]
    storage.put("projects/p/gone.png", b"x")
    link = _path_and_query(storage.signed_url("projects/p/gone.png", timedelta(minutes=1)))
    storage.delete("projects/p/gone.png")
    assert_problem(client.get(link), 404, "not_found")


def test_storage_url_other_than_file_is_refused(tmp_path: Path):
    with pytest.raises(SettingsError, match="NOTEFALL_STORAGE_URL"):
        make_settings(tmp_path, "sqlite://", storage_url="s3://bucket/prefix")
