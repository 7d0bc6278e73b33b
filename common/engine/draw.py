"""Anti-aliased drawing into float RGBA buffers, used only when building sprites and strips.

Shapes are drawn from signed distance functions, so edges are exactly anti-aliased at
any resolution without supersampling.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

RGB = tuple[float, float, float]


def hex_rgb(value: str) -> RGB:
    v = value.lstrip("#")
    return int(v[0:2], 16) / 255.0, int(v[2:4], 16) / 255.0, int(v[4:6], 16) / 255.0


def mix(a: RGB, b: RGB, t: float) -> RGB:
    return a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t


def scale(c: RGB, k: float) -> RGB:
    return min(1.0, c[0] * k), min(1.0, c[1] * k), min(1.0, c[2] * k)


def box_sdf(
    xs: np.ndarray, ys: np.ndarray, x0: float, y0: float, x1: float, y1: float, r: float
) -> np.ndarray:
    """Signed distance (pixels, negative inside) of a rounded box at points (xs, ys).

    ``xs`` and ``ys`` broadcast against each other, so a caller can pass one row of
    x positions when every row has the same profile (the long middle of a note).
    """
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    hx, hy = max((x1 - x0) / 2, 0.0), max((y1 - y0) / 2, 0.0)
    r = max(0.0, min(r, hx, hy))
    qx = np.abs(xs - cx) - (hx - r)
    qy = np.abs(ys - cy) - (hy - r)
    outside = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2)
    inside = np.minimum(np.maximum(qx, qy), 0)
    return (outside + inside - r).astype(np.float32)


def rounded_rect_sdf(
    h: int, w: int, x0: float, y0: float, x1: float, y1: float, r: float
) -> np.ndarray:
    """``box_sdf`` sampled at the pixel centres of an (h, w) buffer."""
    ys = np.arange(h, dtype=np.float32)[:, None] + 0.5
    xs = np.arange(w, dtype=np.float32)[None, :] + 0.5
    return box_sdf(xs, ys, x0, y0, x1, y1, r)


def coverage(sdf: np.ndarray) -> np.ndarray:
    """Pixel coverage from a signed distance: a one-pixel anti-aliased edge."""
    return np.clip(0.5 - sdf, 0.0, 1.0)


def vertical_gradient(h: int, w: int, top: RGB, bottom: RGB) -> np.ndarray:
    t = np.linspace(0.0, 1.0, max(h, 1), dtype=np.float32)[:, None, None]
    a, b = np.asarray(top, np.float32), np.asarray(bottom, np.float32)
    return np.broadcast_to(a + (b - a) * t, (h, w, 3)).astype(np.float32)


_FONTS = Path(__file__).with_name("fonts")


@lru_cache(maxsize=32)
def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """DejaVu Sans, bundled (Latin, Greek, Cyrillic and typographic punctuation), so
    titles like "Étude — Dvořák" render the same on every machine."""
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return ImageFont.truetype(str(_FONTS / name), max(6, int(size)))


def text_width(text: str, size: int, bold: bool = False) -> int:
    left, _, right, _ = font(size, bold).getbbox(text)
    return int(right - left)


def text_mask(text: str, size: int, *, stroke: int = 0, bold: bool = False) -> np.ndarray:
    """Anti-aliased coverage (float 0..1) of ``text`` tightly cropped."""
    f = font(size, bold)
    left, top, right, bottom = (int(v) for v in f.getbbox(text, stroke_width=stroke))
    w, h = max(1, right - left), max(1, bottom - top)
    img = Image.new("L", (w + 2, h + 2), 0)
    ImageDraw.Draw(img).text(
        (1 - left, 1 - top), text, fill=255, font=f, stroke_width=stroke, stroke_fill=255
    )
    return np.asarray(img, dtype=np.float32) / 255.0


def _wrap(words: list[str], size: int, max_width: int, bold: bool) -> list[str]:
    """Greedy word wrap; a single word wider than the line stays on its own line."""
    lines: list[str] = []
    for word in words:
        if lines and text_width(f"{lines[-1]} {word}", size, bold) <= max_width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def fit_lines(
    text: str,
    size: int,
    max_width: int,
    *,
    bold: bool = False,
    min_share: float = 0.6,
    max_lines: int = 2,
) -> tuple[list[str], int]:
    """Lines and font size that make ``text`` fit ``max_width``.

    Tries one line, shrinking down to ``min_share`` of ``size``; then word-wraps into
    up to ``max_lines`` lines at each size; as a last resort the smallest size is
    used and the last line ends in an ellipsis.
    """
    words = text.split()
    if not words:
        return [], size
    smallest = max(6, int(size * min_share))
    sizes = list(range(int(size), smallest - 1, -2)) or [smallest]
    for n_lines in range(1, max_lines + 1):
        for s in sizes:
            lines = _wrap(words, s, max_width, bold)
            if len(lines) <= n_lines and all(text_width(x, s, bold) <= max_width for x in lines):
                return lines, s
    lines = _wrap(words, smallest, max_width, bold)
    kept = lines[:max_lines]
    last = kept[-1] if len(lines) == max_lines else " ".join(lines[max_lines - 1 :])
    while len(last) > 1 and text_width(last + "…", smallest, bold) > max_width:
        last = last[:-1].rstrip()
    kept[-1] = last + "…"
    return kept, smallest


def gaussian_blob(h: int, w: int, sigma_x: float, sigma_y: float) -> np.ndarray:
    ys = (np.arange(h, dtype=np.float32) - (h - 1) / 2)[:, None]
    xs = (np.arange(w, dtype=np.float32) - (w - 1) / 2)[None, :]
    return np.exp(-0.5 * ((xs / max(sigma_x, 1e-3)) ** 2 + (ys / max(sigma_y, 1e-3)) ** 2))


def even_floor(v: float) -> int:
    return int(np.floor(v / 2.0)) * 2


def even_ceil(v: float) -> int:
    return int(np.ceil(v / 2.0)) * 2
