"""Limits that keep a hostile or absurd MIDI file ("MIDI bomb") from eating the machine."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MidiLimits:
    """Upper bounds checked while reading; exceeding one raises ``LimitExceeded``.

    ``max_events`` bounds memory during the scan: every channel event costs about
    16 bytes of scratch space before notes are paired, so 12 million events stay
    under ~200 MB however the file is built. ``max_notes`` is what the renderer
    can draw in reasonable time; ``max_seconds`` stops a tiny file that claims days
    of music (huge delta times, very slow tempos).
    """

    max_file_bytes: int = 64 * 1024 * 1024
    max_events: int = 12_000_000
    max_notes: int = 2_000_000
    max_seconds: float = 2 * 60 * 60
    max_tracks: int = 10_000
    # Tempo, time-signature and name events become Python objects, so they get a
    # much smaller budget than channel events (real files have a few hundred).
    max_meta_events: int = 200_000


DEFAULT_LIMITS = MidiLimits()
