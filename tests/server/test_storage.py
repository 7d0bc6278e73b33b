"""The storage contract, run against both backends: local files (links served by the app's
``/files`` route) and S3 (moto's real HTTP server; links fetched over HTTP with httpx).

Each backend comes as a ``Backend``: the storage, a way to GET one of its links, and a way
to move time on for whoever judges the link (the app's clock, or the S3 server's).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import boto3
import httpx
import pytest
from fastapi import FastAPI
from notefall.server.kit.errors import install_error_handlers
from notefall.server.kit.settings import SettingsError
from notefall.server.storage.local import LocalStorage
from notefall.server.storage.router import router as files_router
from notefall.server.storage.s3 import S3Storage
from notefall.server.storage.storage import InvalidKeyError, Storage, content_disposition

from tests.support.s3_server import REGION, S3Server, running_s3_server

from .conftest import TestClient, make_settings
from .test_app import assert_problem

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
BAD_KEYS = ["../outside", "a/../../b", "/etc/passwd", "a//b", ".hidden", "a/./b", "", "a\\b", "a/"]


@dataclass
class Backend:
    name: str
    storage: Storage
    get: Callable[..., httpx.Response]  # (url, headers=None)
    travel: Callable[[timedelta], None]


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    with running_s3_server() as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A new, empty bucket on the S3 server, with boto3 pointed at its test credentials only."""
    for name, value in s3_server.credentials_environment().items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setattr(s3_server, "clock", lambda: datetime.now(UTC))
    bucket = f"notefall-{uuid.uuid4().hex[:12]}"
    s3_client(s3_server).create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    return bucket


def s3_client(s3_server: S3Server):
    return boto3.client("s3", endpoint_url=s3_server.endpoint_url, region_name=REGION)


def local_backend(root: Path) -> Backend:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(files_router)
    app.state.clock = lambda: NOW
    app.state.storage = LocalStorage(
        root, "s" * 40, "http://notefall.test", clock=lambda: app.state.clock()
    )
    client = TestClient(app)

    def get(url: str, headers: dict[str, str] | None = None) -> httpx.Response:
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}" == "http://notefall.test"
        return client.get(f"{parts.path}?{parts.query}", headers=headers)

    def travel(delta: timedelta) -> None:
        app.state.clock = lambda: NOW + delta

    return Backend("local", app.state.storage, get, travel)


