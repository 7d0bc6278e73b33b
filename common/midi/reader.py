"""``read_song``: a MIDI file → ``Song``, robust against messy and hostile files.

Choices worth knowing:

* Notes are paired per (track, channel, pitch). When the same key is struck again
  before it was released, each note-on starts a new note and each note-off closes
  the **oldest** open one (FIFO). That matches how most sequencers write
  overlapping notes (on A, on A', off A, off A') and keeps every note-on visible;
  a note-off with nothing open is ignored. Note-on with velocity 0 is a note-off.
* In a key whose note-ons outnumber its note-offs (the writer re-strikes without
  releasing: guitar strums, drum tracks), each note also ends at the next strike
  of that key. Notes still open at the end are closed at the song's last event.
* Notes shorter
  than ``MIN_NOTE_SECONDS`` are lengthened to it (so they can be seen and heard),
  but never past the next strike of the same key.
* Times go through the tempo map in exact integer arithmetic: for each tempo
  segment we keep the integer sum of ``ticks × µs-per-beat`` before it, so a tick's
  time is a single division of an exact integer; no error accumulates over
  thousands of tempo changes. Tempo events from every track apply globally.
* The sustain pedal (CC64 >= 64 is down) is tracked per channel across tracks. A
  note whose key is released while the pedal is down keeps sounding until the
  pedal comes up (``sound_end``), but not past the next strike of the same key on
  that channel, nor past the end of the song.
"""

from __future__ import annotations

import bisect
import math
import os
import re
from pathlib import Path

import numpy as np

from ..errors import LimitExceeded, MidiError
from ..song import (
    CONTROL_CC,
    CONTROL_DTYPE,
    CONTROL_PITCHBEND,
    CONTROL_PROGRAM,
    DRUM_CHANNEL,
    NOTE_DTYPE,
    PEDAL_DTYPE,
    Song,
    TempoChange,
    TimeSignature,
    TrackInfo,
)
from .gm import DRUM_KIT_NAME, GM_PROGRAM_NAMES, gm_program_name
from .limits import DEFAULT_LIMITS, MidiLimits
from .smf import (
    META_INSTRUMENT,
    META_TEMPO,
    META_TIME_SIGNATURE,
    META_TRACK_NAME,
    RawMidi,
    RawTrack,
    parse_smf,
)

MIN_NOTE_SECONDS = 0.02
DEFAULT_TEMPO = 500_000  # µs per quarter note = 120 bpm, the SMF default
SUSTAIN_CC = 64


def read_song(
    source: Path | str | bytes | bytearray | memoryview,
    *,
    name: str | None = None,
    limits: MidiLimits = DEFAULT_LIMITS,
) -> Song:
    """Read a type 0 or 1 Standard MIDI File (or an RMID wrapper around one).

    ``source`` is a path or the file's bytes. ``name`` is the fallback title (the
    file stem when a path is given). Raises ``MidiError`` for files that cannot be
    read and ``LimitExceeded`` for files beyond ``limits``; never anything else for
    bad input. Problems that were repaired are listed in ``Song.warnings``.
    """
    data, stem = _load(source, limits)
    raw = parse_smf(data, limits)
    return _build_song(raw, title_fallback=name if name is not None else stem, limits=limits)


def _load(
    source: Path | str | bytes | bytearray | memoryview, limits: MidiLimits
) -> tuple[bytes, str]:
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        stem = "Untitled"
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        stem = path.stem or "Untitled"
        try:
            size = path.stat().st_size
            if size > limits.max_file_bytes:
                _raise_too_big(size, limits)
            with path.open("rb") as fh:
                # Read at most one byte past the limit, in case the file grew meanwhile.
                data = fh.read(limits.max_file_bytes + 1)
        except LimitExceeded:
            raise
        except IsADirectoryError:
            raise MidiError(
                f"'{path.name}' is a folder, not a MIDI file.", code="not_midi"
            ) from None
        except FileNotFoundError:
            raise MidiError(
                f"MIDI file not found: '{path}'; check the path.", code="file_not_found"
            ) from None
        except OSError as exc:
            raise MidiError(
                f"Cannot read '{path.name}': {exc.strerror or exc}.", code="unreadable_file"
            ) from None
    else:
        raise TypeError(f"read_song() needs a path or bytes, not {type(source).__name__}")
    if len(data) > limits.max_file_bytes:
        _raise_too_big(len(data), limits)
    return data, stem


