"""Video delivery through a CDN (NOTEFALL_CDN_BASE_URL): links name the CDN, the CDN forwards
them unchanged to the storage, and the storage (our /files, or S3 itself) checks the signature.

"What the CDN forwards" is the link's path and query sent to the origin's address: the test
makes exactly that request against the real app and the real (moto) S3 server.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from notefall.server.kit.app import create_app
from notefall.server.kit.settings import Environment, Settings, SettingsError, load_settings
from notefall.server.storage.factory import storage_from_settings
from notefall.server.storage.local import LocalStorage
from notefall.server.storage.s3 import S3Storage

from tests.server.conftest import TestClient, make_settings
from tests.server.test_storage import s3_bucket, s3_server  # noqa: F401 - fixtures
from tests.support.s3_server import REGION, S3Server

CDN = "https://videos.example.com"
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8


def forwarded(link: str, origin: str) -> str:
    """The request a CDN in front of ``origin`` sends for ``link``: same path, same query."""
    parts = urlsplit(link)
    return f"{origin}{parts.path}?{parts.query}"


@pytest.fixture
def app_behind_cdn(tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", cdn_base_url=CDN)
    with TestClient(create_app(settings)) as client:
        client.app.state.clock = lambda: NOW  # type: ignore[attr-defined]
        yield client


def test_local_links_name_the_cdn_and_our_files_route_checks_what_it_forwards(
    app_behind_cdn: TestClient,
):
    storage = app_behind_cdn.app.state.storage  # type: ignore[attr-defined]
    assert isinstance(storage, LocalStorage)
    storage.put("renders/r1/video.mp4", VIDEO)
    link = storage.signed_url("renders/r1/video.mp4", timedelta(minutes=15), "Prelude.mp4")
    assert link.startswith(f"{CDN}/files/renders/r1/video.mp4?")

    response = app_behind_cdn.get(forwarded(link, ""))
    assert response.status_code == 200 and response.content == VIDEO
    assert 'filename="Prelude.mp4"' in response.headers["content-disposition"]
    # Browsers and proxies keep nothing; the CDN may keep it exactly as long as the link lives.
    assert response.headers["cache-control"] == "private, no-store"
    assert response.headers["cdn-cache-control"] == "max-age=900"

    app_behind_cdn.app.state.clock = lambda: NOW + timedelta(minutes=10)  # type: ignore[attr-defined]
    ranged = app_behind_cdn.get(forwarded(link, ""), headers={"Range": "bytes=0-7"})
    assert ranged.status_code == 206 and ranged.content == VIDEO[:8]
    assert ranged.headers["cdn-cache-control"] == "max-age=300"


def test_a_tampered_or_expired_link_through_the_cdn_is_refused_and_never_cacheable(
    app_behind_cdn: TestClient,
):
    storage = app_behind_cdn.app.state.storage  # type: ignore[attr-defined]
    storage.put("renders/r1/video.mp4", VIDEO)
    storage.put("renders/r2/video.mp4", b"someone else's video")
    link = storage.signed_url("renders/r1/video.mp4", timedelta(minutes=15))

    other_file = forwarded(link, "").replace("/r1/", "/r2/")
    for attempt in (other_file, forwarded(link, "").replace("sig=", "sig=A")):
        refused = app_behind_cdn.get(attempt)
        assert refused.status_code == 403 and refused.json()["code"] == "invalid_file_link"
        assert "cdn-cache-control" not in refused.headers

    app_behind_cdn.app.state.clock = lambda: NOW + timedelta(minutes=15)  # type: ignore[attr-defined]
    expired = app_behind_cdn.get(forwarded(link, ""))
    assert expired.status_code == 403 and "cdn-cache-control" not in expired.headers


def test_without_a_cdn_files_tell_no_cache_to_keep_them(tmp_path: Path):
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    with TestClient(create_app(settings)) as client:
        storage = client.app.state.storage  # type: ignore[attr-defined]
        storage.put("renders/r1/video.mp4", VIDEO)
        link = storage.signed_url("renders/r1/video.mp4", timedelta(minutes=15))
        assert link.startswith("http://notefall.test/files/")
        response = client.get(forwarded(link, ""))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "private, no-store"
    assert "cdn-cache-control" not in response.headers


def _s3_settings(tmp_path: Path, server: S3Server, bucket: str, **overrides: object) -> Settings:
    return make_settings(
        tmp_path,
        "sqlite://",
        storage_url=f"s3://{bucket}/prod",
        s3_endpoint_url=server.endpoint_url,
        s3_region=REGION,
        **overrides,
    )


def test_s3_links_name_the_cdn_and_s3_accepts_them_as_signed_when_forwarded(
    tmp_path: Path,
    s3_server: S3Server,  # noqa: F811 - a fixture
    s3_bucket: str,  # noqa: F811 - a fixture
):
    storage = storage_from_settings(
        _s3_settings(tmp_path, s3_server, s3_bucket, cdn_base_url=CDN), clock=lambda: NOW
    )
    assert isinstance(storage, S3Storage)
    storage.put("renders/r1/video.mp4", VIDEO)
    link = storage.signed_url("renders/r1/video.mp4", timedelta(minutes=15), "Prelude.mp4")
    # Path-style addressing (an endpoint is set): the bucket and prefix stay in the path.
    assert link.startswith(f"{CDN}/{s3_bucket}/prod/renders/r1/video.mp4?")
    assert "X-Amz-Signature=" in link

    response = httpx.get(forwarded(link, s3_server.endpoint_url))
    assert response.status_code == 200 and response.content == VIDEO
    assert 'filename="Prelude.mp4"' in response.headers["content-disposition"]

    tampered = forwarded(link, s3_server.endpoint_url).replace("Prelude", "Other")
    assert httpx.get(tampered).status_code == 403
    s3_server.clock = lambda: datetime.now(UTC) + timedelta(minutes=16)
    assert httpx.get(forwarded(link, s3_server.endpoint_url)).status_code == 403


def test_s3_links_without_a_cdn_go_to_the_bucket(
    tmp_path: Path,
    s3_server: S3Server,  # noqa: F811 - a fixture
    s3_bucket: str,  # noqa: F811 - a fixture
):
    storage = storage_from_settings(_s3_settings(tmp_path, s3_server, s3_bucket), lambda: NOW)
    storage.put("renders/r1/video.mp4", VIDEO)
    link = storage.signed_url("renders/r1/video.mp4", timedelta(minutes=15))
    assert link.startswith(f"{s3_server.endpoint_url}/{s3_bucket}/prod/renders/r1/video.mp4?")
    assert httpx.get(link).content == VIDEO


def test_a_cdn_base_url_keeps_only_its_origin(tmp_path: Path):
    settings = make_settings(tmp_path, "sqlite://", cdn_base_url="https://cdn.example.com:8443/")
    assert settings.cdn_base_url == "https://cdn.example.com:8443"


@pytest.mark.parametrize(
    "url",
    [
        "cdn.example.com",
        "ftp://cdn.example.com",
        "https://cdn.example.com/videos",
        "https://cdn.example.com?x=1",
        "https://user:pw@cdn.example.com",
        "https://cdn.example.com:port",
        "https://",
    ],
)
def test_a_cdn_base_url_that_is_not_an_origin_is_refused(tmp_path: Path, url: str):
    with pytest.raises(SettingsError, match=r"NOTEFALL_CDN_BASE_URL must be the CDN's origin"):
        make_settings(tmp_path, "sqlite://", cdn_base_url=url)


def test_production_links_through_a_cdn_must_use_https(tmp_path: Path):
    production = {
        "data_dir": tmp_path,
        "environment": Environment.PRODUCTION,
        "secret_key": "p" * 48,
    }
    with pytest.raises(SettingsError, match="NOTEFALL_CDN_BASE_URL must use https in production"):
        load_settings(**production, cdn_base_url="http://cdn.example.com")
    assert load_settings(**production, cdn_base_url=CDN).cdn_base_url == CDN


def test_browser_pages_allow_videos_and_images_from_the_cdn(app_behind_cdn: TestClient):
    policy = app_behind_cdn.get("/signin").headers["content-security-policy"]
    directives = dict(d.strip().partition(" ")[::2] for d in policy.split(";"))
    assert CDN in directives["media-src"].split()
    assert CDN in directives["img-src"].split()
