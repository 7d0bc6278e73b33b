"""Things drawn on top: title card, watermark, pedal indicator, progress bar, background."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

from ..errors import InputError
from .draw import (
    RGB,
    coverage,
    even_floor,
    fit_lines,
    hex_rgb,
    rounded_rect_sdf,
    text_mask,
    vertical_gradient,
)
from .layout import FrameLayout, KeyboardLayout
from .planes import Frame, PixelFormat, Sprite, rgb_to_channels

MAX_BACKGROUND_PIXELS = 50_000_000  # a decompression bomb guard for user images


def background_band(
    layout: FrameLayout,
    keys: KeyboardLayout,
    fmt: PixelFormat,
    *,
    top: RGB,
    bottom: RGB,
    image: str | None,
    transparent: bool,
    guide: str,
    guide_opacity: float,
) -> list[np.ndarray]:
    """Planes of the note area at rest: gradient or image, octave guides and a vignette."""
    h, w = layout.hit_y, layout.width
    if transparent:
        rgb = np.zeros((h, w, 3), np.float32)
        alpha = np.zeros((h, w), np.float32)
    else:
        alpha = np.ones((h, w), np.float32)
        xs = np.linspace(-1, 1, w, dtype=np.float32)[None, :, None]
        ys = np.linspace(-1, 1, h, dtype=np.float32)[:, None, None]
        if image:
            rgb = _load_image(image, w, h)
            rgb *= 1 - 0.22 * np.clip(xs**2 * 0.8 + ys**2 * 0.35, 0, 1)
        else:
            # A gentle vignette keeps the eye on the middle of the keyboard. It is built
            # as a sum of a vertical and a horizontal part, so the background splits
            # exactly into B(x) + D(y) and the fast path reproduces it (see strip.py).
            grad = vertical_gradient(h, 1, top, bottom)
            mid = np.asarray(top, np.float32) * 0.5 + np.asarray(bottom, np.float32) * 0.5
            rgb = grad * (1 - 0.077 * ys**2) - mid * (0.176 * xs**2)
            rgb = np.clip(np.broadcast_to(rgb, (h, w, 3)), 0, 1).astype(np.float32)
    if guide_opacity > 0:
        gcol = np.asarray(hex_rgb(guide), np.float32)
        for p in keys.pitches():
            if p % 12 == 0 and p > keys.low:
                x = float(keys.key_x0[p])
                xi = int(x)
                if 0 <= xi < w:
                    a = guide_opacity
                    rgb[:, xi] = rgb[:, xi] * (1 - a) + gcol * a
                    if transparent:
                        alpha[:, xi] = np.maximum(alpha[:, xi], a)
    return _planes(rgb, alpha, fmt)


# YUV: per-row offsets are added modulo 256 in one pass, so they must keep every code
# value inside 0..255. RGB frames (stills, preview) add with saturation instead.
_MAX_DELTA_YUV = ((-16, 20), (-15, 15), (-15, 15))
_MAX_DELTA_RGB = ((-48, 48),) * 3
_MAX_SEPARABLE_ERROR = 6  # code values; invisible on the themes it admits


def separable_background(
    planes: list[np.ndarray], fmt: PixelFormat
) -> tuple[list[np.ndarray], list[np.ndarray]] | None:
    """Split a background into B(x) + D(y) per plane when that is faithful.

    Returns (top rows B as 1-row planes, per-row offsets D), or None when the
    background varies too much for the fast path (images, strong gradients,
    transparency): then notes are blended over the exact background. D is uint8
    modulo 256 for YUV and int16 for RGB. Stills and video take the same path, so the
    preview shows the colours of the export.
    """
    if fmt.has_alpha:
        return None
    limits = _MAX_DELTA_YUV if fmt.is_yuv else _MAX_DELTA_RGB
    bases, deltas = [], []
    for plane, (lo, hi) in zip(planes, limits, strict=False):
        p = plane.astype(np.int16)
        base = p[0:1]
        delta = p[:, p.shape[1] // 2] - p[0, p.shape[1] // 2]
        if delta.min() < lo or delta.max() > hi:
            return None
        if np.abs(base + delta[:, None] - p).max() > _MAX_SEPARABLE_ERROR:
            return None
        bases.append(plane[0:1].copy())
        if fmt.is_yuv:
            deltas.append((delta % 256).astype(np.uint8)[:, None])
        else:
            deltas.append(delta.astype(np.int16)[:, None])
    return bases, deltas


def _planes(rgb: np.ndarray, alpha: np.ndarray, fmt: PixelFormat) -> list[np.ndarray]:
    chans = rgb_to_channels(rgb, fmt)
    out = []
    for c, s in zip(chans, fmt.subsampling, strict=True):
        if s == 2:
            hh, ww = c.shape
            c = c[: hh - hh % 2, : ww - ww % 2].reshape(hh // 2, 2, ww // 2, 2).mean(axis=(1, 3))
        out.append(np.clip(np.rint(c), 0, 255).astype(np.uint8))
    if fmt.has_alpha:
        out.append(np.clip(np.rint(alpha * 255), 0, 255).astype(np.uint8))
    return out


def _load_image(path: str, w: int, h: int) -> np.ndarray:
    try:
        Image.MAX_IMAGE_PIXELS = MAX_BACKGROUND_PIXELS
        with Image.open(path) as opened:
            upright = ImageOps.exif_transpose(opened).convert("RGB")
            im = ImageOps.fit(upright, (w, h), method=Image.Resampling.LANCZOS)
    except FileNotFoundError:
        raise InputError(f"Background image not found: {path}", code="invalid_background") from None
    except (OSError, Image.DecompressionBombError, ValueError) as exc:
        raise InputError(
            f"The background image {path} cannot be used ({type(exc).__name__}); use a PNG or JPEG.",
            code="invalid_background",
        ) from None
    # Darkened so the notes, not the photo, carry the picture.
    return np.asarray(im, np.float32) / 255.0 * 0.55


def _text_sprite(
    lines: list[tuple[str, int, float, bool]], fmt: PixelFormat, pad: int, backdrop: float
) -> Sprite:
    """White text lines (text, size, opacity, bold), centred, on an optional dark pill."""
    masks = [(text_mask(t, size, bold=bold), op) for t, size, op, bold in lines if t]
    width = max(m.shape[1] for m, _ in masks) + 2 * pad
    gap = pad // 2
    height = sum(m.shape[0] for m, _ in masks) + gap * (len(masks) - 1) + 2 * pad
    width, height = width + width % 2, height + height % 2
    rgba = np.zeros((height, width, 4), np.float32)
    if backdrop > 0:
        sdf = rounded_rect_sdf(height, width, 0, 0, width, height, pad * 0.8)
        rgba[..., 3] = coverage(sdf) * backdrop
    y = pad
    for m, op in masks:
        x = (width - m.shape[1]) // 2
        region = rgba[y : y + m.shape[0], x : x + m.shape[1]]
        a = m * op
        region[..., :3] = (1 - a[..., None]) * region[..., :3] * (region[..., 3:4] > 0) + a[
            ..., None
        ]
        region[..., 3] = a + region[..., 3] * (1 - a)
        y += m.shape[0] + gap
    # Straight colour: text is white, the backdrop is black.
    with np.errstate(invalid="ignore", divide="ignore"):
        rgba[..., :3] = np.where(
            rgba[..., 3:4] > 0, rgba[..., :3] / np.maximum(rgba[..., 3:4], 1e-6), 0
        )
    return Sprite.from_rgba(np.clip(rgba, 0, 1), fmt)


class TitleCard:
    FADE_LEVELS = 16

    def __init__(
        self, layout: FrameLayout, fmt: PixelFormat, title: str, artist: str, duration: float
    ) -> None:
        s = layout.scale
        pad = max(8, int(40 * s))
        room = int(layout.width * 0.88) - 2 * pad  # long titles shrink, then wrap
        title_lines, title_size = fit_lines(title, int(64 * s), room, bold=True, max_lines=3)
        artist_lines, artist_size = fit_lines(artist, int(34 * s), room)
        lines = [(t, title_size, 1.0, True) for t in title_lines if t]
        lines += [(t, artist_size, 0.8, False) for t in artist_lines if t]
        self.sprite = _text_sprite(lines, fmt, pad=pad, backdrop=0.45)
        self.x = even_floor((layout.width - self.sprite.width) / 2)
        self.y = even_floor(layout.hit_y * 0.42 - self.sprite.height / 2)
        self.duration = duration
        self._faded: dict[int, Sprite] = {}

    def draw(self, frame: Frame, video_time: float) -> None:
        if video_time >= self.duration:
            return
        fade_out = 0.8
        opacity = min(1.0, (self.duration - video_time) / fade_out)
        level = int(round(opacity * self.FADE_LEVELS))
        if level <= 0:
            return
        sp = self._faded.get(level)
        if sp is None:
            sp = (
                self.sprite
                if level == self.FADE_LEVELS
                else self.sprite.faded(level / self.FADE_LEVELS)
            )
            self._faded[level] = sp
        frame.blend(sp, self.x, self.y)


class Watermark:
    def __init__(self, layout: FrameLayout, fmt: PixelFormat) -> None:
        s = layout.scale
        self.sprite = _text_sprite(
            [("Made with Notefall", int(26 * s), 0.7, False)],
            fmt,
            pad=max(4, int(12 * s)),
            backdrop=0.3,
        )
        margin = int(24 * s)
        self.x = even_floor(layout.width - self.sprite.width - margin)
        self.y = even_floor(layout.top + margin)

    def draw(self, frame: Frame) -> None:
        frame.blend(self.sprite, self.x, self.y)


class PedalIndicator:
    def __init__(self, layout: FrameLayout, fmt: PixelFormat, color: RGB, quiet: RGB) -> None:
        """``quiet``: the outline and text colour while the pedal is up (the theme's guides)."""
        s = layout.scale
        w, h = even_floor(120 * s) + 2, even_floor(40 * s) + 2
        self.sprites = [self._pill(w, h, s, fmt, color, quiet, on) for on in (False, True)]
        margin = int(24 * s)
        self.x = even_floor(margin)
        self.y = even_floor(layout.top + margin)

    @staticmethod
    def _pill(
        w: int, h: int, s: float, fmt: PixelFormat, color: RGB, quiet: RGB, on: bool
    ) -> Sprite:
        rgba = np.zeros((h, w, 4), np.float32)
        sdf = rounded_rect_sdf(h, w, 1, 1, w - 1, h - 1, h / 2)
        fill = coverage(sdf)
        ring = np.clip(1 - np.abs(sdf + 1) / 1.2, 0, 1)
        col = np.asarray(color if on else quiet, np.float32)
        rgba[..., :3] = col
        rgba[..., 3] = np.clip(fill * (0.85 if on else 0.0) + ring * 0.8, 0, 1)
        text = text_mask("PEDAL", max(8, int(20 * s)))
        th, tw = text.shape
        y0, x0 = (h - th) // 2, (w - tw) // 2
        if th <= h and tw <= w:
            region = rgba[y0 : y0 + th, x0 : x0 + tw]
            ink = np.asarray((0.05, 0.05, 0.08) if on else quiet, np.float32)
            region[..., :3] = region[..., :3] * (1 - text[..., None]) + ink * text[..., None]
            region[..., 3] = np.maximum(region[..., 3], text * 0.95)
        return Sprite.from_rgba(rgba, fmt)

    def draw(self, frame: Frame, down: bool) -> None:
        frame.blend(self.sprites[int(down)], self.x, self.y)


class ProgressBar:
    def __init__(self, layout: FrameLayout, fmt: PixelFormat, color: RGB, background: RGB) -> None:
        from .planes import color_code

        self.height = layout.progress_height
        self.width = layout.width
        rgb = tuple(int(c * 255) for c in color)
        # The unfilled track is the background tinted towards the bar's colour.
        track = tuple(
            int((b * 0.75 + c * 0.25) * 255) for b, c in zip(background, color, strict=True)
        )
        alpha = (255,) if fmt.has_alpha else ()
        self.fill = (*color_code(rgb, fmt), *alpha)  # type: ignore[arg-type]
        self.track = (*color_code(track, fmt), *alpha)  # type: ignore[arg-type]

    def draw(self, frame: Frame, progress: float) -> None:
        if self.height <= 0:
            return
        x = even_floor(self.width * min(max(progress, 0.0), 1.0))
        frame.fill_rect(0, 0, self.width, self.height, self.track)
        if x > 0:
            frame.fill_rect(0, 0, x, self.height, self.fill)
