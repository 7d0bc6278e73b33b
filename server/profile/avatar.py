"""Turning an uploaded picture into a safe avatar: decoded by Pillow under a pixel cap,
turned upright by its EXIF orientation, centre-cropped square and re-encoded as a 256×256
PNG built from pixels alone, so no metadata (GPS position, camera, comments) survives."""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

AVATAR_SIZE = 256
MAX_AVATAR_BYTES = 5 * 1024 * 1024
# Far more than any camera's picture, far less than a decompression bomb: a small file
# may claim a huge canvas, and decoding it would take gigabytes of memory.
MAX_AVATAR_PIXELS = 50_000_000
ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")


class UnreadableImage(Exception):
    """Pillow cannot decode it as one of the accepted formats."""


class OversizedImage(Exception):
    """More pixels than MAX_AVATAR_PIXELS."""


def avatar_png(data: bytes) -> bytes:
    """A 256×256 PNG of ``data``'s picture; UnreadableImage or OversizedImage otherwise."""
    upright = _decoded(data)
    # Cropped before anything else, so the conversions below touch the square only.
    side = min(upright.size)
    left, top = (upright.width - side) // 2, (upright.height - side) // 2
    square = upright.crop((left, top, left + side, top + side))
    has_alpha = square.mode in ("RGBA", "LA", "PA") or "transparency" in square.info
    converted = square.convert("RGBA" if has_alpha else "RGB")
    # reducing_gap: a cheap box reduction first, Lanczos for the last steps (same look).
    small = converted.resize((AVATAR_SIZE, AVATAR_SIZE), Image.Resampling.LANCZOS, reducing_gap=3.0)
    # A new image from the pixels only: no EXIF, ICC, XMP or text chunk can come along.
    clean = Image.frombytes(small.mode, small.size, small.tobytes())
    out = io.BytesIO()
    clean.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _decoded(data: bytes) -> Image.Image:
    """The picture, decoded (a GIF's first frame) and turned upright by its EXIF orientation."""
    try:
        with warnings.catch_warnings():
            # Pillow only warns below twice its own cap; ours is checked explicitly below.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # Only these decoders are tried, so Pillow's rarer formats never see the bytes.
            image = Image.open(io.BytesIO(data), formats=list(ACCEPTED_FORMATS))
            if image.width * image.height > MAX_AVATAR_PIXELS:
                raise OversizedImage(f"{image.width}×{image.height}")
            # JPEG can decode at 1/2, 1/4 or 1/8 scale, still at least 256 pixels a side:
            # far less memory and time for a camera's photo.
            image.draft(image.mode, (AVATAR_SIZE, AVATAR_SIZE))
            image.load()  # only the header was read so far
            return ImageOps.exif_transpose(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise OversizedImage(str(error)) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as error:
        raise UnreadableImage(str(error)) from None
