"""Where everything sits on the frame: keyboard keys, lanes, the hit line."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..song import Song, is_black_key

# Black keys sit off-centre on a real piano (groups of 2 and 3); offsets as a share of
# a white key width, relative to the boundary between the two white keys around them.
_BLACK_OFFSET = {1: -0.10, 3: 0.10, 6: -0.13, 8: 0.0, 10: 0.13}
BLACK_WIDTH = 0.58  # share of a white key
MIN_KEYS_SPAN = 24  # fit never shows fewer than two octaves


def _white_at_or_below(p: int) -> int:
    return p - 1 if is_black_key(p) else p


def _white_at_or_above(p: int) -> int:
    return p + 1 if is_black_key(p) else p


def fit_range(song: Song, drums_shown: bool) -> tuple[int, int]:
    """A keyboard range that holds every drawn note with a little air on both sides."""
    notes = song.notes if drums_shown else song.pitched_notes()
    if notes.shape[0] == 0:
        return 48, 84
    lo, hi = int(notes["pitch"].min()), int(notes["pitch"].max())
    if hi - lo < MIN_KEYS_SPAN:
        pad = (MIN_KEYS_SPAN - (hi - lo) + 1) // 2
        lo, hi = lo - pad, hi + pad
    # One white key of air on each side, so the outermost notes never touch the edge
    # and the music sits in the middle of the keyboard.
    lo = _white_at_or_below(_white_at_or_below(lo) - 1)
    hi = _white_at_or_above(_white_at_or_above(hi) + 1)
    # Stay on the real piano when the music does.
    if lo < 21 <= int(notes["pitch"].min()):
        lo = 21
    if hi > 108 >= int(notes["pitch"].max()):
        hi = 108
    return max(0, lo), min(127, hi)


@dataclass(frozen=True, slots=True)
class KeyboardLayout:
    low: int
    high: int
    width: int
    white_width: float
    key_x0: np.ndarray  # float, per pitch 0..127 (NaN outside the range)
    key_x1: np.ndarray

    @classmethod
    def build(cls, low: int, high: int, width: int) -> KeyboardLayout:
        low, high = _white_at_or_below(low), _white_at_or_above(high)
        whites = [p for p in range(low, high + 1) if not is_black_key(p)]
        ww = width / len(whites)
        x0 = np.full(128, np.nan)
        x1 = np.full(128, np.nan)
        for i, p in enumerate(whites):
            x0[p], x1[p] = i * ww, (i + 1) * ww
        bw = ww * BLACK_WIDTH
        for p in range(low, high + 1):
            if is_black_key(p):
                boundary = x1[p - 1]
                c = boundary + _BLACK_OFFSET[p % 12] * ww
                x0[p], x1[p] = c - bw / 2, c + bw / 2
        return cls(low, high, width, ww, x0, x1)

    def contains(self, pitch: int) -> bool:
        return self.low <= pitch <= self.high

    def pitches(self) -> range:
        return range(self.low, self.high + 1)


@dataclass(frozen=True, slots=True)
class FrameLayout:
    width: int
    height: int
    hit_y: int  # first row of the keyboard (even); notes fall in rows [top, hit_y)
    top: int  # first row of the note area (below the progress bar)
    keyboard_height: int
    felt_height: int
    black_height: int
    progress_height: int
    scale: float  # 1.0 at 1080p-equivalent short side

    @classmethod
    def build(
        cls, width: int, height: int, keys: KeyboardLayout, progress_bar: bool
    ) -> FrameLayout:
        short = min(width, height)
        s = short / 1080.0
        kh = keys.white_width * 5.6
        kh = min(max(kh, height * 0.10), height * (0.2 if width >= height else 0.14))
        kh_i = int(round(kh / 2)) * 2
        progress = max(2, int(round(5 * s / 2)) * 2) if progress_bar else 0
        felt = max(2, int(round(kh_i * 0.045 / 2)) * 2)
        return cls(
            width=width,
            height=height,
            hit_y=height - kh_i,
            top=progress,
            keyboard_height=kh_i,
            felt_height=felt,
            black_height=int(round((kh_i - felt) * 0.63)),
            progress_height=progress,
            scale=s,
        )
