"""The visualization engine: (song, settings, time) → frame."""

from .frame import FrameRenderer
from .planes import Frame, PixelFormat
from .themes import THEMES, Theme, get_theme

__all__ = ["THEMES", "Frame", "FrameRenderer", "PixelFormat", "Theme", "get_theme"]
