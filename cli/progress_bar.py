"""The terminal progress bar for ``notefall render``: tqdm on a terminal, silent otherwise."""

from __future__ import annotations

import sys
from typing import TextIO

from notefall.common.progress import ProgressEvent
from tqdm import tqdm


class ProgressBar:
    def __init__(self, stream: TextIO = sys.stderr, enabled: bool = True) -> None:
        self.stream = stream
        self.enabled = enabled
        self.interactive = enabled and stream.isatty()
        self._bar: tqdm | None = None

    def __call__(self, ev: ProgressEvent) -> None:
        if not self.enabled:
            return
        if not self.interactive:
            # Logs and pipes get only the final line (or the one-line error): stage lines
            # would break the promise that bad input costs exactly one line on stderr.
            return
        if self._bar is None:
            self._bar = tqdm(
                total=100,
                file=self.stream,
                unit="%",
                leave=False,
                bar_format="{desc:<30} {percentage:3.0f}%|{bar}|",
            )
        eta = (
            ""
            if ev.eta_seconds is None
            else f"  ETA {int(ev.eta_seconds // 60)}:{int(ev.eta_seconds % 60):02d}"
        )
        self._bar.set_description_str(f"{ev.stage.value}{eta}", refresh=False)
        self._bar.n = round(ev.overall_percent, 1)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
