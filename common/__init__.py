"""Notefall's pure library: MIDI → Song, RenderSettings, the frame engine, audio and encoding.

Imports neither ``notefall.server`` nor ``notefall.desktop``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("notefall")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+source"