def s3_backend(s3_server: S3Server, bucket: str) -> Backend:
    def travel(delta: timedelta) -> None:
        s3_server.clock = lambda: datetime.now(UTC) + delta

    storage = S3Storage(bucket, "tenant", endpoint_url=s3_server.endpoint_url, region=REGION)

    def get(url: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.get(url, headers=headers)

    return Backend("s3", storage, get, travel)


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        return local_backend(tmp_path / "storage")
    return s3_backend(request.getfixturevalue("s3_server"), request.getfixturevalue("s3_bucket"))


def test_put_get_size_exists_replace_and_delete(backend: Backend):
    storage = backend.storage
    storage.put("projects/a/song.mid", b"MThd")
    assert storage.get("projects/a/song.mid") == b"MThd"
    assert storage.size("projects/a/song.mid") == 4 and storage.exists("projects/a/song.mid")
    storage.put("projects/a/song.mid", b"replaced")
    assert storage.get("projects/a/song.mid") == b"replaced"
    storage.delete("projects/a/song.mid")
    storage.delete("projects/a/song.mid")  # deleting twice is fine
    assert not storage.exists("projects/a/song.mid")


def test_large_files_are_written_from_streams_read_in_chunks_and_copied(backend: Backend):
    # Over boto3's 8 MiB threshold, so S3 gets a multipart upload (and copies it whole).
    data = bytes(range(256)) * (9 * 4096)
    backend.storage.put("renders/r/video.mp4", io.BytesIO(data))
    assert backend.storage.size("renders/r/video.mp4") == len(data)
    handle = backend.storage.open("renders/r/video.mp4")
    try:
        chunks = iter(lambda: handle.read(1024 * 1024), b"")
        assert b"".join(chunks) == data
    finally:
        handle.close()
    backend.storage.copy("renders/r/video.mp4", "renders/r/copy.mp4")
    assert backend.storage.get("renders/r/copy.mp4") == data


def test_missing_files_raise_file_not_found(backend: Backend):
    storage = backend.storage
    assert not storage.exists("projects/a/none.png")
    storage.delete("projects/a/none.png")
    for read in (storage.get, storage.open, storage.size):
        with pytest.raises(FileNotFoundError):
            read("projects/a/none.png")
    with pytest.raises(FileNotFoundError):
        storage.copy("projects/a/none.png", "projects/b/none.png")


def test_copy_makes_an_independent_file(backend: Backend):
    storage = backend.storage
    storage.put("projects/a/thumbnail.png", b"original")
    storage.put("projects/b/thumbnail.png", b"to be replaced")
    storage.copy("projects/a/thumbnail.png", "projects/b/thumbnail.png")
    assert storage.get("projects/b/thumbnail.png") == b"original"
    storage.delete("projects/a/thumbnail.png")
    assert storage.get("projects/b/thumbnail.png") == b"original"
    link = backend.get(storage.signed_url("projects/b/thumbnail.png", timedelta(minutes=1)))
    assert link.status_code == 200 and link.headers["content-type"] == "image/png"


def test_keys_lists_a_folder_at_any_depth(backend: Backend):
    storage = backend.storage
    for key in (
        "projects/a/song.mid",
        "projects/a/renders/r1.mp4",
        "projects/a-b/x.png",
        "users/u",
    ):
        storage.put(key, b"x")
    assert list(storage.keys("projects/a")) == ["projects/a/renders/r1.mp4", "projects/a/song.mid"]
    assert list(storage.keys("projects")) == [
        "projects/a-b/x.png",
        "projects/a/renders/r1.mp4",
        "projects/a/song.mid",
    ]
    assert list(storage.keys("projects/none")) == []
    for key in list(storage.keys("projects/a")):
        storage.delete(key)
    assert list(storage.keys("projects")) == ["projects/a-b/x.png"]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_keys_that_could_leave_the_storage_root_are_refused(backend: Backend, key: str):
    storage = backend.storage
    calls: list[Callable[[], object]] = [
        lambda: storage.put(key, b"x"),
        lambda: storage.get(key),
        lambda: storage.open(key),
        lambda: storage.delete(key),
        lambda: storage.exists(key),
        lambda: storage.size(key),
        lambda: storage.copy(key, "projects/a/copy"),
        lambda: storage.copy("projects/a/original", key),
        lambda: storage.signed_url(key, timedelta(minutes=1)),
        lambda: list(storage.keys(key)),
    ]
    for call in calls:
        with pytest.raises(InvalidKeyError):
            call()


def test_a_signed_link_serves_the_file_until_it_expires(backend: Backend):
    backend.storage.put("projects/p/thumbnail.png", b"\x89PNG picture")
    url = backend.storage.signed_url("projects/p/thumbnail.png", timedelta(minutes=15))
    response = backend.get(url)
    assert response.status_code == 200 and response.content == b"\x89PNG picture"
    assert response.headers["content-type"] == "image/png"
    assert response.headers["cache-control"] == "private, no-store"
    assert "content-disposition" not in response.headers
    backend.travel(timedelta(minutes=14))
    assert backend.get(url).status_code == 200
    backend.travel(timedelta(minutes=15, seconds=2))
    assert backend.get(url).status_code == 403


def test_a_download_name_is_signed_into_the_link(backend: Backend):
    backend.storage.put("renders/r/video.mp4", b"movie")
    url = backend.storage.signed_url(
        "renders/r/video.mp4", timedelta(minutes=5), "Prélude in C.mp4"
    )
    response = backend.get(url)
    assert response.status_code == 200 and response.content == b"movie"
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"Pr_lude in C.mp4\"; filename*=UTF-8''Pr%C3%A9lude%20in%20C.mp4"
    )
    renamed = url.replace(quote("Prélude"), "Fugue").replace("Pr%25C3%25A9lude", "Fugue")
    assert renamed != url
    assert backend.get(renamed).status_code == 403


def test_tampered_links_are_refused(backend: Backend):
    backend.storage.put("projects/p/a.png", b"a")
    backend.storage.put("projects/p/b.png", b"b")
    url = backend.storage.signed_url("projects/p/a.png", timedelta(minutes=15))
    parts = urlsplit(url)
    params = {name: values[0] for name, values in parse_qs(parts.query).items()}
    signature = "sig" if "sig" in params else "X-Amz-Signature"
    expiry = "expires" if "expires" in params else "X-Amz-Expires"

    def with_query(**changes: str | None) -> str:
        query = {**params, **changes}
        kept = {name: value for name, value in query.items() if value is not None}
        return parts._replace(query=urlencode(kept)).geturl()

    forged = params[signature][:-2] + ("AA" if params[signature][-2:] != "AA" else "BB")
    tampered = [
        parts._replace(path=parts.path.replace("a.png", "b.png")).geturl(),  # another file
        with_query(**{expiry: str(int(params[expiry]) + 86400)}),  # a longer life
        with_query(**{signature: forged}),  # a forged signature
        with_query(**{signature: None}),  # no signature
    ]
    assert backend.get(url).status_code == 200
    for bad in tampered:
        assert backend.get(bad).status_code == 403, bad


def test_link_lifetimes_beyond_what_s3_can_sign_are_refused(backend: Backend):
    backend.storage.put("projects/p/a.png", b"a")
    for lifetime in (timedelta(0), timedelta(days=7, seconds=1)):
        with pytest.raises(ValueError, match="7 days"):
            backend.storage.signed_url("projects/p/a.png", lifetime)
    assert backend.get(backend.storage.signed_url("projects/p/a.png", timedelta(days=7)))


