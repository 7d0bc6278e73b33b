"""Build small MIDI files in tests.

High level (written with mido, so independent of Notefall's reader)::

    data = make_midi(
        notes=[(0, 1, 60, 100, 0), (1, 0.5, 64, 90, 0)],  # (start, length, pitch, vel, channel)
        tempo_map=[(0, 120), (4, 60)],                     # (beat, bpm)
        pedal=[(0, 2)],                                    # (beat down, beat up[, channel])
    )
    song = read_song(data)

Positions are in beats (quarter notes); they become ``round(beat * ppq)`` ticks.
A note may carry a sixth element, its track number (1 = first note track; type 1
files get a conductor track 0 holding tempo, time signature and title).

Low level, for byte-exact tests (running status, broken lengths, ...)::

    smf(track(b"\\x00\\x90\\x3c\\x40", b"\\x60\\x3c\\x00"), division=96)

``track`` joins event bytes and appends End-of-Track unless ``end=False``;
``smf`` prepends the header and the MTrk chunk headers with correct lengths.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import mido

Note = tuple[float, float, int, int, int] | tuple[float, float, int, int, int, int]

# Order of simultaneous events: releases before presses, so a key struck again at
# the very tick it was released stays two notes.
_ORDER = {"program_change": 0, "note_off": 1, "control_change": 2, "pitchwheel": 2, "note_on": 3}


def make_midi(
    notes: Iterable[Sequence[float]] = (),
    *,
    tempo_map: Iterable[tuple[float, float]] = ((0, 120),),
    ppq: int = 480,
    pedal: Iterable[Sequence[float]] = (),
    type: int = 1,  # mirrors the SMF term
    title: str | None = None,
    track_names: Sequence[str] = (),
    programs: Mapping[int, int] | None = None,
    time_signature: tuple[int, int] | None = (4, 4),
    smpte: tuple[int, int] | None = None,
    extra: Iterable[tuple[float, int, mido.Message | mido.MetaMessage]] = (),
    note_off_velocity_zero: bool = False,
) -> bytes:
    """Return the bytes of a MIDI file.

    ``programs`` maps channel → program, sent at beat 0 on the first track whose
    notes use that channel (track 1 if none).
    ``smpte=(fps, ticks_per_frame)`` writes SMPTE time division instead of ``ppq``
    (fps 24, 25, 29 for 29.97, or 30); positions are still ``beat * ppq`` ticks.
    ``extra`` adds arbitrary messages as ``(beat, track, message)``.
    ``note_off_velocity_zero`` writes releases as note-on with velocity 0.
    """
    if type not in (0, 1):
        raise ValueError("make_midi writes type 0 or 1; use smf() for anything else")
    events: dict[int, list[tuple[int, int, Any]]] = {0: []}
    note_list = [tuple(n) for n in notes]

    def add(track: int, beat: float, msg: Any) -> None:
        kind = 0 if msg.is_meta else _ORDER.get(msg.type, 2)
        events.setdefault(track, []).append((round(beat * ppq), kind, msg))

    for beat, bpm in tempo_map:
        add(0, beat, mido.MetaMessage("set_tempo", tempo=round(60_000_000 / bpm)))
    if time_signature:
        num, den = time_signature
        add(0, 0, mido.MetaMessage("time_signature", numerator=num, denominator=den))
    for note in note_list:
        start, length, pitch, vel, channel = (
            int(v) if i > 1 else v for i, v in enumerate(note[:5])
        )
        track = int(note[5]) if len(note) > 5 else 1
        add(track, start, mido.Message("note_on", note=pitch, velocity=vel, channel=channel))
        if note_off_velocity_zero:
            off = mido.Message("note_on", note=pitch, velocity=0, channel=channel)
        else:
            off = mido.Message("note_off", note=pitch, velocity=64, channel=channel)
        add(track, start + length, off)
    for spec in pedal:
        down, up = spec[0], spec[1]
        channel = int(spec[2]) if len(spec) > 2 else 0
        add(1, down, mido.Message("control_change", control=64, value=127, channel=channel))
        add(1, up, mido.Message("control_change", control=64, value=0, channel=channel))
    for channel, program in (programs or {}).items():
        home = min(
            (int(n[5]) if len(n) > 5 else 1 for n in note_list if int(n[4]) == channel), default=1
        )
        add(home, 0, mido.Message("program_change", program=program, channel=channel))
    for beat, track, msg in extra:
        add(track, beat, msg)

    if type == 0:
        merged = [e for evs in events.values() for e in evs]
        events = {0: merged}
    names = {0: title} if title is not None else {}
    for i, name in enumerate(track_names, start=1 if type == 1 else 0):
        names[i] = name

    mid = mido.MidiFile(type=type, ticks_per_beat=ppq)
    for index in range(max(events) + 1):
        track_events = sorted(events.get(index, []), key=lambda e: (e[0], e[1]))
        mtrack = mido.MidiTrack()
        if index in names:
            mtrack.append(mido.MetaMessage("track_name", name=names[index]))
        now = 0
        for tick, _kind, msg in track_events:
            mtrack.append(msg.copy(time=tick - now))
            now = tick
        mid.tracks.append(mtrack)  # mido appends End-of-Track when saving

    import io

    buf = io.BytesIO()
    mid.save(file=buf)
    data = bytearray(buf.getvalue())
    if smpte is not None:
        fps, ticks_per_frame = smpte
        data[12] = (256 - fps) & 0xFF
        data[13] = ticks_per_frame
    return bytes(data)


def vlq(value: int) -> bytes:
    """A MIDI variable-length quantity."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def track(*events: bytes, end: bool = True) -> bytes:
    """Join raw event bytes (each with its delta time) and add End-of-Track."""
    return b"".join(events) + (b"\x00\xff\x2f\x00" if end else b"")


