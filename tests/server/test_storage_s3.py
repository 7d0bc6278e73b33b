"""The app configured for S3 storage (moto's real HTTP server): settings, the factory, a
project's MIDI upload and thumbnail through a pre-signed URL, and ``/readyz``."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from notefall.server.kit.settings import Settings, SettingsError, load_settings
from notefall.server.storage.factory import storage_from_settings
from notefall.server.storage.local import LocalStorage
from notefall.server.storage.s3 import S3Storage
from PIL import Image

from tests.support.s3_server import REGION, S3Server

from .conftest import TestClient, create_app, make_settings, signed_in_headers
from .test_app import assert_problem
from .test_storage import NOW, s3_bucket, s3_client, s3_server  # noqa: F401 - fixtures

PRELUDE = Path(__file__).resolve().parents[2] / "common" / "examples" / "prelude_in_c.mid"


def _on_s3(settings: Settings, server: S3Server, bucket: str, prefix: str = "") -> Settings:
    """The same settings, with files in ``bucket`` on the test S3 server."""
    return load_settings(
        **{
            **settings.model_dump(),
            "storage_url": f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}",
            "s3_endpoint_url": server.endpoint_url,
            "s3_region": REGION,
        }
    )


@pytest.fixture
def s3_app_client(
    settings: Settings,
    s3_server: S3Server,  # noqa: F811 - a fixture
    s3_bucket: str,  # noqa: F811 - a fixture
) -> Iterator[TestClient]:
    with TestClient(create_app(_on_s3(settings, s3_server, s3_bucket, "notefall/prod"))) as client:
        yield client


def _objects(server: S3Server, bucket: str) -> list[str]:
    listing = s3_client(server).list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def test_an_s3_storage_url_gives_s3_storage(tmp_path: Path):
    settings = make_settings(
        tmp_path,
        "sqlite://",
        storage_url="s3://notefall-files/tenant/a",
        s3_endpoint_url="http://minio.internal:9000",
        s3_region="eu-central-1",
    )
    assert settings.storage_s3_location == ("notefall-files", "tenant/a")
    storage = storage_from_settings(settings, clock=lambda: NOW)
    assert isinstance(storage, S3Storage)
    assert (storage.bucket, storage.prefix) == ("notefall-files", "tenant/a")
    assert storage.client.meta.endpoint_url == "http://minio.internal:9000"
    assert storage.client.meta.region_name == "eu-central-1"
    assert storage.object_name("projects/p/song.mid") == "tenant/a/projects/p/song.mid"
    local = storage_from_settings(make_settings(tmp_path, "sqlite://"), clock=lambda: NOW)
    assert isinstance(local, LocalStorage) and local.root == tmp_path / "storage"


@pytest.mark.parametrize("endpoint", ["minio:9000", "ftp://minio", "http://"])
def test_an_s3_endpoint_must_be_an_http_address(tmp_path: Path, endpoint: str):
    with pytest.raises(SettingsError, match="NOTEFALL_S3_ENDPOINT_URL"):
        make_settings(tmp_path, "sqlite://", storage_url="s3://files", s3_endpoint_url=endpoint)


def test_a_project_on_s3_stores_its_files_there_and_links_to_them_directly(
    s3_app_client: TestClient,
    settings: Settings,
    s3_server: S3Server,  # noqa: F811
    s3_bucket: str,  # noqa: F811
):
    client = s3_app_client
    ada = signed_in_headers(client, settings, "ada@example.com")
    project = client.post("/api/v1/projects", json={"name": "Prelude"}, headers=ada).json()
    files = {"file": ("song.mid", PRELUDE.read_bytes(), "audio/midi")}
    upload = client.put(f"/api/v1/projects/{project['id']}/midi", files=files, headers=ada)
    assert upload.status_code == 200, upload.text
    stored = _objects(s3_server, s3_bucket)
    assert [name.rsplit("-", 1)[0] for name in stored] == [
        f"notefall/prod/projects/{project['id']}/song",
        f"notefall/prod/projects/{project['id']}/thumbnail",
    ]

    redirect = client.get(upload.json()["thumbnail_url"], headers=ada, follow_redirects=False)
    assert redirect.status_code == 307
    link = redirect.headers["location"]
    assert link.startswith(f"{s3_server.endpoint_url}/{s3_bucket}/notefall/prod/projects/")
    assert "X-Amz-Signature=" in urlsplit(link).query
    image = httpx.get(link)  # straight from S3, not through the app
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    png = Image.open(io.BytesIO(image.content))
    assert png.format == "PNG" and png.size == (640, 360)

    assert client.delete(f"/api/v1/projects/{project['id']}", headers=ada).status_code == 204
    assert _objects(s3_server, s3_bucket) == []
    assert client.get("/readyz").json() == {"status": "ready"}


def test_readyz_reports_a_missing_bucket(
    settings: Settings,
    s3_server: S3Server,  # noqa: F811
    s3_bucket: str,  # noqa: F811 - sets up the S3 credentials
):
    app = create_app(_on_s3(settings, s3_server, "notefall-no-such-bucket"))
    with TestClient(app) as client:
        body = assert_problem(client.get("/readyz"), 503, "storage_unreachable")
        assert "NOTEFALL_STORAGE_URL" in body["detail"]


def test_the_files_route_serves_nothing_when_files_are_on_s3(s3_app_client: TestClient):
    local_style_link = "/files/projects/p/a.png?expires=99999999999&sig=anything"
    assert_problem(s3_app_client.get(local_style_link), 403, "invalid_file_link")