def _raise_too_big(size: int, limits: MidiLimits) -> None:
    raise LimitExceeded(
        f"The MIDI file is {size / 2**20:,.1f} MB; the limit is "
        f"{limits.max_file_bytes / 2**20:,.0f} MB (real songs are far smaller — is this "
        "really a MIDI file?).",
        code="file_too_large",
    )


# ---------------------------------------------------------------------------
# Tempo map


class _TimeMap:
    """Exact tick → seconds conversion: seconds = numerator(tick) / denominator."""

    def __init__(self, division: int, tempos: list[tuple[int, int]], warnings: list[str]):
        self.smpte = bool(division & 0x8000)
        # Segment table (PPQ only): start tick, µs per beat, and the exact integer
        # sum of ticks × µs-per-beat of all earlier segments.
        self.seg_ticks: list[int] = [0]
        self.seg_tempo: list[int] = [DEFAULT_TEMPO]
        self.seg_acc: list[int] = [0]
        if self.smpte:
            fps = 256 - (division >> 8)  # the high byte is a negative two's-complement fps
            ticks_per_frame = division & 0xFF
            if fps == 29:  # "29" means 29.97 drop-frame: 30000/1001 frames per second
                self.mul, self.den = 1001, 30000 * ticks_per_frame
            else:
                if fps not in (24, 25, 30):
                    warnings.append(f"Unusual SMPTE frame rate {fps} fps was used as is.")
                self.mul, self.den = 1, fps * ticks_per_frame
            return
        self.mul, self.den = 1, division * 1_000_000
        for tick, tempo in tempos:
            if tick == self.seg_ticks[-1]:
                self.seg_tempo[-1] = tempo  # several tempos at one tick: the last wins
                continue
            self.seg_acc.append(self.seg_acc[-1] + (tick - self.seg_ticks[-1]) * self.seg_tempo[-1])
            self.seg_ticks.append(tick)
            self.seg_tempo.append(tempo)

    def numerator(self, tick: int) -> int:
        """Exact Python-int numerator, safe for any tick (used for limit checks)."""
        if self.smpte:
            return tick * self.mul
        k = bisect.bisect_right(self.seg_ticks, tick) - 1
        return self.seg_acc[k] + (tick - self.seg_ticks[k]) * self.seg_tempo[k]

    def seconds_of(self, tick: int) -> float:
        return self.numerator(tick) / self.den

    def seconds(self, ticks: np.ndarray) -> np.ndarray:
        """Vectorised; callers must first check the largest tick with ``numerator``
        against the duration limit, which keeps every numerator well below 2**53 so
        the int64 arithmetic is exact and the single float division is correctly
        rounded."""
        ticks = np.asarray(ticks, dtype=np.int64)
        if self.smpte:
            num = ticks * self.mul
        else:
            seg_ticks = np.asarray(self.seg_ticks, dtype=np.int64)
            k = np.searchsorted(seg_ticks, ticks, side="right") - 1
            acc = np.asarray(self.seg_acc, dtype=np.int64)
            tempo = np.asarray(self.seg_tempo, dtype=np.int64)
            num = acc[k] + (ticks - seg_ticks[k]) * tempo[k]
        return num / self.den


# ---------------------------------------------------------------------------
# Song assembly


