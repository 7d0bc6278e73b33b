"""The piano keyboard: drawn once at rest, plus one sprite per (key, colour) when pressed."""

from __future__ import annotations

import numpy as np

from ..song import is_black_key, note_name
from .draw import (
    RGB,
    coverage,
    even_ceil,
    even_floor,
    hex_rgb,
    mix,
    rounded_rect_sdf,
    scale,
    text_mask,
)
from .layout import FrameLayout, KeyboardLayout
from .planes import Frame, PixelFormat, Sprite

_WHITE_TOP: RGB = (0.86, 0.86, 0.87)
_WHITE_MID: RGB = (0.98, 0.98, 0.98)
_WHITE_BOTTOM: RGB = (0.90, 0.90, 0.91)
_BLACK_TOP: RGB = (0.07, 0.07, 0.08)
_BLACK_BOTTOM: RGB = (0.20, 0.20, 0.22)
_GAP: RGB = (0.10, 0.10, 0.11)


class Keyboard:
    def __init__(
        self,
        keys: KeyboardLayout,
        layout: FrameLayout,
        fmt: PixelFormat,
        *,
        felt: str,
        labels: bool,
        tint: float,
    ) -> None:
        self.keys, self.layout, self.format = keys, layout, fmt
        self.labels, self.tint = labels, tint
        self.felt = hex_rgb(felt)
        self.height = layout.keyboard_height
        # The resting keyboard is opaque: copied, not blended, every frame.
        self._pressed: dict[tuple[int, RGB], tuple[int, int, list[np.ndarray]]] = {}
        self.band = self._planes(self._draw_slice(0, layout.width, {}))

    # Geometry ---------------------------------------------------------------------------
    def _key_box(self, pitch: int) -> tuple[float, float, float, float]:
        """Key outline in keyboard-band coordinates."""
        x0, x1 = float(self.keys.key_x0[pitch]), float(self.keys.key_x1[pitch])
        felt = self.layout.felt_height
        if is_black_key(pitch):
            return x0, felt, x1, felt + self.layout.black_height
        return x0 + 0.6, felt, x1 - 0.6, self.height - 0.5

    def _key_alpha(self, pitch: int, h: int, w: int, ox: float) -> np.ndarray:
        x0, y0, x1, y1 = self._key_box(pitch)
        r = (x1 - x0) * (0.10 if is_black_key(pitch) else 0.08)
        # Only the bottom corners are rounded: extend the box upwards past the felt.
        cov = coverage(rounded_rect_sdf(h, w, x0 - ox, y0 - r - 2, x1 - ox, y1, r))
        if not is_black_key(pitch):
            for nb in (pitch - 1, pitch + 1):
                if is_black_key(nb) and self.keys.contains(nb):
                    bx0, by0, bx1, by1 = self._key_box(nb)
                    cov = cov * (
                        1
                        - coverage(
                            rounded_rect_sdf(
                                h, w, bx0 - ox - 0.8, by0 - 4, bx1 - ox + 0.8, by1 + 0.8, 2
                            )
                        )
                    )
        return cov

    # Drawing ----------------------------------------------------------------------------
    def _shade(self, pitch: int, h: int, w: int, color: RGB | None) -> np.ndarray:
        """Straight RGB of one key (rest or pressed in ``color``) over an (h, w) box."""
        ys = (np.arange(h, dtype=np.float32)[:, None, None] + 0.5) / self.height
        if is_black_key(pitch):
            top, bottom = (
                (_BLACK_TOP, _BLACK_BOTTOM)
                if color is None
                else (scale(color, 0.55), scale(color, 0.95))
            )
            t = np.clip(ys / (self.layout.black_height / self.height), 0, 1)
            rgb = (
                np.asarray(top, np.float32)
                + (np.asarray(bottom, np.float32) - np.asarray(top, np.float32)) * t
            )
            # A bevel highlight near the front edge of the black key.
            edge = np.clip((t - 0.86) / 0.14, 0, 1)
            rgb = rgb + edge * (0.22 if color is None else 0.15)
        else:
            if color is None:
                top, mid, bottom = _WHITE_TOP, _WHITE_MID, _WHITE_BOTTOM
            else:
                top = mix(_WHITE_TOP, scale(color, 0.75), self.tint)
                mid = mix(_WHITE_MID, color, self.tint)
                bottom = mix(_WHITE_BOTTOM, scale(color, 0.85), self.tint)
            t = ys
            a, m, b = (np.asarray(c, np.float32) for c in (top, mid, bottom))
            rgb = np.where(
                t < 0.25, a + (m - a) * (t / 0.25), m + (b - m) * np.clip((t - 0.25) / 0.75, 0, 1)
            )
            # The front lip of a white key.
            lip = np.clip((t - 0.955) / 0.045, 0, 1)
            rgb = rgb * (1 - 0.18 * lip)
        return np.broadcast_to(rgb, (h, w, 3)).astype(np.float32)

    def _label(self, buf: np.ndarray, pitch: int, ox: float, pressed: bool) -> None:
        if is_black_key(pitch):
            return
        x0, _, x1, y1 = self._key_box(pitch)
        size = max(7, int((x1 - x0) * 0.42))
        mask = text_mask(note_name(pitch, ascii_only=True), size)
        mh, mw = mask.shape
        if mw > (x1 - x0) - 2:
            mask = text_mask(note_name(pitch, octave=False, ascii_only=True), size)
            mh, mw = mask.shape
        cx = int(round((x0 + x1) / 2 - ox - mw / 2))
        cy = int(round(y1 - mh - (x1 - x0) * 0.25))
        h, w = buf.shape[:2]
        if cx < 0 or cy < 0 or cx + mw > w or cy + mh > h:
            return
        ink = np.asarray((0.15, 0.15, 0.18) if not pressed else (0.05, 0.05, 0.08), np.float32)
        region = buf[cy : cy + mh, cx : cx + mw, :3]
        a = mask[..., None] * (0.75 if pitch % 12 == 0 else 0.5)
        region[...] = region * (1 - a) + ink * a

    def _columns(self, pitch: int, pad: float = 4.0) -> tuple[int, int]:
        """Even-aligned column range around a key (its shadow included)."""
        x0 = float(self.keys.key_x0[pitch])
        x1 = float(self.keys.key_x1[pitch])
        return max(0, even_floor(x0 - pad)), min(self.layout.width, even_ceil(x1 + pad))

    def _draw_slice(self, c0: int, c1: int, pressed: dict[int, RGB]) -> np.ndarray:
        """Columns [c0, c1) of the keyboard, keys in ``pressed`` shown in their colour.

        Drawn in the same order as a real keyboard stacks: gaps, white keys, the black
        keys' shadows, black keys, then the felt strip across the top.
        """
        h = self.height
        buf = np.zeros((h, c1 - c0, 4), np.float32)
        buf[..., :3] = _GAP
        buf[..., 3] = 1.0
        for black in (False, True):
            for pitch in self.keys.pitches():
                if is_black_key(pitch) != black:
                    continue
                k0, k1 = self._columns(pitch, pad=8.0 if black else 4.0)
                a, b = max(k0, c0), min(k1, c1)
                if a >= b:
                    continue
                sub = buf[:, a - c0 : b - c0]
                if black:
                    # A soft shadow the black key throws onto the white keys below it.
                    x0, y0, x1, y1 = self._key_box(pitch)
                    sdf = rounded_rect_sdf(h, b - a, x0 + 1 - a, y0, x1 + 3 - a, y1 + 4, 4)
                    sub[..., :3] *= 1 - (np.clip(1 - sdf / 6, 0, 1) * 0.35)[..., None]
                self._paint_key(sub, pitch, a, pressed.get(pitch))
        self._paint_felt(buf)
        return buf

    def _paint_key(self, buf: np.ndarray, pitch: int, ox: float, color: RGB | None) -> None:
        h, w = buf.shape[:2]
        alpha = self._key_alpha(pitch, h, w, ox)
        rgb = self._shade(pitch, h, w, color)
        a = alpha[..., None]
        buf[..., :3] = rgb * a + buf[..., :3] * (1 - a)
        if self.labels:
            self._label(buf, pitch, ox, color is not None)

    def _paint_felt(self, buf: np.ndarray) -> None:
        f = self.layout.felt_height
        t = np.linspace(0, 1, f, dtype=np.float32)[:, None, None]
        felt = np.asarray(self.felt, np.float32)
        buf[:f, :, :3] = felt * (0.55 + 0.45 * (1 - np.abs(t - 0.4)))
        # Shadow the felt throws onto the keys just below it.
        s = min(self.height - f, max(2, f))
        k = np.linspace(0.45, 0.0, s, dtype=np.float32)[:, None, None]
        buf[f : f + s, :, :3] *= 1 - k

    def _planes(self, rgba: np.ndarray) -> list[np.ndarray]:
        sprite = Sprite.from_rgba(rgba, self.format)
        return [_opaque_plane(p, a) for p, a in zip(sprite.premul, sprite.a256, strict=True)]

    def pressed_key(self, pitch: int, color: RGB) -> tuple[int, int, list[np.ndarray]]:
        """(x0, rows, planes) of ``pitch`` pressed in ``color``: a slice drawn once, then copied.

        White keys are whole columns (the neighbouring black keys drawn at rest, so
        pressed black keys are copied on top afterwards); black keys are rectangles
        down to their front edge.
        """
        key = (pitch, color)
        hit = self._pressed.get(key)
        if hit is None:
            if is_black_key(pitch):
                c0, c1 = self._columns(pitch, pad=0.0)
                rows = even_ceil(self.layout.felt_height + self.layout.black_height + 1)
            else:
                c0 = even_floor(float(self.keys.key_x0[pitch]))
                c1 = even_ceil(float(self.keys.key_x1[pitch]))
                rows = self.height
            rgba = self._draw_slice(c0, c1, {pitch: color})[:rows]
            hit = (c0, rows, self._planes(rgba))
            self._pressed[key] = hit
        return hit

    def draw(self, frame: Frame, pressed: dict[int, RGB]) -> None:
        """The keyboard at rest, then each pressed key copied in (copies, not blends)."""
        y = self.layout.hit_y
        frame.copy_rows_from(self.band, y)
        for black in (False, True):
            for pitch, color in pressed.items():
                if is_black_key(pitch) == black:
                    x0, rows, planes = self.pressed_key(pitch, color)
                    frame.copy_patch(planes, x0, y, rows)


def _opaque_plane(premul: np.ndarray, a256: np.ndarray) -> np.ndarray:
    return (premul // np.maximum(a256, 1)).astype(np.uint8)
