"""Frames as planes in the encoder's own pixel format, and the few operations we need.

A frame is a list of 8-bit planes: Y, U, V at 4:2:0 (BT.709, limited range) for video,
or R, G, B for stills and the preview, each optionally followed by an alpha plane.
Everything that is drawn once (note strips, key sprites, glows) is converted to this
form once as a ``Sprite``; per frame we only copy and blend small regions with
integer arithmetic, which is why frame production costs a fraction of encoding.

Blending ``dst' = dst + a (fg - dst)`` is exact in YUV as in RGB: YUV is an affine map
of RGB and a convex combination commutes with affine maps.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np


class PixelFormat(StrEnum):
    YUV420P = "yuv420p"
    YUVA420P = "yuva420p"
    RGB = "rgb24"
    RGBA = "rgba"

    @property
    def has_alpha(self) -> bool:
        return self in (PixelFormat.YUVA420P, PixelFormat.RGBA)

    @property
    def is_yuv(self) -> bool:
        return self in (PixelFormat.YUV420P, PixelFormat.YUVA420P)

    @property
    def subsampling(self) -> tuple[int, ...]:
        """Per colour plane: 1 for full resolution, 2 for half in both directions."""
        return (1, 2, 2) if self.is_yuv else (1, 1, 1)


# BT.709 limited range: Y in 16..235, Cb/Cr in 16..240.
_KR, _KB = 0.2126, 0.0722
_KG = 1.0 - _KR - _KB
_YUV = np.array(
    [
        [_KR, _KG, _KB],
        [-_KR / (2 * (1 - _KB)), -_KG / (2 * (1 - _KB)), 0.5],
        [0.5, -_KG / (2 * (1 - _KR)), -_KB / (2 * (1 - _KR))],
    ],
    dtype=np.float32,
)
_YUV_SCALE = np.array([219.0, 224.0, 224.0], dtype=np.float32)
_YUV_OFFSET = np.array([16.0, 128.0, 128.0], dtype=np.float32)


def rgb_to_channels(rgb: np.ndarray, fmt: PixelFormat) -> list[np.ndarray]:
    """Float RGB in 0..1 (H, W, 3) → three float channels in the format's 0..255 code values."""
    if not fmt.is_yuv:
        return [rgb[..., i] * 255.0 for i in range(3)]
    yuv = rgb @ _YUV.T
    return [yuv[..., i] * _YUV_SCALE[i] + _YUV_OFFSET[i] for i in range(3)]


def color_code(rgb: tuple[int, int, int], fmt: PixelFormat) -> tuple[int, int, int]:
    """8-bit code values of one sRGB colour in the given format."""
    arr = np.asarray(rgb, dtype=np.float32).reshape(1, 1, 3) / 255.0
    return tuple(int(round(float(np.clip(c[0, 0], 0, 255)))) for c in rgb_to_channels(arr, fmt))  # type: ignore[return-value]


def _downsample(a: np.ndarray, s: int) -> np.ndarray:
    """Box-average by ``s`` (1 or 2) in both directions, with plain strided adds (fast)."""
    if s == 1:
        return a
    if a.shape[0] % 2 or a.shape[1] % 2:
        a = np.pad(a, ((0, a.shape[0] % 2), (0, a.shape[1] % 2)), mode="edge")
    out = a[0::2, 0::2] + a[1::2, 0::2]
    out += a[0::2, 1::2]
    out += a[1::2, 1::2]
    out *= 0.25
    return out


