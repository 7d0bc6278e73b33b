"""Avatars: PUT|GET|DELETE /api/v1/me/avatar and `avatar_url` in GET /api/v1/me."""

import io
import struct
import zlib
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from notefall.server.kit.models import utcnow
from notefall.server.kit.settings import Settings
from PIL import Image, PngImagePlugin

from .conftest import TestClient, signed_in_headers
from .test_app import assert_problem

ME = "/api/v1/me"
AVATAR = "/api/v1/me/avatar"
RED, BLUE = (255, 0, 0), (0, 0, 255)


@pytest.fixture
def ada(client: TestClient, settings: Settings) -> dict[str, str]:
    return signed_in_headers(client, settings, "ada@example.com")


def _halves(size: tuple[int, int] = (200, 100)) -> Image.Image:
    """Left half red, right half blue."""
    image = Image.new("RGB", size, BLUE)
    image.paste(RED, (0, 0, size[0] // 2, size[1]))
    return image


def _encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def _upload(client: TestClient, headers: dict, data: bytes, name: str = "me.png"):
    return client.put(
        AVATAR, files={"file": (name, data, "application/octet-stream")}, headers=headers
    )


def _stored_avatars(settings: Settings) -> list[str]:
    root = settings.data_dir / "storage"
    return sorted(str(p.relative_to(root)) for p in (root / "avatars").rglob("*") if p.is_file())


def _fetch(client: TestClient, url: str):
    link = urlsplit(url)
    assert f"{link.scheme}://{link.netloc}" == "http://notefall.test"
    return client.get(f"{link.path}?{link.query}")


def _avatar_image(client: TestClient, headers: dict) -> tuple[Image.Image, bytes]:
    url = client.get(ME, headers=headers).json()["avatar_url"]
    assert url is not None
    response = _fetch(client, url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    image.load()
    return image, response.content


def _near(pixel: tuple[int, ...], colour: tuple[int, int, int]) -> bool:
    return all(abs(a - b) < 40 for a, b in zip(pixel[:3], colour, strict=True))


def test_a_png_becomes_a_clean_256_square_png(client: TestClient, settings: Settings, ada: dict):
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "taken at 51.5N 0.12W")
    data = _encoded(_halves((300, 200)), "PNG", pnginfo=info)
    assert _upload(client, ada, data).status_code == 204
    image, raw = _avatar_image(client, ada)
    assert image.format == "PNG" and image.size == (256, 256) and image.mode == "RGB"
    assert image.info.keys() <= {"dpi"} and not image.getexif()
    assert b"51.5N" not in raw and b"tEXt" not in raw and b"eXIf" not in raw
    # Centre crop of 300×200: the middle 200×200, half red, half blue.
    assert _near(image.getpixel((20, 128)), RED) and _near(image.getpixel((235, 128)), BLUE)
    assert len(_stored_avatars(settings)) == 1
    events = client.get(f"{ME}/activity", headers=ada).json()["items"]
    assert [e["detail"] for e in events if e["kind"] == "profile_updated"] == [
        {"fields": ["avatar"]}
    ]


def test_exif_orientation_is_applied_and_all_exif_dropped(client: TestClient, ada: dict):
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    exif[0x013B] = "Ada the photographer"  # Artist
    exif[0x010F] = "PocketCam"  # Make
    data = _encoded(_halves(), "JPEG", exif=exif.tobytes(), quality=95)
    assert _upload(client, ada, data, "photo.jpg").status_code == 204
    image, raw = _avatar_image(client, ada)
    assert image.size == (256, 256)
    assert b"PocketCam" not in raw and b"Ada the photographer" not in raw and not image.getexif()
    # Upright, the red left half is on top: the top-right corner is red, bottom-left blue.
    assert _near(image.getpixel((235, 20)), RED) and _near(image.getpixel((20, 235)), BLUE)


def test_gif_webp_and_transparency_are_taken(client: TestClient, ada: dict):
    frames = [_halves(), _halves().transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    for fmt in ("GIF", "WEBP"):
        data = _encoded(frames[0], fmt, save_all=True, append_images=frames[1:])
        assert _upload(client, ada, data).status_code == 204, fmt
        image, _raw = _avatar_image(client, ada)
        assert image.size == (256, 256)
        # The first frame: red on the left.
        assert _near(image.getpixel((20, 128)), RED), fmt
    transparent = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    transparent.paste((255, 0, 0, 255), (16, 16, 48, 48))
    assert _upload(client, ada, _encoded(transparent, "PNG")).status_code == 204
    avatar, _raw = _avatar_image(client, ada)
    assert avatar.mode == "RGBA"
    assert avatar.getpixel((2, 2))[3] == 0 and avatar.getpixel((128, 128)) == (255, 0, 0, 255)


def _png_claiming(width: int, height: int) -> bytes:
    """A valid 1×1 PNG whose header claims width×height pixels."""
    data = bytearray(_encoded(Image.new("L", (1, 1)), "PNG"))
    ihdr = 8  # after the signature: length, b"IHDR", then the 13-byte body
    body = struct.pack(">II", width, height) + bytes(data[ihdr + 16 : ihdr + 21])
    data[ihdr + 8 : ihdr + 21] = body
    data[ihdr + 21 : ihdr + 25] = struct.pack(">I", zlib.crc32(b"IHDR" + body))
    return bytes(data)


def test_pictures_we_cannot_or_must_not_decode_are_refused(
    client: TestClient, settings: Settings, ada: dict
):
    png = _encoded(_halves(), "PNG")
    refused = {
        "text": b"hello, this is not a picture",
        "empty": b"",
        "bmp": _encoded(_halves(), "BMP"),
        "truncated": png[: len(png) // 2],
        "tiff": _encoded(_halves(), "TIFF"),
    }
    for name, data in refused.items():
        problem = assert_problem(_upload(client, ada, data), 422, "not_an_image")
        assert "PNG, JPEG, WebP or GIF" in problem["detail"], name
    assert_problem(_upload(client, ada, _png_claiming(20_000, 20_000)), 422, "image_too_large")
    big = _encoded(_halves(), "PNG") + b"\0" * (5 * 1024 * 1024)
    assert "5 MB" in assert_problem(_upload(client, ada, big), 413, "file_too_large")["detail"]
    assert client.get(ME, headers=ada).json()["avatar_url"] is None
    assert not (settings.data_dir / "storage" / "avatars").exists()
    assert_problem(_upload(client, {}, png), 401, "invalid_access_token")
    assert_problem(client.get(AVATAR), 401, "invalid_access_token")
    assert_problem(client.delete(AVATAR), 401, "invalid_access_token")


def test_replace_redirect_expire_remove(client: TestClient, settings: Settings, ada: dict):
    assert_problem(client.get(AVATAR, headers=ada), 404, "not_found")
    _upload(client, ada, _encoded(_halves(), "PNG"))
    [first] = _stored_avatars(settings)
    _upload(client, ada, _encoded(_halves().rotate(180), "PNG"))
    [second] = _stored_avatars(settings)
    assert first != second  # a new name per picture; the old file is gone

    redirect = client.get(AVATAR, headers=ada, follow_redirects=False)
    assert redirect.status_code == 307
    assert urlsplit(redirect.headers["location"]).path == f"/files/{second}"
    assert _fetch(client, redirect.headers["location"]).status_code == 200
    url = client.get(ME, headers=ada).json()["avatar_url"]
    start = utcnow()
    client.app.state.clock = lambda: start + timedelta(minutes=59)  # type: ignore[attr-defined]
    assert _fetch(client, url).status_code == 200
    client.app.state.clock = lambda: start + timedelta(minutes=61)  # type: ignore[attr-defined]
    assert_problem(_fetch(client, url), 403, "invalid_file_link")
    client.app.state.clock = utcnow  # type: ignore[attr-defined]

    assert client.delete(AVATAR, headers=ada).status_code == 204
    assert _stored_avatars(settings) == []
    assert client.get(ME, headers=ada).json()["avatar_url"] is None
    assert_problem(client.get(AVATAR, headers=ada), 404, "not_found")
    assert client.delete(AVATAR, headers=ada).status_code == 204  # nothing to remove is fine