def _build_song(raw: RawMidi, *, title_fallback: str, limits: MidiLimits) -> Song:
    warnings = list(raw.warnings)
    tracks = raw.tracks

    tempo_events = _collect_tempos(tracks, warnings)
    timemap = _TimeMap(raw.division, tempo_events, warnings)
    end_tick = max(t.end_tick for t in tracks)
    song_end_num = timemap.numerator(end_tick)
    if song_end_num > limits.max_seconds * timemap.den:
        length = song_end_num / timemap.den
        raise LimitExceeded(
            f"This MIDI file lasts {_format_length(length)}, longer than the "
            f"{_format_length(limits.max_seconds)} limit (huge gaps between events or a "
            "very slow tempo); trim it in a MIDI editor.",
            code="too_long",
        )
    song_end = song_end_num / timemap.den

    # One flat view of every channel event, in track order then file order.
    ticks = np.concatenate([t.ticks for t in tracks])
    status = np.concatenate([t.status for t in tracks])
    data1 = np.concatenate([t.data1 for t in tracks])
    data2 = np.concatenate([t.data2 for t in tracks])
    track_of = np.repeat(np.arange(len(tracks), dtype=np.int64), [t.ticks.shape[0] for t in tracks])
    kind = status >> 4
    channel = status & 0x0F

    is_on = (kind == 0x9) & (data2 > 0)
    n_on = int(np.count_nonzero(is_on))
    if n_on > limits.max_notes:
        raise LimitExceeded(
            f"This MIDI file has {n_on:,} notes; the limit is {limits.max_notes:,}. "
            "Remove tracks or render a shorter excerpt.",
            code="too_many_notes",
        )
    is_off = (kind == 0x8) | ((kind == 0x9) & (data2 == 0))

    notes, unreleased = _pair_notes(
        ticks, channel, data1, data2, track_of, is_on, is_off, end_tick, timemap
    )
    if unreleased:
        warnings.append(
            f"{unreleased:,} note{'s' if unreleased != 1 else ''} never released "
            f"{'were' if unreleased != 1 else 'was'} closed at the end."
        )

    pedal_mask = (kind == 0xB) & (data1 == SUSTAIN_CC)
    pedals = _pedal_spans(
        ticks[pedal_mask], channel[pedal_mask], data2[pedal_mask], end_tick, timemap
    )
    _apply_sustain(notes, pedals, song_end)

    control_mask = (kind == 0xB) | (kind == 0xC) | (kind == 0xE)
    controls = _controls(
        ticks[control_mask],
        channel[control_mask],
        kind[control_mask],
        data1[control_mask],
        data2[control_mask],
        timemap,
    )

    note_counts = np.bincount(notes["track"], minlength=len(tracks))
    infos = tuple(_track_info(t, int(note_counts[t.index])) for t in tracks)

    tempo_changes = _tempo_changes(tempo_events, timemap)
    time_signatures = _time_signatures(tracks, timemap)

    title = title_fallback or "Untitled"
    first_name = infos[0].name if infos else ""
    if _looks_like_title(first_name):
        title = first_name

    if notes.shape[0] == 0:
        warnings.append("The file contains no notes.")
    duration = max(song_end, float(notes["sound_end"].max()) if notes.shape[0] else 0.0)
    return Song(
        notes=notes,
        pedals=pedals,
        controls=controls,
        tracks=infos,
        tempo_changes=tempo_changes,
        time_signatures=time_signatures,
        title=title,
        midi_type=raw.midi_type,
        duration=duration,
        warnings=tuple(warnings),
    )


def _format_length(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds >= 1e9:
        return "practically forever"
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours:,} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s"


def _collect_tempos(tracks: list[RawTrack], warnings: list[str]) -> list[tuple[int, int]]:
    """Tempo events of all tracks, by tick (stable: earlier tracks first on ties)."""
    events: list[tuple[int, int]] = []
    bad = 0
    for track in tracks:
        for tick, kind, payload in track.metas:
            if kind != META_TEMPO:
                continue
            if len(payload) < 3 or int.from_bytes(payload[:3], "big") == 0:
                bad += 1
                continue
            events.append((tick, int.from_bytes(payload[:3], "big")))
    if bad:
        warnings.append(f"Ignored {bad:,} invalid tempo event{'s' if bad != 1 else ''}.")
    events.sort(key=lambda e: e[0])  # sort is stable
    return events