def test_a_working_storage_is_reachable(backend: Backend):
    assert backend.storage.is_reachable()


def test_storage_that_cannot_be_written_is_unreachable(
    tmp_path: Path, s3_server: S3Server, s3_bucket: str
):
    (tmp_path / "a-file").write_text("not a directory")
    assert not LocalStorage(
        tmp_path / "a-file" / "storage", "s" * 40, "http://x", lambda: NOW
    ).is_reachable()
    # With working credentials (s3_bucket sets them): only the bucket is wrong.
    assert S3Storage(s3_bucket, endpoint_url=s3_server.endpoint_url, region=REGION).is_reachable()
    missing = S3Storage("no-such-bucket", endpoint_url=s3_server.endpoint_url, region=REGION)
    assert not missing.is_reachable()


def test_the_download_name_is_quoted_safely():
    assert content_disposition('a"b\\c\n.txt') == (
        "attachment; filename=\"a_b_c_.txt\"; filename*=UTF-8''a%22b%5Cc%0A.txt"
    )


# Local storage only: what the disk and the /files route add.


def test_local_writes_leave_no_temporary_files(tmp_path: Path):
    storage = local_backend(tmp_path).storage
    storage.put("projects/a/song.mid", b"MThd")
    storage.put("projects/a/song.mid", io.BytesIO(b"replaced"))
    storage.copy("projects/a/song.mid", "projects/a/copy.mid")
    assert (tmp_path / "projects/a/song.mid").read_bytes() == b"replaced"
    assert sorted(p.name for p in (tmp_path / "projects/a").iterdir()) == ["copy.mid", "song.mid"]


def test_local_links_verify_against_the_clock(tmp_path: Path):
    def storage_at(now: datetime) -> LocalStorage:
        return LocalStorage(tmp_path, "s" * 40, "http://notefall.test", clock=lambda: now)

    url = storage_at(NOW).signed_url("projects/a/thumb.png", timedelta(minutes=15))
    assert url.startswith("http://notefall.test/files/projects/a/thumb.png?")
    query = parse_qs(urlsplit(url).query)
    expires, sig = int(query["expires"][0]), query["sig"][0]
    assert expires == int((NOW + timedelta(minutes=15)).timestamp())
    later = storage_at(NOW + timedelta(minutes=14, seconds=59))
    assert later.verify("projects/a/thumb.png", expires, sig)
    assert not storage_at(NOW + timedelta(minutes=15)).verify("projects/a/thumb.png", expires, sig)
    assert not later.verify("projects/a/other.png", expires, sig)
    assert not later.verify("projects/a/thumb.png", expires + 3600, sig)
    assert not later.verify("projects/a/thumb.png", expires, sig, "renamed.png")
    for key in BAD_KEYS:
        assert not later.verify(key, expires, sig)


def test_the_files_route_answers_problems(tmp_path: Path):
    backend = local_backend(tmp_path)
    backend.storage.put("projects/p/gone.png", b"x")
    link = backend.storage.signed_url("projects/p/gone.png", timedelta(minutes=1))
    body = assert_problem(backend.get(link.replace("sig=", "sig=x")), 403, "invalid_file_link")
    assert "expired" in body["detail"]
    backend.storage.delete("projects/p/gone.png")
    assert_problem(backend.get(link), 404, "not_found")


def test_links_serve_byte_ranges(backend: Backend):
    # Video players seek with Range requests.
    backend.storage.put("renders/r/video.mp4", b"0123456789")
    link = backend.storage.signed_url("renders/r/video.mp4", timedelta(minutes=1))
    response = backend.get(link, {"Range": "bytes=2-5"})
    assert response.status_code == 206 and response.content == b"2345"


def test_the_app_serves_its_own_local_links(tmp_path: Path):
    from notefall.server.kit.app import create_app

    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    with TestClient(create_app(settings)) as client:
        storage = client.app.state.storage  # type: ignore[attr-defined]
        assert isinstance(storage, LocalStorage) and storage.root == tmp_path / "storage"
        storage.put("projects/p/notes.txt", b"hello")
        link = urlsplit(storage.signed_url("projects/p/notes.txt", timedelta(minutes=1)))
        response = client.get(f"{link.path}?{link.query}")
        assert response.status_code == 200 and response.content == b"hello"
        assert response.headers["cache-control"] == "private, no-store"


@pytest.mark.parametrize(
    "url", ["ftp://example.com/files", "s3://", "s3://Upper_Case", "s3://ab", "s3://bucket?x=1"]
)
def test_storage_urls_that_name_no_usable_place_are_refused(tmp_path: Path, url: str):
    with pytest.raises(SettingsError, match="NOTEFALL_STORAGE_URL"):
        make_settings(tmp_path, "sqlite://", storage_url=url)
