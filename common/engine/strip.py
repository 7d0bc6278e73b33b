"""Falling notes as a scrolling strip, drawn in chunks once and cropped for every frame.

The strip is the whole song laid out vertically (time runs upwards) at the render's
scale. It is drawn lazily, one screen-high chunk at a time, kept in a small LRU, and
each chunk knows the disjoint rectangles where it has anything drawn, so a frame only
blends those regions over the background. Memory stays bounded for any song length.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from ..song import is_black_key, note_name
from .draw import RGB, box_sdf, even_ceil, even_floor, hex_rgb, mix, text_mask
from .index import IntervalIndex
from .layout import FrameLayout, KeyboardLayout
from .planes import Frame, PixelFormat, Sprite, composite_over_boxes
from .style import Style

_CHUNKS_KEPT = 3


@dataclass(slots=True)
class Chunk:
    sprite: Sprite | None  # notes over transparency (exact path)
    rows: list[tuple[int, int]]  # local, even-aligned runs of rows with anything drawn
    planes: list[np.ndarray] | None = None  # notes already over the background (fast path)


class NoteStrip:
    def __init__(
        self,
        notes: np.ndarray,
        color_keys: np.ndarray,
        colors: list[RGB],
        keys: KeyboardLayout,
        layout: FrameLayout,
        style: Style,
        fmt: PixelFormat,
        pixels_per_second: float,
        bar_times: np.ndarray,
        backdrop: tuple[list[np.ndarray], list[np.ndarray]] | None = None,
    ) -> None:
        self.notes, self.color_keys, self.colors = notes, color_keys, colors
        self.keys, self.layout, self.style, self.format = keys, layout, style, fmt
        self.k = pixels_per_second  # strip pixels per song second
        self.height = layout.hit_y  # visible note-area height
        self.chunk_h = even_ceil(max(self.height, 64))
        self.bar_times = bar_times
        self.index = IntervalIndex(notes["start"], notes["end"])
        s = layout.scale
        self.margin = max(2.0, 9.0 * s) if style.glow else 2.0
        self.radius_share = style.theme.note_radius
        self.guide = style.theme.guide_color
        # With a separable background the chunks are drawn over its top row once and a
        # frame is row copies plus one per-row offset: no per-frame blending at all.
        self.backdrop = backdrop
        self._cache: OrderedDict[int, Chunk] = OrderedDict()
        self.chunks_drawn = 0

    # Time ↔ strip rows ----------------------------------------------------------------
    def hit_row(self, song_time: float) -> int:
        """Strip row at the hit line for ``song_time``, on the even grid 4:2:0 needs."""
        return -2 * int(round(song_time * self.k / 2.0))

    def compose(self, frame: Frame, song_time: float) -> None:
        """Draw the notes visible at ``song_time`` into rows [0, hit_y).

        Fast path: the whole note area comes from the chunks (background included).
        Exact path: blends over what is already in those rows.
        """
        g0 = self.hit_row(song_time) - self.height
        g1 = g0 + self.height
        for c in range(math.floor(g0 / self.chunk_h), math.floor((g1 - 1) / self.chunk_h) + 1):
            chunk = self._chunk(c)
            base = c * self.chunk_h
            v0, v1 = max(0, g0 - base), min(self.chunk_h, g1 - base)
            if chunk.planes is not None:
                frame.copy_rows_from(
                    [
                        p[v0 // s : v1 // s]
                        for p, s in zip(chunk.planes, frame.subsampling, strict=False)
                    ],
                    base + v0 - g0,
                )
                continue
            assert chunk.sprite is not None
            for y0, y1 in chunk.rows:
                a, b = max(y0, v0), min(y1, v1)
                if a < b:
                    frame.blend_rows(chunk.sprite, base + a - g0, a, b)
        if self.backdrop is not None:
            for plane, s, delta in zip(
                frame.planes, frame.subsampling, self.backdrop[1], strict=False
            ):
                rows = plane[: self.height // s]
                if delta.dtype == np.uint8:
                    np.add(rows, delta, out=rows, casting="unsafe")  # modulo 256 by design
                else:
                    rows[...] = np.clip(rows + delta, 0, 255)

    # Drawing ----------------------------------------------------------------------------
    def _chunk(self, c: int) -> Chunk:
        hit = self._cache.get(c)
        if hit is not None:
            self._cache.move_to_end(c)
            return hit
        chunk = self._draw_chunk(c)
        self._cache[c] = chunk
        if len(self._cache) > _CHUNKS_KEPT:
            self._cache.popitem(last=False)
        self.chunks_drawn += 1
        return chunk

    def _draw_chunk(self, c: int) -> Chunk:
        r0 = c * self.chunk_h
        ch, w = self.chunk_h, self.layout.width
        buf = np.zeros((ch, w, 4), np.float32)  # premultiplied
        # Rows r0..r0+ch show song times from -r0/k down to -(r0+ch)/k.
        t_hi = -r0 / self.k + self.margin / self.k
        t_lo = -(r0 + ch) / self.k - self.margin / self.k
        boxes: list[tuple[int, int, int, int]] = []
        self._draw_bars(buf, r0, t_lo, t_hi, boxes)
        found = self.index.overlapping(t_lo, t_hi).tolist()
        # White-key lanes first so black-key notes sit on top where lanes overlap.
        for i in sorted(found, key=lambda i: (is_black_key(int(self.notes["pitch"][i])), i)):
            box = self._draw_note(buf, r0, int(i))
            if box is not None:
                boxes.append(box)
        rows = _row_runs(buf[..., 3].max(axis=1) > 0)
        if self.backdrop is not None:
            planes = composite_over_boxes(buf, boxes, self.backdrop[0], self.format)
            return Chunk(None, rows, planes)
        return Chunk(Sprite.from_premultiplied(buf, self.format, rows), rows)

    def _draw_bars(
        self,
        buf: np.ndarray,
        r0: int,
        t_lo: float,
        t_hi: float,
        boxes: list[tuple[int, int, int, int]],
    ) -> None:
        opacity = self.style.theme.guide_opacity * 1.6
        if opacity <= 0 or self.bar_times.size == 0:
            return
        lo = np.searchsorted(self.bar_times, t_lo)
        hi = np.searchsorted(self.bar_times, t_hi)
        color = np.asarray(hex_rgb(self.guide), np.float32)
        thick = max(1.0, self.layout.scale * 1.5)
        ch = buf.shape[0]
        for t in self.bar_times[lo:hi]:
            y = -float(t) * self.k - r0
            y0, y1 = max(0, even_floor(y - thick)), min(ch, even_ceil(y + thick))
            if y0 >= y1:
                continue
            ys = np.arange(y0, y1, dtype=np.float32) + 0.5
            a = np.clip(thick / 2 + 0.5 - np.abs(ys - y), 0, 1)[:, None] * opacity
            region = buf[y0:y1]
            region[..., :3] = color * a[..., None] + region[..., :3] * (1 - a[..., None])
            region[..., 3] = a + region[..., 3] * (1 - a)
            boxes.append((0, y0, buf.shape[1], y1))

    def _draw_note(self, buf: np.ndarray, r0: int, i: int) -> tuple[int, int, int, int] | None:
        """Draw note ``i`` into the chunk; returns its even-aligned box (x0, y0, x1, y1)."""
        note = self.notes[i]
        pitch = int(note["pitch"])
        if not self.keys.contains(pitch):
            return None
        ch, w = buf.shape[:2]
        kx0, kx1 = float(self.keys.key_x0[pitch]), float(self.keys.key_x1[pitch])
        lane = kx1 - kx0
        gap = max(1.0, lane * (0.06 if is_black_key(pitch) else 0.10))
        x0, x1 = kx0 + gap, kx1 - gap
        y_top = -float(note["end"]) * self.k - r0 + 1.0
        y_bot = -float(note["start"]) * self.k - r0 - 1.0
        if y_bot - y_top < 2.0:  # very short notes still show as a sliver
            y_top = y_bot - 2.0
        m = self.margin
        bx0, bx1 = max(0, even_floor(x0 - m)), min(w, even_ceil(x1 + m))
        by0, by1 = max(0, even_floor(y_top - m)), min(ch, even_ceil(y_bot + m))
        if bx0 >= bx1 or by0 >= by1:
            return None
        radius = min(lane * self.radius_share, 14.0 * self.layout.scale + 2)
        radius = min(radius, (x1 - x0) / 2, (y_bot - y_top) / 2)
        color = np.asarray(self.colors[int(self.color_keys[i])], np.float32)
        rim_color = np.asarray(
            mix(self.colors[int(self.color_keys[i])], (1.0, 1.0, 1.0), 0.6), np.float32
        )
        # Away from the rounded ends every row has the same horizontal profile, so the
        # long middle of a note is drawn from a 1-D distance; only the caps need 2-D.
        cap = radius + m + 2
        mid0 = min(max(by0, int(np.ceil(y_top + cap))), by1)
        mid1 = max(min(by1, int(np.floor(y_bot - cap))), mid0)
        cx, hx = (x0 + x1) / 2, (x1 - x0) / 2
        xs = np.arange(bx0, bx1, dtype=np.float32) + 0.5
        for r_a, r_b, flat in ((by0, mid0, False), (mid0, mid1, True), (mid1, by1, False)):
            if r_a >= r_b:
                continue
            ys = np.arange(r_a, r_b, dtype=np.float32)[:, None] + 0.5
            if flat:
                sdf = (np.abs(xs - cx) - hx)[None, :]
            else:
                sdf = box_sdf(xs[None, :], ys, x0, y_top, x1, y_bot, radius)
            region = buf[r_a:r_b, bx0:bx1]
            cov = np.clip(0.5 - sdf, 0.0, 1.0)[..., None]  # (h|1, w, 1)
            # A bright rim one and a half pixels wide gives the glassy edge.
            rim = (np.clip(1.0 - np.abs(sdf + 1.0) / 1.2, 0, 1) * 0.55)[..., None]
            # Body: a little darker at the top, brightest where it meets the keys.
            t = (ys - y_top) / max(y_bot - y_top, 1.0)
            body = np.clip(color * (0.78 + 0.30 * np.clip(t, 0, 1))[..., None], 0, 1)  # (h, 1, 3)
            # One premultiplied source per section (glow under body under rim), so
            # each section costs a single composite; in the middle every factor but
            # the body shade is a 1-D profile that broadcasts.
            edge = rim_color * (rim * cov)  # (h|1, w, 3)
            alpha = cov
            if self.style.glow:
                glow = (
                    np.where(sdf > 0, np.exp(-np.maximum(sdf, 0) * (3.0 / m)), 0.0)[..., None]
                    * 0.42
                )
                edge = edge + color * (glow * (1 - cov))
                alpha = cov + glow * (1 - cov)
            src = body * ((1 - rim) * cov) + edge
            region[..., :3] *= 1 - alpha
            region[..., :3] += src
            region[..., 3:4] *= 1 - alpha
            region[..., 3:4] += alpha
        if self.style.note_labels:
            self._label(buf[by0:by1, bx0:bx1], pitch, x0 - bx0, x1 - bx0, y_bot - by0, y_top - by0)
        return bx0, by0, bx1, by1

    def _label(
        self, region: np.ndarray, pitch: int, x0: float, x1: float, y_bot: float, y_top: float
    ) -> None:
        width = x1 - x0
        size = max(7, int(width * 0.5))
        mask = text_mask(note_name(pitch, octave=width > size * 1.6, ascii_only=True), size)
        mh, mw = mask.shape
        if mw > width or mh + 4 > y_bot - y_top:
            return
        cx = int(round((x0 + x1) / 2 - mw / 2))
        cy = int(round(y_bot - mh - max(2.0, width * 0.15)))
        if cx < 0 or cy < 0 or cy + mh > region.shape[0] or cx + mw > region.shape[1]:
            return
        sub = region[cy : cy + mh, cx : cx + mw]
        ink = np.asarray((0.04, 0.04, 0.08), np.float32)
        a = mask * 0.8
        sub[..., :3] = ink * a[..., None] + sub[..., :3] * (1 - a[..., None])


def _row_runs(used: np.ndarray) -> list[tuple[int, int]]:
    """Even-aligned [start, end) runs of True rows."""
    pairs = used.reshape(-1, 2).any(axis=1) if used.size % 2 == 0 else used
    step = 2 if used.size % 2 == 0 else 1
    edges = np.flatnonzero(np.diff(np.concatenate([[0], pairs.astype(np.int8), [0]])))
    return [(int(a) * step, int(b) * step) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def bar_times(song_beats: np.ndarray, numerators: list[tuple[float, int, int]]) -> np.ndarray:
    """Times of bar lines from quarter-note beat times and (time, numerator, denominator)."""
    if song_beats.size == 0:
        return song_beats
    sigs = sorted(numerators) or [(0.0, 4, 4)]
    out: list[float] = []
    acc = 0.0
    si = 0
    for t in song_beats:
        while si + 1 < len(sigs) and sigs[si + 1][0] <= t + 1e-9:
            si += 1
            acc = 0.0  # a new time signature starts a new bar
        _, num, den = sigs[si]
        bar_len = num * 4.0 / den
        if acc % bar_len < 1e-6 or bar_len - (acc % bar_len) < 1e-6:
            out.append(float(t))
        acc += 1.0
    return np.asarray(out, np.float64)
