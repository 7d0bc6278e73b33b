"""Reference frames: a fixed song at fixed moments, compared with tolerance.

The PNGs in ``reference/`` were looked at and approved by a person. When the look
changes on purpose, regenerate them with ``python -m tests.engine.reference`` and
look at every one before committing.
"""

from __future__ import annotations

from pathlib import Path

from notefall.common.engine import FrameRenderer, PixelFormat
from notefall.common.settings import RenderSettings

from tests.support.songs import make_song

HERE = Path(__file__).with_name("reference")


def reference_song():
    right = [
        (
            0.5 + i * 0.25,
            0.5 + i * 0.25 + 0.22,
            72 + (0, 4, 7, 12, 7, 4)[i % 6],
            60 + 8 * (i % 6),
            0,
            0,
        )
        for i in range(24)
    ]
    left = [
        (0.5 + i * 1.0, 0.5 + i * 1.0 + 0.9, (48, 53, 55, 48, 45, 50)[i % 6], 90, 1, 0)
        for i in range(6)
    ]
    return make_song(right + left, pedals=[(0.5, 2.4), (2.5, 4.4), (4.5, 6.5)])


CASES = {
    "aurora_landscape": (
        {"resolution": "480x270", "title": "Reference", "artist": "Notefall"},
        0.6,
    ),
    "aurora_playing": ({"resolution": "480x270", "labels": "both"}, 3.1),
    "classic_vertical": ({"resolution": "270x480", "vertical": True, "theme": "classic"}, 3.4),
    "paper_pitch": ({"resolution": "480x270", "theme": "paper", "keyboard_range": "full"}, 4.2),
}


def render_case(name: str):
    data, at = CASES[name]
    r = FrameRenderer(reference_song(), RenderSettings(**data), pixel_format=PixelFormat.RGB)
    return r.still_image(at)


if __name__ == "__main__":
    HERE.mkdir(exist_ok=True)
    for case in CASES:
        render_case(case).save(HERE / f"{case}.png")
        print(HERE / f"{case}.png")
