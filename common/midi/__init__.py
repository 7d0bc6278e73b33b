"""MIDI input: ``read_song`` turns a Standard MIDI File into a ``Song``; ``describe``
and ``format_probe`` summarise one for ``notefall probe``."""

from .gm import GM_PROGRAM_NAMES, gm_program_name
from .limits import DEFAULT_LIMITS, MidiLimits
from .probe import describe, format_probe
from .reader import MIN_NOTE_SECONDS, read_song

__all__ = [
    "DEFAULT_LIMITS",
    "GM_PROGRAM_NAMES",
    "MIN_NOTE_SECONDS",
    "MidiLimits",
    "describe",
    "format_probe",
    "gm_program_name",
    "read_song",
]