def _pair_notes(
    ticks: np.ndarray,
    channel: np.ndarray,
    pitch: np.ndarray,
    velocity: np.ndarray,
    track_of: np.ndarray,
    is_on: np.ndarray,
    is_off: np.ndarray,
    end_tick: int,
    timemap: _TimeMap,
) -> tuple[np.ndarray, int]:
    """Vectorised FIFO pairing of note-ons with note-offs; returns (notes, unreleased).

    Events are grouped by key (track, channel, pitch), keeping file order inside a
    group. Walking a group, the number of open notes is a ±1 walk clamped at 0 (a
    note-off with nothing open is ignored). For such a walk the clamped count is
    ``S_t - min(0, min_{s<=t} S_s)`` where S is the unclamped running sum, which
    NumPy computes with cumsum and a segmented minimum.accumulate. With FIFO the
    k-th note-on of a group is closed by its k-th *effective* note-off.
    """
    idx = np.flatnonzero(is_on | is_off)
    m = idx.shape[0]
    if m == 0:
        return np.zeros(0, NOTE_DTYPE), 0
    # Group by (track, channel, pitch) keeping file order: two stable sorts on
    # uint16 keys, which NumPy does as O(n) radix sorts (an int64 argsort is ~5x
    # slower on a million notes). Events are already in track order.
    sub_key = (channel[idx].astype(np.uint16) << 7) | pitch[idx]
    order = np.argsort(sub_key, kind="stable")
    order = order[np.argsort(track_of[idx][order].astype(np.uint16), kind="stable")]
    idx = idx[order]
    key = track_of[idx] * 2048 + sub_key[order]
    on = is_on[idx]
    step = np.where(on, 1, -1).astype(np.int64)

    group_start = np.ones(m, dtype=bool)
    group_start[1:] = key[1:] != key[:-1]
    group = np.cumsum(group_start) - 1
    running = np.cumsum(step)
    before_group = (running - step)[group_start]
    walk = running - before_group[group]
    # Offsetting each group far below the previous ones makes a global
    # minimum.accumulate behave as a per-group one.
    spread = 2 * m + 2
    lowest = np.minimum.accumulate(walk - group * spread) + group * spread
    open_count = walk - np.minimum(lowest, 0)
    open_before = np.empty(m, dtype=np.int64)
    open_before[0] = 0
    open_before[1:] = open_count[:-1]
    open_before[group_start] = 0
    effective_off = ~on & (open_before > 0)

    on_pos = np.flatnonzero(on)
    if on_pos.shape[0] == 0:  # only stray note-offs
        return np.zeros(0, NOTE_DTYPE), 0
    off_pos = np.flatnonzero(effective_off)
    on_rank = _rank_in_group(on, group, group_start)
    off_rank = _rank_in_group(effective_off, group, group_start)
    width = m + 1
    on_key = group[on_pos] * width + on_rank[on_pos]
    off_key = group[off_pos] * width + off_rank[off_pos]
    found = np.searchsorted(off_key, on_key)
    found_clipped = np.minimum(found, max(off_key.shape[0] - 1, 0))
    matched = (found < off_key.shape[0]) & (
        off_key[found_clipped] == on_key if off_key.shape[0] else np.zeros(on_key.shape, bool)
    )

    on_idx = idx[on_pos]
    start_tick = ticks[on_idx]
    stop_tick = np.full(on_idx.shape[0], end_tick, dtype=np.int64)
    if off_pos.shape[0]:
        stop_tick[matched] = ticks[idx[off_pos[found_clipped[matched]]]]
    # Keys whose note-ons outnumber their note-offs are re-struck without being
    # released (guitar strums, some drum and game-music tracks). Pure FIFO would
    # chain every note to a far-later release and leave the last ones ringing to
    # the end, so in such keys a note ends at the next strike of the key or at the
    # next note-off after it, whichever comes first.
    on_group = group[on_pos]
    leftover = np.zeros(int(group[-1]) + 1, dtype=bool)
    leftover[on_group[~matched]] = True
    retrigger = leftover[on_group]
    if retrigger.any():
        same_next = np.zeros(on_idx.shape[0], dtype=bool)
        same_next[:-1] = on_group[1:] == on_group[:-1]
        next_strike = np.full(on_idx.shape[0], np.iinfo(np.int64).max, dtype=np.int64)
        next_strike[:-1] = start_tick[1:]
        next_strike[~same_next | (next_strike <= start_tick)] = np.iinfo(np.int64).max
        all_off = np.flatnonzero(~on)
        k = np.searchsorted(all_off, on_pos)  # the first note-off after each note-on
        k_ok = k < all_off.shape[0]
        k_clip = np.minimum(k, max(all_off.shape[0] - 1, 0))
        next_off = np.full(on_idx.shape[0], np.iinfo(np.int64).max, dtype=np.int64)
        if all_off.shape[0]:
            off_here = k_ok & (group[all_off[k_clip]] == on_group)
            next_off[off_here] = ticks[idx[all_off[k_clip[off_here]]]]
        stop = np.minimum(next_strike, next_off)
        closed = retrigger & (stop != np.iinfo(np.int64).max)
        stop_tick = np.where(retrigger, np.where(closed, stop, end_tick), stop_tick)
        matched = np.where(retrigger, closed, matched)
    unreleased = int(np.count_nonzero(~matched))

    notes = np.zeros(on_idx.shape[0], NOTE_DTYPE)
    start = timemap.seconds(start_tick)
    end = timemap.seconds(stop_tick)
    # Lengthen very short notes, but not past the next strike of the same key
    # (the next on in the same group), and never shorten a real note.
    next_start = np.full(on_idx.shape[0], np.inf)
    same_key_next = np.zeros(on_idx.shape[0], dtype=bool)
    same_key_next[:-1] = group[on_pos[1:]] == group[on_pos[:-1]]
    next_start[:-1][same_key_next[:-1]] = start[1:][same_key_next[:-1]]
    next_start = np.where(next_start > start, next_start, np.inf)
    lengthened = np.maximum(end, start + MIN_NOTE_SECONDS)
    end = np.maximum(end, np.minimum(lengthened, next_start))

    notes["start"] = start
    notes["end"] = end
    notes["sound_end"] = end
    notes["pitch"] = pitch[on_idx]
    notes["velocity"] = velocity[on_idx]
    notes["channel"] = channel[on_idx]
    notes["track"] = track_of[on_idx]
    # Sort by (start, pitch, channel, track). Start ticks order like start times,
    # so one int64 key does it when it fits (always in practice), else lexsort.
    if int(start_tick.max()) < 1 << 35:
        composite = (start_tick << 27) | (notes["pitch"].astype(np.int64) << 20)
        composite |= (notes["channel"].astype(np.int64) << 16) | notes["track"]
        order = np.argsort(composite, kind="stable")  # duplicates keep FIFO order
    else:
        order = np.lexsort((notes["track"], notes["channel"], notes["pitch"], notes["start"]))
    return notes[order], unreleased