def composite_over_boxes(
    pre: np.ndarray,
    boxes: list[tuple[int, int, int, int]],
    base: list[np.ndarray],
    fmt: PixelFormat,
) -> list[np.ndarray]:
    """Premultiplied RGBA (H, W, 4) over a background that varies only along x.

    ``base`` holds one row per plane in code values; ``boxes`` (even-aligned x0, y0,
    x1, y1) cover everything drawn. Only the boxes are converted — overlapping boxes
    just compute the same pixels twice — and the rest is the base row repeated.
    Returns opaque uint8 planes.
    """
    h = pre.shape[0]
    out = [
        np.repeat(b, (h + s - 1) // s, axis=0) for b, s in zip(base, fmt.subsampling, strict=True)
    ]
    if fmt.is_yuv:
        coef, offset = _YUV * _YUV_SCALE[:, None], _YUV_OFFSET
    else:
        coef, offset = np.eye(3, dtype=np.float32) * 255.0, np.zeros(3, np.float32)
    for x0, y0, x1, y1 in boxes:
        part = pre[y0:y1, x0:x1]
        alpha = part[..., 3]
        rgb = part[..., :3]
        for i, s in enumerate(fmt.subsampling):
            value = rgb[..., 0] * coef[i, 0]
            value += rgb[..., 1] * coef[i, 1]
            value += rgb[..., 2] * coef[i, 2]
            value += alpha * offset[i]
            a = _downsample(alpha, s)
            v = _downsample(value, s)
            v += (1.0 - a) * base[i][0, x0 // s : x0 // s + v.shape[1]].astype(np.float32)
            np.clip(v, 0, 255, out=v)
            out[i][y0 // s : y0 // s + v.shape[0], x0 // s : x0 // s + v.shape[1]] = np.rint(v)
    return out


@dataclass(slots=True)
class Sprite:
    """A pre-converted RGBA picture, ready to blend: per plane (a256, inv256, premultiplied)."""

    width: int
    height: int
    a256: list[np.ndarray]  # uint16, 0..256, per plane resolution
    inv256: list[np.ndarray]  # uint16, 256 - a256
    premul: list[np.ndarray]  # uint16, code value × a256
    opaque: bool

    @classmethod
    def from_rgba(cls, rgba: np.ndarray, fmt: PixelFormat) -> Sprite:
        """``rgba``: float32 (H, W, 4), straight (not premultiplied) colour in 0..1."""
        pre = np.empty_like(rgba, dtype=np.float32)
        alpha = np.clip(rgba[..., 3], 0.0, 1.0)
        pre[..., :3] = np.clip(rgba[..., :3], 0.0, 1.0) * alpha[..., None]
        pre[..., 3] = alpha
        return cls.from_premultiplied(pre, fmt)

    @classmethod
    def from_premultiplied(
        cls, pre: np.ndarray, fmt: PixelFormat, rows: list[tuple[int, int]] | None = None
    ) -> Sprite:
        """``pre``: float32 (H, W, 4) premultiplied colour and alpha in 0..1.

        Sprites are placed at even x and y so the 4:2:0 chroma grid lines up. The
        subsampled colour is the alpha-weighted mean, which is exact over a flat
        background. Only ``rows`` (even-aligned runs) are converted when given: the
        rest is left fully transparent.
        """
        h, w = pre.shape[:2]
        subs = list(fmt.subsampling) + ([1] if fmt.has_alpha else [])
        a256 = [np.zeros(((h + s - 1) // s, (w + s - 1) // s), np.uint16) for s in subs]
        premul = [np.zeros_like(a) for a in a256]
        for r0, r1 in rows if rows is not None else [(0, h)]:
            part = pre[r0:r1]
            alpha = part[..., 3]
            if fmt.is_yuv:
                # Premultiplied code values: (M · rgb·a) · scale + offset · a.
                mixed = part[..., :3] @ (_YUV.T * _YUV_SCALE[None, :])
                values = [mixed[..., i] + _YUV_OFFSET[i] * alpha for i in range(3)]
            else:
                values = [part[..., i] * 255.0 for i in range(3)]
            if fmt.has_alpha:
                values.append(alpha * 255.0)
            for i, (value, s) in enumerate(zip(values, subs, strict=True)):
                a_s = _downsample(alpha, s)
                v_s = _downsample(value, s)
                b0, b1 = r0 // s, r0 // s + a_s.shape[0]
                a256[i][b0:b1] = np.rint(a_s * 256.0)
                premul[i][b0:b1] = np.rint(np.minimum(v_s, 255.0 * np.maximum(a_s, 0)) * 256.0)
        inv = [(256 - a).astype(np.uint16) for a in a256]
        opaque = all(bool((a == 256).all()) for a in a256)
        return cls(w, h, a256, inv, premul, opaque)

    def faded(self, opacity: float) -> Sprite:
        """The same sprite at a lower opacity (title card fades)."""
        k = max(0.0, min(1.0, opacity))
        a = [np.rint(p * k).astype(np.uint16) for p in self.a256]
        pre = [(np.rint(pre.astype(np.float32) * k)).astype(np.uint16) for pre in self.premul]
        return Sprite(
            self.width, self.height, a, [(256 - x).astype(np.uint16) for x in a], pre, False
        )


def _blend_into(dst: np.ndarray, inv: np.ndarray, pre: np.ndarray, tmp: np.ndarray) -> None:
    """dst = (dst * (256 - a) + colour * a) >> 8, in place, in 16-bit integers."""
    np.copyto(tmp, dst)
    tmp *= inv
    tmp += pre
    tmp >>= 8
    np.copyto(dst, tmp, casting="unsafe")


class Frame:
    """One frame's planes, reused from frame to frame to avoid allocations."""

    def __init__(self, width: int, height: int, fmt: PixelFormat) -> None:
        self.width, self.height, self.format = width, height, fmt
        subs = list(fmt.subsampling) + ([1] if fmt.has_alpha else [])
        self.subsampling = subs
        shapes = [((height + s - 1) // s, (width + s - 1) // s) for s in subs]
        # YUV planes live back to back in one buffer: exactly FFmpeg's planar layout,
        # so a finished frame goes to the encoder without being joined or copied.
        self.buffer = np.zeros(sum(h * w for h, w in shapes), np.uint8)
        self.planes = []
        offset = 0
        for h, w in shapes:
            self.planes.append(self.buffer[offset : offset + h * w].reshape(h, w))
            offset += h * w
        self._scratch = [np.zeros(p.shape, np.uint16) for p in self.planes]

    def fill(self, codes: tuple[int, ...], y0: int = 0, y1: int | None = None) -> None:
        y1 = self.height if y1 is None else y1
        for plane, s, c in zip(self.planes, self.subsampling, codes, strict=True):
            plane[y0 // s : (y1 + s - 1) // s] = c

    def fill_rect(self, x0: int, y0: int, x1: int, y1: int, codes: tuple[int, ...]) -> None:
        for plane, s, c in zip(self.planes, self.subsampling, codes, strict=True):
            plane[y0 // s : (y1 + s - 1) // s, x0 // s : (x1 + s - 1) // s] = c

    def copy_rows_from(self, src: list[np.ndarray], y0: int) -> None:
        """Copy full-width bands (pre-converted backgrounds, the keyboard) at row y0 (even)."""
        for plane, s, band in zip(self.planes, self.subsampling, src, strict=True):
            plane[y0 // s : y0 // s + band.shape[0]] = band

    def copy_patch(self, src: list[np.ndarray], x: int, y: int, rows: int) -> None:
        """Copy opaque planes (a patch ``rows`` high) to frame position (x, y), both even."""
        for plane, s, patch in zip(self.planes, self.subsampling, src, strict=True):
            h, w = (rows + s - 1) // s, patch.shape[1]
            plane[y // s : y // s + h, x // s : x // s + w] = patch[:h]

    def blend(self, sprite: Sprite, x: int, y: int) -> None:
        """Alpha-blend a sprite with its top-left at (x, y); both even; clipped to the frame."""
        self.blend_region(sprite, x, y, 0, 0, sprite.width, sprite.height)

    def blend_region(
        self, sprite: Sprite, x: int, y: int, sx0: int, sy0: int, sx1: int, sy1: int
    ) -> None:
        """Blend the part [sy0:sy1, sx0:sx1] of a sprite at frame position (x, y) (all even)."""
        # Clip to the frame.
        if x < 0:
            sx0 -= x
            x = 0
        if y < 0:
            sy0 -= y
            y = 0
        sx1 = min(sx1, sx0 + self.width - x)
        sy1 = min(sy1, sy0 + self.height - y)
        if sx1 <= sx0 or sy1 <= sy0:
            return
        for i, s in enumerate(self.subsampling):
            a0, a1 = sx0 // s, (sx1 + s - 1) // s
            b0, b1 = sy0 // s, (sy1 + s - 1) // s
            fx, fy = x // s, y // s
            dst = self.planes[i][fy : fy + (b1 - b0), fx : fx + (a1 - a0)]
            h, w = dst.shape
            inv = sprite.inv256[i][b0 : b0 + h, a0 : a0 + w]
            pre = sprite.premul[i][b0 : b0 + h, a0 : a0 + w]
            _blend_into(dst, inv, pre, self._scratch[i][:h, :w])

    def blend_rows(self, sprite: Sprite, y: int, sy0: int, sy1: int) -> None:
        """Blend full-width rows [sy0, sy1) of a frame-wide sprite at frame row y (even).

        Whole rows are contiguous in memory, which makes this several times faster
        per pixel than blending many small rectangles.
        """
        for i, s in enumerate(self.subsampling):
            b0, b1 = sy0 // s, (sy1 + s - 1) // s
            fy = y // s
            dst = self.planes[i][fy : fy + (b1 - b0)]
            h = dst.shape[0]
            _blend_into(
                dst,
                sprite.inv256[i][b0 : b0 + h],
                sprite.premul[i][b0 : b0 + h],
                self._scratch[i][:h],
            )

    def add_light(
        self, plane: int, flat_index: np.ndarray, delta: np.ndarray, lo: int, hi: int
    ) -> None:
        """Additive light at scattered pixels of one plane (particles), clipped to [lo, hi]."""
        p = self.planes[plane].reshape(-1)
        p[flat_index] = np.clip(p[flat_index].astype(np.int32) + delta, lo, hi).astype(np.uint8)

    def unpremultiply_alpha(self) -> None:
        """For transparent output: turn colours blended over transparent black into straight colours."""
        if not self.format.has_alpha:
            return
        alpha = self.planes[-1]
        offsets = (16, 128, 128) if self.format.is_yuv else (0, 0, 0)
        for i, s in enumerate(self.subsampling[:3]):
            a = alpha if s == 1 else alpha[::s, ::s]
            partial = (a > 0) & (a < 255)
            if not partial.any():
                continue
            plane = self.planes[i]
            v = plane[partial].astype(np.int32) - offsets[i]
            plane[partial] = np.clip(v * 255 // a[partial] + offsets[i], 0, 255).astype(np.uint8)

    def data(self) -> memoryview:
        """The raw frame FFmpeg expects: planar for YUV (no copy), interleaved for RGB(A)."""
        if self.format.is_yuv:
            return memoryview(self.buffer.data)
        return memoryview(np.ascontiguousarray(np.stack(self.planes, axis=-1)).reshape(-1).data)

    def to_rgb_array(self) -> np.ndarray:
        """(H, W, 3|4) uint8 RGB(A) for PNG stills and the preview (RGB formats only)."""
        if self.format.is_yuv:
            raise ValueError("to_rgb_array needs an RGB frame")
        return np.stack(self.planes, axis=-1)