def chunk(kind: bytes, body: bytes, *, length: int | None = None) -> bytes:
    """A chunk; ``length`` overrides the declared length (to test broken files)."""
    declared = len(body) if length is None else length
    return kind + declared.to_bytes(4, "big") + body


def header(midi_type: int = 1, ntracks: int = 1, division: int = 480) -> bytes:
    """An MThd chunk. ``division`` is the raw 16-bit word (use ``smpte_division``)."""
    return chunk(
        b"MThd",
        midi_type.to_bytes(2, "big") + ntracks.to_bytes(2, "big") + division.to_bytes(2, "big"),
    )


def smpte_division(fps: int, ticks_per_frame: int) -> int:
    """The header word for SMPTE timing (fps 24, 25, 29 = 29.97 drop-frame, 30)."""
    return ((256 - fps) & 0xFF) << 8 | ticks_per_frame


def smf(*track_bodies: bytes, midi_type: int = 1, division: int = 480) -> bytes:
    """A complete file from raw track bodies (see ``track``)."""
    return header(midi_type, len(track_bodies), division) + b"".join(
        chunk(b"MTrk", body) for body in track_bodies
    )


def tempo_event(delta: int, bpm_or_us: float, *, microseconds: bool = False) -> bytes:
    """A Set Tempo meta event; pass µs per beat with ``microseconds=True``."""
    us = int(bpm_or_us) if microseconds else round(60_000_000 / bpm_or_us)
    return vlq(delta) + b"\xff\x51\x03" + us.to_bytes(3, "big")


def rmid(smf_bytes: bytes) -> bytes:
    """Wrap a Standard MIDI File in a RIFF RMID container (Windows .rmi)."""
    data = b"data" + len(smf_bytes).to_bytes(4, "little") + smf_bytes
    if len(smf_bytes) % 2:
        data += b"\x00"
    return b"RIFF" + (4 + len(data)).to_bytes(4, "little") + b"RMID" + data