def _rank_in_group(mask: np.ndarray, group: np.ndarray, group_start: np.ndarray) -> np.ndarray:
    """0-based rank of each True entry among the True entries of its group."""
    count = np.cumsum(mask)
    before = (count - mask)[group_start]
    return count - before[group] - 1


def _pedal_spans(
    ticks: np.ndarray, channel: np.ndarray, value: np.ndarray, end_tick: int, timemap: _TimeMap
) -> np.ndarray:
    """Sustain-pedal spans per channel (pedal events merged across tracks by time)."""
    if ticks.shape[0] == 0:
        return np.zeros(0, PEDAL_DTYPE)
    order = np.lexsort((np.arange(ticks.shape[0]), ticks, channel))
    ticks, channel, down = ticks[order], channel[order], value[order] >= 64
    first = np.ones(ticks.shape[0], dtype=bool)
    first[1:] = channel[1:] != channel[:-1]
    was_down = np.zeros(ticks.shape[0], dtype=bool)
    was_down[1:] = down[:-1]
    was_down[first] = False
    press = down & ~was_down
    release = ~down & was_down
    # Presses and releases alternate within a channel, starting with a press.
    change = np.flatnonzero(press | release)
    press_at = np.flatnonzero(press[change])
    start_idx = change[press_at]
    stop_tick = np.full(start_idx.shape[0], end_tick, dtype=np.int64)
    has_next = press_at + 1 < change.shape[0]
    nxt = change[np.minimum(press_at + 1, change.shape[0] - 1)]
    closes = has_next & (channel[nxt] == channel[start_idx])
    stop_tick[closes] = ticks[nxt[closes]]
    spans = np.zeros(start_idx.shape[0], PEDAL_DTYPE)
    spans["start"] = timemap.seconds(ticks[start_idx])
    spans["end"] = timemap.seconds(stop_tick)
    spans["channel"] = channel[start_idx]
    spans = spans[spans["end"] > spans["start"]]
    return spans[np.lexsort((spans["channel"], spans["start"]))]


