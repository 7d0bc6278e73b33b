"""Which notes overlap a time window, fast, whatever the song length."""

from __future__ import annotations

import numpy as np

# Notes shorter than this are found by a binary search on start times; the few longer
# ones (held chords, drones) are checked directly, so one 10-minute note does not
# force every query to scan the whole song.
_SHORT = 8.0


class IntervalIndex:
    def __init__(self, starts: np.ndarray, ends: np.ndarray) -> None:
        self.starts = np.asarray(starts, np.float64)
        self.ends = np.asarray(ends, np.float64)
        order = np.argsort(self.starts, kind="stable")
        dur = self.ends - self.starts
        short = order[dur[order] <= _SHORT]
        self._short = short
        self._short_starts = self.starts[short]
        self._long = order[dur[order] > _SHORT]

    def overlapping(self, t0: float, t1: float) -> np.ndarray:
        """Indices of intervals with start < t1 and end > t0, in start order."""
        lo = np.searchsorted(self._short_starts, t0 - _SHORT, side="left")
        hi = np.searchsorted(self._short_starts, t1, side="left")
        cand = self._short[lo:hi]
        cand = cand[self.ends[cand] > t0]
        if self._long.size:
            lng = self._long[(self.starts[self._long] < t1) & (self.ends[self._long] > t0)]
            if lng.size:
                cand = np.concatenate([cand, lng])
                cand = cand[np.argsort(self.starts[cand], kind="stable")]
        return cand
