"""The app's icons (SVG, drawn for Notefall) and a loader that caches them."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtGui import QIcon

HERE = Path(__file__).resolve().parent


def icon_path(name: str) -> Path:
    path = HERE / f"{name}.svg"
    if not path.is_file():
        raise FileNotFoundError(f"No icon named {name!r} in {HERE}")
    return path


@cache
def icon(name: str) -> QIcon:
    return QIcon(str(icon_path(name)))