def _apply_sustain(notes: np.ndarray, pedals: np.ndarray, song_end: float) -> None:
    """Set ``sound_end``: held on to the pedal release when the key was released
    under a pressed pedal, capped at the next strike of the same key on the same
    channel (a re-struck key stops the old sound) and at the song's end."""
    if notes.shape[0] == 0 or pedals.shape[0] == 0:
        return
    sound_end = notes["end"].copy()
    for ch in np.unique(pedals["channel"]):
        spans = pedals[pedals["channel"] == ch]
        mine = np.flatnonzero(notes["channel"] == ch)
        release = notes["end"][mine]
        k = np.searchsorted(spans["start"], release, side="right") - 1
        kk = np.maximum(k, 0)
        held = (k >= 0) & (release < spans["end"][kk])
        sound_end[mine[held]] = spans["end"][kk[held]]
    # Next strike of the same (channel, pitch), notes being sorted by start.
    order = np.lexsort((notes["start"], notes["pitch"], notes["channel"]))
    ch, pi, st = notes["channel"][order], notes["pitch"][order], notes["start"][order]
    nxt = np.full(order.shape[0], np.inf)
    same = (ch[1:] == ch[:-1]) & (pi[1:] == pi[:-1]) & (st[1:] > st[:-1])
    nxt[:-1][same] = st[1:][same]
    cap = np.empty_like(nxt)
    cap[order] = nxt
    sound_end = np.minimum(sound_end, np.maximum(cap, notes["end"]))
    sound_end = np.minimum(sound_end, np.maximum(song_end, notes["end"]))
    notes["sound_end"] = np.maximum(sound_end, notes["end"])


def _controls(
    ticks: np.ndarray,
    channel: np.ndarray,
    kind: np.ndarray,
    data1: np.ndarray,
    data2: np.ndarray,
    timemap: _TimeMap,
) -> np.ndarray:
    order = np.argsort(ticks, kind="stable")  # stable: track order, then file order
    ticks, channel, kind = ticks[order], channel[order], kind[order]
    data1, data2 = data1[order].astype(np.int16), data2[order].astype(np.int16)
    out = np.zeros(ticks.shape[0], CONTROL_DTYPE)
    out["time"] = timemap.seconds(ticks)
    out["channel"] = channel
    is_program = kind == 0xC
    is_cc = kind == 0xB
    is_bend = kind == 0xE
    out["kind"] = np.where(
        is_program, CONTROL_PROGRAM, np.where(is_cc, CONTROL_CC, CONTROL_PITCHBEND)
    )
    out["a"] = np.where(is_bend, 0, data1)
    out["b"] = np.where(is_bend, data1 | (data2 << 7), np.where(is_cc, data2, 0))
    # Bank of each program change: the latest bank select (CC0 MSB, CC32 LSB)
    # before it on the same channel, 0 when none.
    for ch in np.unique(channel[is_program]):
        programs = np.flatnonzero(is_program & (channel == ch))
        bank = np.zeros(programs.shape[0], dtype=np.int64)
        for controller, scale in ((0, 128), (32, 1)):
            selects = np.flatnonzero(is_cc & (channel == ch) & (data1 == controller))
            if selects.shape[0] == 0:
                continue
            k = np.searchsorted(selects, programs) - 1
            value = np.where(k >= 0, data2[selects[np.maximum(k, 0)]], 0)
            bank += value.astype(np.int64) * scale
        out["b"][programs] = bank
    return out


def _decode_text(payload: bytes) -> str:
    """MIDI text has no declared encoding: try UTF-8, then Shift-JIS (very common in
    Japanese files, e.g. music21's test04.mid), then Windows-1252."""
    raw = payload.replace(b"\x00", b"")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = _decode_japanese(raw) or raw.decode("cp1252", errors="replace")
    return "".join(ch for ch in text if ch.isprintable()).strip()


def _is_japanese(ch: str) -> bool:
    code = ord(ch)
    return (
        0x3000 <= code <= 0x30FF  # punctuation, hiragana, katakana
        or 0x4E00 <= code <= 0x9FFF  # CJK ideographs
        or 0xFF00 <= code <= 0xFFEF  # full- and half-width forms
    )


