"""Build ``Song`` objects directly (no MIDI file) for engine tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from notefall.common.song import NOTE_DTYPE, PEDAL_DTYPE, Song, TempoChange, TrackInfo

NoteSpec = (
    tuple[float, float, int]
    | tuple[float, float, int, int]
    | tuple[float, float, int, int, int, int]
)


def make_song(
    notes: Sequence[NoteSpec],
    *,
    pedals: Sequence[tuple[float, float]] = (),
    bpm: float = 120.0,
    title: str = "Test song",
) -> Song:
    """Notes as (start, end, pitch[, velocity[, track, channel]]) in seconds."""
    arr = np.zeros(len(notes), NOTE_DTYPE)
    for i, spec in enumerate(notes):
        start, end, pitch = spec[0], spec[1], spec[2]
        vel = spec[3] if len(spec) > 3 else 100
        track = spec[4] if len(spec) > 4 else 0
        channel = spec[5] if len(spec) > 5 else 0
        arr[i] = (start, end, end, pitch, vel, channel, track)
    ped = np.zeros(len(pedals), PEDAL_DTYPE)
    for i, (a, b) in enumerate(pedals):
        ped[i] = (a, b, 0)
    # A note released while the pedal is down keeps sounding until the pedal lifts.
    for i in range(arr.shape[0]):
        for a, b in pedals:
            if a <= arr["end"][i] < b:
                arr["sound_end"][i] = b
    arr = arr[np.lexsort((arr["pitch"], arr["start"]))]
    tracks = tuple(
        TrackInfo(
            int(t),
            f"Track {t}",
            "Acoustic Grand Piano",
            0,
            tuple(sorted({int(c) for c in arr["channel"][arr["track"] == t]})),
            int((arr["track"] == t).sum()),
        )
        for t in np.unique(arr["track"])
    )
    duration = float(max(arr["sound_end"].max(), arr["end"].max())) if len(notes) else 0.0
    return Song(
        notes=arr,
        pedals=ped,
        tracks=tracks,
        tempo_changes=(TempoChange(0.0, bpm),),
        title=title,
        duration=duration,
    )
