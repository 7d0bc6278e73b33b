"""Low-level Standard MIDI File scanning: raw bytes → per-track compact event arrays.

mido builds one Python object per event (hundreds of bytes each), which costs
gigabytes on a dense "black MIDI". This scanner walks the bytes once in a tight
loop and appends only two integers per channel event into ``array`` buffers
(absolute tick, and position-in-track << 8 | status); the data bytes are then
gathered with NumPy fancy indexing. Meta events are rare and kept as tuples,
and only the kinds the Song needs.

Tolerated damage (each leaves a warning): leading junk before ``MThd``, RIFF
(RMID) wrappers, unknown chunks, junk between or after tracks, track lengths that
are wrong, a missing End-of-Track, a track truncated mid-event, and running status
with no status byte before it (the rest of that track is dropped).
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

import numpy as np

from ..errors import LimitExceeded, MidiError
from .limits import MidiLimits

# Meta events the Song uses. Anything else (lyrics, markers, SMPTE offset,
# sequencer-specific, ...) is skipped without copying its payload.
META_TRACK_NAME = 0x03
META_INSTRUMENT = 0x04
META_END_OF_TRACK = 0x2F
META_TEMPO = 0x51
META_TIME_SIGNATURE = 0x58
_KEPT_METAS = frozenset({META_TRACK_NAME, META_INSTRUMENT, META_TEMPO, META_TIME_SIGNATURE})

# Data bytes after each status byte (channel voice messages). System common
# messages 0xF1-0xF6 do not belong in a file, but some writers emit them; their
# lengths come from the MIDI spec so we can step over them.
_DATA_LEN: tuple[int, ...] = tuple(
    1 if 0xC0 <= s < 0xE0 else 2 if 0x80 <= s < 0xF0 else 0 for s in range(256)
)
_SYSTEM_COMMON_LEN = {0xF1: 1, 0xF2: 2, 0xF3: 1}

# A variable-length quantity holds at most 28 bits (4 bytes). Anything longer is
# corrupt; refusing it early also stops a run of 0xFF bytes from building a
# gigantic Python int byte by byte.
_VLQ_MAX = 0x0FFFFFFF

_HEADER_LEN = 14
_BUDGET_STEP = 4096
# Re-reading a track whose length field is wrong costs a second scan; a hostile
# file could ask for that on every track, so only a few are granted per file.
_MAX_LENGTH_RETRIES = 8


@dataclass(slots=True)
class RawTrack:
    """Channel events of one ``MTrk`` chunk, in file order (ticks never decrease)."""

    index: int
    ticks: np.ndarray  # int64 absolute ticks
    status: np.ndarray  # uint8 status byte (0x80-0xEF)
    data1: np.ndarray  # uint8
    data2: np.ndarray  # uint8 (0 for one-data-byte messages)
    metas: list[tuple[int, int, bytes]]  # (tick, meta type, payload), kept types only
    end_tick: int  # tick of the last event of any kind (End-of-Track included)


@dataclass(slots=True)
class RawMidi:
    midi_type: int
    division: int  # raw 16-bit division word from the header
    tracks: list[RawTrack]
    warnings: list[str] = field(default_factory=list)


class _Corrupt(Exception):
    """Internal: the track's bytes stop making sense at this point."""


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def _sniff(data: bytes) -> str:
    """Describe what a non-MIDI file seems to be, for the error message."""
    signatures: tuple[tuple[bytes, str], ...] = (
        (b"\x89PNG", "PNG image data"),
        (b"\xff\xd8\xff", "JPEG image data"),
        (b"GIF8", "GIF image data"),
        (b"%PDF", "a PDF document"),
        (b"PK\x03\x04", "a ZIP archive (unzip it first)"),
        (b"\x1f\x8b", "gzip-compressed data (decompress it first)"),
        (b"ID3", "MP3 audio"),
        (b"OggS", "Ogg audio"),
        (b"fLaC", "FLAC audio"),
        (b"\x1aE\xdf\xa3", "Matroska/WebM video"),
        (b"MTrk", "a MIDI track without its MThd header"),
        (b"%!PS", "a PostScript document"),
        (b"\x7fELF", "a program (ELF executable)"),
        (b"MZ", "a Windows program"),
    )
    for magic, what in signatures:
        if data.startswith(magic):
            return what
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "WAV audio"
    if data[:4] == b"RIFF":
        return f"a RIFF {data[8:12].decode('latin-1')!r} file"
    if len(data) >= 8 and data[4:8] == b"ftyp":
        return "MP4/MOV media"
    if data[3:4] == b"\xfb" or data[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "MP3 audio"
    head = data[:512].lstrip()
    low = head.lower()
    if low.startswith(b"<?xml") or b"<score-partwise" in low or b"<score-timewise" in low:
        return "XML (MusicXML? export it as MIDI)" if b"score-" in low else "XML text"
    if low.startswith((b"<!doctype html", b"<html")):
        return "an HTML web page (download the .mid file itself)"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "unrecognised binary data"
    if text and all(ch.isprintable() or ch in "\r\n\t" for ch in text):
        return "plain text"
    return "unrecognised binary data"


def _be32(data: bytes, pos: int) -> int:
    return int.from_bytes(data[pos : pos + 4], "big")


def _unwrap_riff(data: bytes, warnings: list[str]) -> bytes:
    """Return the SMF inside an RMID (RIFF) file, or ``data`` unchanged."""
    if not (data[:4] == b"RIFF" and data[8:12] == b"RMID"):
        return data
    pos = 12
    while pos + 8 <= len(data):
        cid = data[pos : pos + 4]
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        if cid == b"data":
            return data[pos + 8 : pos + 8 + size]
        pos += 8 + size + (size & 1)  # RIFF chunks are padded to even sizes
    # No proper "data" chunk: fall back to searching for the header below.
    warnings.append("The RIFF (RMID) wrapper is damaged; the MIDI data inside was used anyway.")
    return data[12:]


def parse_smf(data: bytes, limits: MidiLimits) -> RawMidi:
    """Split a Standard MIDI File into tracks and scan each one."""
    warnings: list[str] = []
    if not data:
        raise MidiError(
            "The file is empty (0 bytes); choose a .mid or .midi file.", code="empty_file"
        )
    data = _unwrap_riff(data, warnings)
    start = data.find(b"MThd", 0, 4096)
    if start < 0:
        raise MidiError(
            f"This file is not a MIDI file (it starts with {_sniff(data)}).", code="not_midi"
        )
    if start > 0:
        # e.g. a MacBinary header or a mail-client prefix
        warnings.append(f"Skipped {_plural(start, 'byte')} of junk before the MIDI header.")
    if len(data) - start < _HEADER_LEN:
        raise MidiError(
            f"The MIDI file is truncated: its header is incomplete ({len(data) - start} of "
            f"{_HEADER_LEN} bytes); the download or export was probably cut short.",
            code="truncated_midi",
        )
    header_len = _be32(data, start + 4)
    if header_len < 6:
        raise MidiError(
            f"The MIDI header is corrupt (declared length {header_len}, expected 6).",
            code="corrupt_midi",
        )
    midi_type = int.from_bytes(data[start + 8 : start + 10], "big")
    declared_tracks = int.from_bytes(data[start + 10 : start + 12], "big")
    division = int.from_bytes(data[start + 12 : start + 14], "big")
    if midi_type == 2:
        raise MidiError(
            "This is a type 2 (multi-song) MIDI file, which Notefall does not support; "
            "save it as type 0 or 1 in your MIDI editor.",
            code="unsupported_midi",
        )
    if midi_type > 2:
        raise MidiError(
            f"The MIDI header declares an unknown format ({midi_type}); only types 0 and 1 "
            "are supported.",
            code="corrupt_midi",
        )
    if division == 0:
        raise MidiError(
            "The MIDI header is corrupt (time division of 0 ticks per beat).", code="corrupt_midi"
        )
    if division & 0x8000 and (division & 0xFF) == 0:
        raise MidiError(
            "The MIDI header is corrupt (SMPTE timing with 0 ticks per frame).",
            code="corrupt_midi",
        )

    pos = start + 8 + header_len
    n = len(data)
    tracks: list[RawTrack] = []
    budget = limits.max_events
    skipped_chunks = 0
    retries = 0
    metas_left = limits.max_meta_events
    while pos + 8 <= n:
        cid = data[pos : pos + 4]
        if cid != b"MTrk":
            if _plausible_chunk_id(cid) and pos + 8 + _be32(data, pos + 4) <= n:
                # An unknown but well-formed chunk (e.g. "XFIH" from Yamaha): skip it.
                skipped_chunks += 1
                pos += 8 + _be32(data, pos + 4)
                continue
            nxt = data.find(b"MTrk", pos)
            if nxt < 0:
                if any(data[pos:]):
                    warnings.append(
                        f"Ignored {_plural(n - pos, 'byte')} of junk after the last track."
                    )
                pos = n
                break
            warnings.append(f"Skipped {_plural(nxt - pos, 'byte')} of junk between tracks.")
            pos = nxt
            continue
        if len(tracks) >= limits.max_tracks:
            raise LimitExceeded(
                f"This MIDI file has more than {limits.max_tracks:,} tracks; merge tracks "
                "in your MIDI editor before rendering.",
                code="too_many_tracks",
            )
        declared = _be32(data, pos + 4)
        body = pos + 8
        next_pos = body + declared
        scan = _scan_track(data[body : min(next_pos, n)], len(tracks), budget, limits, metas_left)
        if (
            not scan.ended
            and next_pos < n
            and data[next_pos : next_pos + 4] != b"MTrk"
            and retries < _MAX_LENGTH_RETRIES
        ):
            # No End-of-Track inside the declared length and no track header right after
            # it: the length field is probably too small. Re-read up to End-of-Track.
            retries += 1
            retry = _scan_track(data[body:], len(tracks), budget, limits, metas_left)
            if retry.ended:
                scan = retry
                next_pos = body + scan.used
                warnings.append(
                    f"Track {len(tracks) + 1} declared a wrong length; it was read up to its "
                    "End-of-Track marker."
                )
        if scan.ended and body + scan.used < next_pos:
            after_eot = data[body + scan.used : body + scan.used + 4]
            if next_pos > n or (data[next_pos : next_pos + 4] != b"MTrk" and after_eot == b"MTrk"):
                # Declared length too long: the next track starts right after End-of-Track.
                next_pos = body + scan.used
        if scan.corrupt:
            warnings.append(
                f"Track {len(tracks) + 1} is damaged after {_plural(scan.count, 'event')}; "
                "the rest of it was ignored."
            )
        elif next_pos > n or (scan.cut and next_pos >= n):
            warnings.append(
                "The last track was truncated (the file was cut short); the events before "
                "the cut were recovered."
            )
        elif scan.cut:
            warnings.append(
                f"Track {len(tracks) + 1} ends in the middle of an event; the incomplete "
                "event was dropped."
            )
        budget -= scan.count
        metas_left -= len(scan.track.metas)
        tracks.append(scan.track)
        pos = next_pos
    if 0 < n - pos < 8 and any(data[pos:]):
        warnings.append(f"Ignored {_plural(n - pos, 'byte')} of junk after the last track.")
    if skipped_chunks:
        warnings.append(f"Skipped {_plural(skipped_chunks, 'unknown chunk')} in the file.")
    if not tracks:
        raise MidiError(
            "The MIDI file contains no tracks (it has a header but no MTrk data); the file "
            "is damaged or was cut short.",
            code="corrupt_midi",
        )
    if declared_tracks != len(tracks):
        warnings.append(
            f"The header announced {_plural(declared_tracks, 'track')} but the file has "
            f"{len(tracks):,}; all found tracks were read."
        )
    if midi_type == 0 and len(tracks) > 1:
        warnings.append("A type 0 file with several tracks was read as type 1.")
        midi_type = 1
    return RawMidi(midi_type=midi_type, division=division, tracks=tracks, warnings=warnings)


def _plausible_chunk_id(cid: bytes) -> bool:
    return len(cid) == 4 and all(0x20 <= b < 0x7F for b in cid)


@dataclass(slots=True)
class _Scan:
    track: RawTrack
    used: int  # bytes consumed
    count: int  # events kept (channel events + kept metas), for the event budget
    ended: bool  # saw End-of-Track
    cut: bool  # ran out of bytes in the middle of an event
    corrupt: bool  # hit bytes that cannot be an event


def _scan_track(data: bytes, index: int, budget: int, limits: MidiLimits, metas_left: int) -> _Scan:
    """Scan one track's bytes into compact arrays.

    This is the hot loop of the reader: keep it flat, use locals, and avoid calls.
    Events are counted against ``budget`` (what is left of ``max_events``) as they
    are read, so a dense file fails fast instead of filling memory first.
    """
    # One int per event: delta << 34 | position << 8 | status (delta < 2**28,
    # position < 2**26 since files are capped at 64 MB). Meta and sysex events
    # leave a "spacer" (status 0) carrying their delta, so absolute ticks are one
    # cumsum afterwards and the hot path does no tick arithmetic at all.
    packed = array("q")
    add = packed.append
    metas: list[tuple[int, int, bytes]] = []  # (index of its spacer, kind, payload)
    data_len = _DATA_LEN
    n = len(data)
    i = 0
    running = 0
    ended = cut = corrupt = False
    # The event budget is checked every few thousand events through a countdown,
    # which keeps the check out of the common path.
    countdown = min(budget, _BUDGET_STEP) + 1
    try:
        while i < n:
            delta = data[i]
            i += 1
            if delta > 127:
                delta &= 127
                b = data[i]
                i += 1
                while b > 127:
                    delta = (delta << 7) | (b & 127)
                    if delta > 0x1FFFFF:  # a fifth byte: not a valid quantity
                        raise _Corrupt
                    b = data[i]
                    i += 1
                delta = (delta << 7) | b
            s = data[i]
            if s < 0x80:
                if not running:
                    raise _Corrupt  # a data byte with no status to run on
                s = running
            elif s < 0xF0:
                running = s
                i += 1
            else:
                i += 1
                add(delta << 34)
                if s == 0xFF:
                    kind = data[i]
                    i += 1
                    length, i = _read_vlq(data, i)
                    if kind in _KEPT_METAS:
                        if len(metas) >= metas_left:
                            raise LimitExceeded(
                                "This MIDI file has more than "
                                f"{limits.max_meta_events:,} tempo, time-signature and name "
                                "events; it is damaged or machine-generated beyond use.",
                                code="too_many_events",
                            )
                        metas.append((len(packed) - 1, kind, data[i : i + length]))
                    i += length
                    if kind == META_END_OF_TRACK:
                        ended = True
                        break
                elif s == 0xF0 or s == 0xF7:
                    length, i = _read_vlq(data, i)
                    i += length
                else:
                    i += _SYSTEM_COMMON_LEN.get(s, 0)
                countdown -= 1
                if countdown <= 0:
                    countdown = _refill(len(packed), budget, limits.max_events)
                continue
            add(delta << 34 | i << 8 | s)
            i += data_len[s]
            countdown -= 1
            if countdown <= 0:
                countdown = _refill(len(packed), budget, limits.max_events)
    except IndexError:
        cut = True
    except _Corrupt:
        corrupt = True
    if i > n:  # a meta or sysex payload runs past the end
        i = n
        cut = True
    packed_np = np.frombuffer(packed, dtype=np.int64) if len(packed) else np.zeros(0, np.int64)
    all_ticks = np.cumsum(packed_np >> 34)
    end_tick = int(all_ticks[-1]) if all_ticks.shape[0] else 0
    metas = [(int(all_ticks[k]), kind, payload) for k, kind, payload in metas]
    status = (packed_np & 0xFF).astype(np.uint8)
    pos = (packed_np >> 8) & 0x3FFFFFF
    need = np.where((status >= 0xC0) & (status < 0xE0), 1, 2)
    keep = (status != 0) & (pos + need <= n)
    if int(np.count_nonzero(keep)) != int(np.count_nonzero(status)):
        cut = True  # the final event's data bytes were cut off
    ticks_np, pos, status, need = all_ticks[keep], pos[keep], status[keep], need[keep]
    if pos.shape[0]:
        buf = np.frombuffer(data, dtype=np.uint8)
        # Masking with 0x7F tolerates stray high bits in data bytes (mido refuses them).
        data1 = (buf[pos] & 0x7F).astype(np.uint8)
        data2 = np.where(need == 2, buf[np.minimum(pos + 1, n - 1)] & 0x7F, 0).astype(np.uint8)
    else:
        data1 = np.zeros(0, np.uint8)
        data2 = np.zeros(0, np.uint8)
    track = RawTrack(
        index=index,
        ticks=ticks_np,
        status=status,
        data1=data1,
        data2=data2,
        metas=metas,
        end_tick=end_tick,
    )
    count = int(packed_np.shape[0])
    return _Scan(track=track, used=i, count=count, ended=ended, cut=cut, corrupt=corrupt)


def _refill(total: int, budget: int, max_events: int) -> int:
    """Refill the event countdown, or raise once the file has too many events."""
    if total > budget:
        raise LimitExceeded(
            f"This MIDI file has more than {max_events:,} events, too dense to render; "
            "remove tracks or thin it out in a MIDI editor.",
            code="too_many_events",
        )
    return min(budget - total, _BUDGET_STEP) + 1


def _read_vlq(data: bytes, i: int) -> tuple[int, int]:
    value = 0
    while True:
        b = data[i]
        i += 1
        value = (value << 7) | (b & 127)
        if b < 0x80:
            return value, i
        if value > _VLQ_MAX:
            raise _Corrupt