def _decode_japanese(raw: bytes) -> str | None:
    # Accept Shift-JIS only when every non-ASCII character it yields is Japanese,
    # so Western names in Windows-1252 ("Müller") are not turned into kanji.
    try:
        text = raw.decode("cp932")
    except UnicodeDecodeError:
        return None
    wide = [ch for ch in text if ord(ch) > 0x7F]
    if not wide or not all(_is_japanese(ch) for ch in wide):
        return None
    # Latin-1 letters often decode to an isolated kanji ("é" + "d") or to half-width
    # katakana; real Japanese text has full-width kana or runs of ideographs.
    kana = any(0x3000 <= ord(ch) <= 0x30FF or 0xFF01 <= ord(ch) <= 0xFF5E for ch in wide)
    return text if kana or re.search(r"[\u4e00-\u9fff]{2}", text) else None


def _track_info(track: RawTrack, note_count: int) -> TrackInfo:
    name = ""
    instrument = ""
    for _tick, kind, payload in track.metas:
        if kind == META_TRACK_NAME and not name:
            name = _decode_text(payload)
        elif kind == META_INSTRUMENT and not instrument:
            instrument = _decode_text(payload)
    kinds = track.status >> 4
    programs = np.flatnonzero(kinds == 0xC)
    program = int(track.data1[programs[0]]) if programs.shape[0] else 0
    note_on = (kinds == 0x9) & (track.data2 > 0)
    source = track.status[note_on] if note_on.any() else track.status
    channels = tuple(int(c) for c in np.unique(source & 0x0F))
    drums = bool(channels) and all(c == DRUM_CHANNEL for c in channels)
    if not instrument:
        if drums and (note_count or programs.shape[0]):
            instrument = DRUM_KIT_NAME
        elif programs.shape[0] or note_count:
            instrument = gm_program_name(program)
    return TrackInfo(
        index=track.index,
        name=name,
        instrument=instrument,
        program=program,
        channels=channels,
        note_count=note_count,
    )


def _tempo_changes(events: list[tuple[int, int]], timemap: _TimeMap) -> tuple[TempoChange, ...]:
    changes: list[TempoChange] = []
    if not events or events[0][0] > 0:
        changes.append(TempoChange(0.0, 60_000_000 / DEFAULT_TEMPO))
    for tick, tempo in events:
        change = TempoChange(timemap.seconds_of(tick), 60_000_000 / tempo)
        if changes and changes[-1].time == change.time:
            changes[-1] = change  # several at one instant: the last one wins
        elif not changes or changes[-1].bpm != change.bpm:
            changes.append(change)
    return tuple(changes)


def _time_signatures(tracks: list[RawTrack], timemap: _TimeMap) -> tuple[TimeSignature, ...]:
    events: list[tuple[int, int, int]] = []
    for track in tracks:
        for tick, kind, payload in track.metas:
            if kind == META_TIME_SIGNATURE and len(payload) >= 2:
                numerator, power = payload[0], payload[1]
                if numerator >= 1 and power <= 6:
                    events.append((tick, numerator, 2**power))
    events.sort(key=lambda e: e[0])
    out: list[TimeSignature] = []
    for tick, numerator, denominator in events:
        sig = TimeSignature(timemap.seconds_of(tick), numerator, denominator)
        if out and out[-1].time == sig.time:
            out[-1] = sig
        elif not out or (out[-1].numerator, out[-1].denominator) != (numerator, denominator):
            out.append(sig)
    return tuple(out)


_GENERIC_NAME = re.compile(
    r"^(track|tr|trk|seq|sequence|part|staff|channel|ch|midi|untitled|instrument|voice|"
    r"tempo|tempo track|conductor|conductor track|control|control track|global|master|"
    r"meta|system|setup|song|new song|title|drums?|bass|melody|score|copyright.*|"
    r"\(c\).*|©.*|right hand|left hand|rh|lh|treble|master track|inst|"
    r"(grand |acoustic |electric |upright )?piano|)[\s\-_#.:]*\d*$",
    re.IGNORECASE,
)
_GM_NAMES_LOWER = frozenset(n.lower() for n in GM_PROGRAM_NAMES)


def _looks_like_title(name: str) -> bool:
    """A first-track name is a title unless it is empty, generic ("Track 1",
    "Tempo Track", "Piano") or an instrument name."""
    name = name.strip()
    if not name or len(name) > 120 or not any(ch.isalpha() for ch in name):
        return False
    if _GENERIC_NAME.match(name):
        return False
    return name.lower() not in _GM_NAMES_LOWER
