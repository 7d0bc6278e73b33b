"""Light: the hit line, glows above pressed keys and deterministic particles.

Particles are a pure function of (note, time): particle ``j`` of note ``i`` is born
``j / RATE`` seconds after the note starts and its motion comes from a hash of
(i, j), so any frame can be drawn on its own, in any order, on any worker.
"""

from __future__ import annotations

import numpy as np

from .draw import RGB, even_floor, gaussian_blob, hex_rgb, mix
from .layout import FrameLayout
from .planes import Frame, PixelFormat, Sprite

RATE = 26.0  # particles per second per held key
LIFE = 0.95  # seconds a particle lives
EMIT_FOR = 1.6  # a long note stops emitting after this many seconds
MAX_PARTICLES = 120  # per frame, newest first: bounded cost in dense passages


def _hash(i: np.ndarray, j: np.ndarray, seed: float) -> np.ndarray:
    """Cheap stateless hash to [0, 1): the same (note, particle) always moves the same way."""
    x = np.sin(i * 12.9898 + j * 78.233 + seed * 37.719) * 43758.5453
    return x - np.floor(x)


def _window(h: int, w: int) -> np.ndarray:
    """1 at the foot centre, falling smoothly to exactly 0 at the sprite's edges."""
    xs = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
    ys = np.linspace(1, 0, h, dtype=np.float32)[:, None]  # 0 at the hit line (bottom row)
    return np.clip(1 - xs**2, 0, 1) * np.clip(1 - ys**2, 0, 1)


class HitLine:
    def __init__(self, layout: FrameLayout, fmt: PixelFormat, color: str, glow: bool) -> None:
        s = layout.scale
        h = max(8, even_floor(26 * s)) if glow else max(4, even_floor(4 * s))
        w = layout.width
        ys = np.arange(h, dtype=np.float32) + 0.5
        line_h = max(1.5, 2.2 * s)
        dist = (h - ys) / line_h  # 0 at the keyboard edge
        core = np.clip(1.2 - dist, 0, 1)
        halo = np.exp(-np.maximum(dist - 1, 0) * 0.35) * 0.55 if glow else np.zeros_like(core)
        alpha = np.clip(core + halo * (1 - core), 0, 1)
        rgba = np.zeros((h, w, 4), np.float32)
        rgba[..., :3] = hex_rgb(color)
        rgba[..., 3] = alpha[:, None]
        self.sprite = Sprite.from_rgba(rgba, fmt)
        self.y = layout.hit_y - h

    def draw(self, frame: Frame) -> None:
        frame.blend(self.sprite, 0, self.y)


class KeyGlow:
    """A soft column of light rising from each pressed key."""

    def __init__(self, layout: FrameLayout, fmt: PixelFormat, white_width: float) -> None:
        self.layout, self.format = layout, fmt
        self.w = max(8, even_floor(white_width * 2.6))
        self.h = max(8, even_floor(min(layout.hit_y * 0.16, 130 * layout.scale)))
        self._cache: dict[RGB, Sprite] = {}

    def sprite(self, color: RGB) -> Sprite:
        hit = self._cache.get(color)
        if hit is None:
            h, w = self.h, self.w
            # Half an ellipse standing on the hit line, with a hot core at its foot.
            blob = gaussian_blob(2 * h, w, w / 5.0, h / 2.2)[h:][::-1] * _window(h, w)
            core = gaussian_blob(2 * h, w, w / 14.0, h / 9.0)[h:][::-1]
            rgba = np.zeros((h, w, 4), np.float32)
            light = np.asarray(mix(color, (1.0, 1.0, 1.0), 0.25), np.float32)
            white = np.asarray(mix(color, (1.0, 1.0, 1.0), 0.85), np.float32)
            k = core[..., None]
            rgba[..., :3] = light * (1 - k) + white * k
            rgba[..., 3] = np.clip(blob * 0.5 + core * 0.9, 0, 1)
            hit = Sprite.from_rgba(rgba, self.format)
            self._cache[color] = hit
        return hit

    def draw(self, frame: Frame, center_x: float, color: RGB) -> None:
        frame.blend(
            self.sprite(color), even_floor(center_x - self.w / 2), self.layout.hit_y - self.h
        )


