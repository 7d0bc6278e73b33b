"""An independent, deliberately simple note extraction with mido, to cross-check
``read_song``: tempo map merged from all tracks, FIFO pairing per (track, channel,
pitch), Fraction arithmetic for times. Slow, but obviously right."""

from __future__ import annotations

from collections import defaultdict, deque
from fractions import Fraction

import mido


def mido_notes(mid: mido.MidiFile) -> list[tuple[float, float, int, int, int, int]]:
    """Sorted (start, end, pitch, velocity, channel, track) with raw release times
    (no minimum length), unreleased notes closed at the last event."""
    ppq = mid.ticks_per_beat
    tempos: list[tuple[int, int]] = []
    end_tick = 0
    for track in mid.tracks:
        now = 0
        for msg in track:
            now += msg.time
            if msg.type == "set_tempo":
                tempos.append((now, msg.tempo))
        end_tick = max(end_tick, now)
    tempos.sort(key=lambda t: t[0])

    def seconds(tick: int) -> float:
        total = Fraction(0)
        prev_tick, tempo = 0, 500_000
        for t, value in tempos:
            if t > tick:
                break
            total += Fraction((t - prev_tick) * tempo, ppq * 1_000_000)
            prev_tick, tempo = t, value
        total += Fraction((tick - prev_tick) * tempo, ppq * 1_000_000)
        return float(total)

    notes = []
    for index, track in enumerate(mid.tracks):
        # First pass: plain FIFO, to learn which keys end with notes still open.
        now = 0
        events: dict[tuple[int, int], list[tuple[int, bool, int]]] = defaultdict(list)
        for msg in track:
            now += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                events[(msg.channel, msg.note)].append((now, True, msg.velocity))
            elif msg.type in ("note_off", "note_on"):
                events[(msg.channel, msg.note)].append((now, False, 0))
        for (channel, pitch), evs in events.items():
            queue: deque[tuple[int, int]] = deque()
            fifo = []
            for tick, is_on, vel in evs:
                if is_on:
                    queue.append((tick, vel))
                elif queue:
                    start, v = queue.popleft()
                    fifo.append((start, tick, pitch, v, channel, index))
            if not queue:
                notes.extend(fifo)
                continue
            # Re-struck without release: a note lasts until the next strike of the
            # key or the next note-off, whichever comes first.
            for j, (tick, is_on, vel) in enumerate(evs):
                if not is_on:
                    continue
                stop = end_tick
                for later, later_on, _ in evs[j + 1 :]:
                    if not later_on or later > tick:
                        stop = later
                        break
                notes.append((tick, stop, pitch, vel, channel, index))
    cache: dict[int, float] = {}

    def sec(tick: int) -> float:
        if tick not in cache:
            cache[tick] = seconds(tick)
        return cache[tick]

    out = [(sec(s), sec(e), p, v, c, t) for s, e, p, v, c, t in notes]
    out.sort(key=lambda n: (n[0], n[2], n[4], n[5]))
    return out