class Particles:
    """Sparks rising from held keys, splatted as additive light in one vectorised pass.

    Blending a hundred tiny sprites one by one costs more in per-call overhead than in
    pixels; instead every particle's footprint is gathered into one index array per
    plane and added at once.
    """

    def __init__(self, layout: FrameLayout, fmt: PixelFormat, white_width: float) -> None:
        self.layout, self.format = layout, fmt
        s = layout.scale
        self.sigma = max(
            1.2, 2.2 * s
        )  # gaussian sigma in pixels; brightness varies instead of size
        self.spread = white_width * 0.45
        self.speed = (130 * s, 420 * s)
        self.drag = 260 * s
        subs = list(fmt.subsampling) + ([1] if fmt.has_alpha else [])
        self.subsampling = subs
        # Per plane: (dy, dx, weight) of one spark's footprint at that plane's resolution.
        self.footprints = [self._footprint(self.sigma / sub) for sub in subs]
        if fmt.is_yuv:
            self.limits = [(16, 235), (16, 240), (16, 240)]
        else:
            self.limits = [(0, 255)] * 3
        if fmt.has_alpha:
            self.limits.append((0, 255))

    @staticmethod
    def _footprint(sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        r = max(1, int(np.ceil(sigma * 2.5)))
        dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
        w = np.exp(-0.5 * (dx**2 + dy**2) / sigma**2)
        keep = w > 0.03
        return dy[keep].astype(np.int64), dx[keep].astype(np.int64), w[keep].astype(np.float32)

    def draw(
        self,
        frame: Frame,
        video_time: float,
        note_ids: np.ndarray,
        starts: np.ndarray,
        ends: np.ndarray,
        centers: np.ndarray,
        colors: np.ndarray,
    ) -> int:
        """Draw particles of the given notes (video-time starts/ends, RGB colours 0..1, (n, 3)).

        Returns how many particles were drawn.
        """
        if note_ids.size == 0:
            return 0
        emit_end = np.minimum(ends, starts + EMIT_FOR)
        first = np.maximum(0, np.ceil((video_time - LIFE - starts) * RATE)).astype(np.int64)
        last = np.floor((np.minimum(video_time, emit_end) - starts) * RATE).astype(np.int64)
        counts = np.maximum(0, last - first + 1)
        total = int(counts.sum())
        if total == 0:
            return 0
        owner = np.repeat(np.arange(note_ids.size), counts)
        j = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts) + first[owner]
        ids = note_ids[owner].astype(np.float64)
        age = video_time - (starts[owner] + j / RATE)
        if total > MAX_PARTICLES:
            keep = np.argpartition(age, MAX_PARTICLES)[:MAX_PARTICLES]
            owner, j, ids, age = owner[keep], j[keep], ids[keep], age[keep]
        u1, u2, u3, u4 = (_hash(ids, j, s) for s in (1.0, 2.0, 3.0, 4.0))
        vy = self.speed[0] + (self.speed[1] - self.speed[0]) * u2
        x = (
            centers[owner]
            + (u1 - 0.5) * 2 * self.spread
            + (u3 - 0.5) * 90 * self.layout.scale * age
        )
        y = self.layout.hit_y - vy * age + 0.5 * self.drag * age * age
        life = LIFE * (0.6 + 0.4 * u4)
        fade = (np.clip(1.0 - age / life, 0, 1) ** 1.5).astype(np.float32)
        alive = (fade > 0.02) & (y < self.layout.hit_y)
        if not alive.any():
            return 0
        x, y, fade, owner, u3 = x[alive], y[alive], fade[alive], owner[alive], u3[alive]
        light = np.asarray(colors, np.float32)[owner] * 0.45 + 0.55  # whitened sparks
        strength = fade * (0.6 + 0.7 * u3.astype(np.float32))
        deltas = _light_deltas(light, self.format) * strength[:, None]
        for plane, sub in enumerate(self.subsampling):
            width = frame.planes[plane].shape[1]
            dy, dx, w = self.footprints[plane]
            py = (y / sub).astype(np.int64)[:, None] + dy[None, :]
            px = (x / sub).astype(np.int64)[:, None] + dx[None, :]
            ok = (py >= 0) & (py < self.layout.hit_y // sub) & (px >= 0) & (px < width)
            if plane < deltas.shape[1]:
                contrib = w[None, :] * deltas[:, plane][:, None]
            else:  # the alpha plane: sparks are opaque where they are bright
                contrib = w[None, :] * (255.0 * np.minimum(strength, 1.0))[:, None]
            # Where sparks overlap the last one wins instead of summing: invisible at
            # this size, and it saves sorting every footprint every frame.
            lo, hi = self.limits[plane]
            frame.add_light(plane, (py * width + px)[ok], contrib[ok].astype(np.int32), lo, hi)
        return int(x.size)


def _light_deltas(rgb: np.ndarray, fmt: PixelFormat) -> np.ndarray:
    """Code-value change per plane when light of colour ``rgb`` (n, 3) is added."""
    from .planes import _YUV, _YUV_SCALE

    if fmt.is_yuv:
        return (rgb @ _YUV.T) * _YUV_SCALE[None, :]
    return rgb * 255.0
