"""MIDI → WAV with TinySoundFont, sample-accurate on the video timeline and streamed to disk.

How it works:

* Every note on/off and controller event is turned into a *video sample position*
  ``round(timeline.video_time_of_song(t) * 48000)``; synthesis therefore runs in video
  time, so ``speed`` shortens the music without changing its pitch.
* The synthesizer renders exactly up to the next event's sample, applies the event,
  and continues: onsets land on their sample, not on a block boundary.
* Output goes to disk one second at a time. Pass 1 writes raw float32 (no clipping
  possible) and measures the peak; pass 2 scales to the target peak and writes the
  16-bit WAV. Memory stays at a few blocks however long the song is.
* TinySoundFont ignores CC64, so the sustain pedal is done here: a note-off while the
  pedal is down is held back until the pedal goes up.
"""

from __future__ import annotations

import importlib.util
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import AudioError
from ..progress import CancelToken
from ..settings import Drums, RenderSettings
from ..song import CONTROL_CC, CONTROL_DTYPE, CONTROL_PITCHBEND, CONTROL_PROGRAM, DRUM_CHANNEL, Song
from ..timeline import Timeline
from ._wav import BLOCK_FRAMES, SAMPLE_RATE, WavWriter

# Loudness: TimGM6mb at 0 dB peaks around −10 dBFS on a full fortissimo chord, so the
# synth runs at 0 dB and pass 2 normalises the peak to −1 dBFS (headroom for the AAC
# encoder's inter-sample overs). The boost is capped so a nearly silent song is not
# blown up into audible noise.
SYNTH_GAIN_DB = 0.0
TARGET_PEAK_DB = -1.0
MAX_BOOST_DB = 20.0
MAX_VOICES = 256

# Notes already sounding when the video starts (a clip from mid-song) are started this
# long before sample 0 at most, so their attack is over and they are heard mid-decay.
PREROLL_MAX_S = 5.0
# A note released shortly before sample 0 still rings through its release envelope.
RELEASE_MARGIN_S = 2.0

_K_OFF, _K_ON, _K_PROGRAM, _K_CC, _K_BEND = 0, 1, 2, 3, 4
# At one sample position: note-offs first (a re-struck key must not silence the new
# note), then controllers and program changes, then note-ons (so they use the new sound).
_PRIORITY = {_K_OFF: 0, _K_PROGRAM: 1, _K_CC: 1, _K_BEND: 1, _K_ON: 2}
_EVENT_DTYPE = np.dtype(
    [
        ("pos", "i8"),
        ("prio", "u1"),
        ("seq", "i8"),
        ("kind", "u1"),
        ("chan", "u1"),
        ("a", "i2"),
        ("b", "i2"),
    ]
)
_CC_SUSTAIN = 64
_CC_ALL_OFF = (120, 123)
_CC_RESET = 121
_EVENT_CHUNK = 8192  # events turned into Python ints at a time (bounded memory)


def default_soundfont() -> Path:
    """The General MIDI SoundFont shipped in the pretty_midi wheel (TimGM6mb.sf2).

    Located with ``find_spec`` so pretty_midi itself (and its heavy imports) is never loaded.
    """
    spec = importlib.util.find_spec("pretty_midi")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / "TimGM6mb.sf2"
        if candidate.is_file():
            return candidate
    raise AudioError("The default SoundFont (TimGM6mb.sf2 from pretty_midi) is not installed.")


def check_soundfont(path: Path) -> None:
    """Raise AudioError unless ``path`` is an existing SF2/SF3 file (checks the RIFF header)."""
    if not path.is_file():
        raise AudioError(f"SoundFont not found: {path}")
    with path.open("rb") as f:
        head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise AudioError(f"{path.name} is not a SoundFont; use an .sf2 or .sf3 file.")


@dataclass(frozen=True, slots=True)
class SynthStats:
    peak: float  # before normalisation, linear
    gain_db: float  # applied in pass 2
    seconds: float  # wall time of synthesis
    audio_seconds: float


def synthesize(
    song: Song,
    settings: RenderSettings,
    timeline: Timeline,
    out_path: Path,
    *,
    cancel: CancelToken | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> SynthStats:
    """Write the synthesized song to ``out_path`` (16-bit stereo 48 kHz WAV).

    Sample 0 is video time 0; the file has exactly ``round(timeline.duration * 48000)``
    frames. The caller removes ``out_path`` on failure; the float scratch file made
    next to it is always removed here.
    """
    import tinysoundfont  # deferred: only synthesis needs the extension module

    t0 = time.perf_counter()
    sf_path = Path(settings.soundfont) if settings.soundfont else default_soundfont()
    check_soundfont(sf_path)
    synth = tinysoundfont.Synth(gain=SYNTH_GAIN_DB, samplerate=SAMPLE_RATE)
    try:
        sfid = synth.sfload(str(sf_path), max_voices=MAX_VOICES)
    except (RuntimeError, OSError) as exc:
        raise AudioError(f"{sf_path.name} is a damaged or unsupported SoundFont ({exc}).") from None
    if synth.soundfonts[sfid].get_preset_count() == 0:
        raise AudioError(f"{sf_path.name} contains no instruments.")

    total = round(timeline.duration * SAMPLE_RATE)
    events, start = _build_events(song, timeline, total, mute_drums=settings.drums == Drums.MUTE)

    report = on_progress or (lambda _f: None)
    scratch = out_path.with_name(out_path.name + ".f32")
    try:
        with scratch.open("wb") as raw:
            player = _Player(synth, sfid, raw, start, total, cancel, report)
            player.run(events)
        peak = player.peak
        gain_db = _normalising_gain_db(peak)
        _finish(scratch, out_path, total, 10 ** (gain_db / 20), cancel, report)
    finally:
        scratch.unlink(missing_ok=True)
    report(1.0)
    return SynthStats(peak, gain_db, time.perf_counter() - t0, total / SAMPLE_RATE)


def _normalising_gain_db(peak: float) -> float:
    if peak <= 0.0:
        return 0.0
    return min(TARGET_PEAK_DB - 20 * math.log10(peak), MAX_BOOST_DB)


# Event list -------------------------------------------------------------------------------


def _positions(times: np.ndarray, tl: Timeline) -> np.ndarray:
    """Video sample of each song time: the same float operations as ``video_time_of_song``,
    and ``np.rint`` rounds half to even like Python's ``round``."""
    return np.rint((tl.lead_in + (times - tl.song_from) / tl.speed) * SAMPLE_RATE).astype(np.int64)


def _song_controls(song: Song) -> np.ndarray:
    """The song's controller events, plus CC64 made from ``pedals`` if the parser kept the
    pedal only there (the model documents both; either alone must sustain)."""
    controls = song.controls
    has_cc64 = bool(np.any((controls["kind"] == CONTROL_CC) & (controls["a"] == _CC_SUSTAIN)))
    if has_cc64 or song.pedals.shape[0] == 0:
        return controls
    pedals = song.pedals
    extra = np.zeros(2 * pedals.shape[0], CONTROL_DTYPE)
    extra["time"] = np.concatenate([pedals["start"], pedals["end"]])
    extra["channel"] = np.concatenate([pedals["channel"], pedals["channel"]])
    extra["kind"] = CONTROL_CC
    extra["a"] = _CC_SUSTAIN
    extra["b"][: pedals.shape[0]] = 127
    merged = np.concatenate([controls, extra])
    return merged[np.argsort(merged["time"], kind="stable")]


def _build_events(
    song: Song, tl: Timeline, total: int, *, mute_drums: bool
) -> tuple[np.ndarray, int]:
    """All synth events sorted by (sample, priority, original order), clipped to the video,
    and the (non-positive) sample where synthesis starts.

    Events before the pre-roll start are moved onto it (controllers keep their order, so
    the channel state at the start is what the song had set up by then).
    """
    notes = song.notes
    if mute_drums:
        notes = notes[notes["channel"] != DRUM_CHANNEL]
    on = _positions(notes["start"], tl)
    off = _positions(np.maximum(notes["end"], notes["sound_end"]), tl)
    off = np.maximum(off, on + 1)  # a zero-length note still sounds (and never sticks)

    ringing = (on < 0) & (off > -round(RELEASE_MARGIN_S * SAMPLE_RATE))
    start = 0
    if np.any(ringing):
        start = max(int(on[ringing].min()), -round(PREROLL_MAX_S * SAMPLE_RATE))
    keep = (off > start) & (on < total)
    notes, on, off = notes[keep], np.maximum(on[keep], start), off[keep]

    controls = _song_controls(song)
    c_pos = np.maximum(_positions(controls["time"], tl), start)
    c_keep = c_pos < total
    controls, c_pos = controls[c_keep], c_pos[c_keep]

    n, m = notes.shape[0], controls.shape[0]
    ev = np.zeros(2 * n + m, _EVENT_DTYPE)
    ev["pos"][:n], ev["kind"][:n], ev["prio"][:n] = on, _K_ON, _PRIORITY[_K_ON]
    ev["pos"][n : 2 * n], ev["kind"][n : 2 * n], ev["prio"][n : 2 * n] = off, _K_OFF, 0
    for sl in (slice(0, n), slice(n, 2 * n)):
        ev["chan"][sl] = notes["channel"]
        ev["a"][sl] = notes["pitch"]
        ev["b"][sl] = notes["velocity"]
        ev["seq"][sl] = np.arange(n)
    c = slice(2 * n, 2 * n + m)
    kind_map = np.full(256, _K_CC, np.uint8)
    kind_map[CONTROL_PROGRAM], kind_map[CONTROL_PITCHBEND] = _K_PROGRAM, _K_BEND
    ev["pos"][c] = c_pos
    ev["kind"][c] = kind_map[controls["kind"]]
    ev["prio"][c] = 1
    ev["chan"][c] = controls["channel"]
    ev["a"][c] = controls["a"]
    ev["b"][c] = controls["b"]
    ev["seq"][c] = np.arange(m)
    ev = ev[ev["pos"] < total]  # a note-off after the last sample changes nothing we write
    order = np.lexsort((ev["seq"], ev["prio"], ev["pos"]))
    return ev[order], start


# Playback -----------------------------------------------------------------------------------


class _Player:
    """Runs the event list through the synth, rendering between events into 1 s blocks."""

    def __init__(
        self,
        synth: Any,  # tinysoundfont.Synth (the package ships no type information)
        sfid: int,
        raw: BinaryIO,
        start: int,
        total: int,
        cancel: CancelToken | None,
        report: Callable[[float], None],
    ) -> None:
        self.synth = synth
        self.sfid = sfid
        self.font = synth.soundfonts[sfid]
        self.raw = raw
        self.total = total
        self.start = start
        self.cancel = cancel
        self.report = report
        self.peak = 0.0
        self.buf = np.zeros((BLOCK_FRAMES, 2), np.float32)
        self.cursor = start
        self.block_start = start
        self.block_end = self._block_end(start)
        self.sustain = [False] * 16
        self.held: list[list[int]] = [[] for _ in range(16)]
        for ch in range(16):
            self._program(ch, 0, 0)

    def _block_end(self, block_start: int) -> int:
        end = min(block_start + BLOCK_FRAMES, self.total)
        # Pre-roll blocks stop at sample 0 so every written block starts at or after it.
        return min(end, 0) if block_start < 0 else end

    def run(self, events: np.ndarray) -> None:
        for i in range(0, events.shape[0], _EVENT_CHUNK):
            chunk = events[i : i + _EVENT_CHUNK]
            rows = zip(
                chunk["pos"].tolist(),
                chunk["kind"].tolist(),
                chunk["chan"].tolist(),
                chunk["a"].tolist(),
                chunk["b"].tolist(),
                strict=True,
            )
            for pos, kind, ch, a, b in rows:
                if pos > self.cursor:
                    self.render_until(min(pos, self.total))
                self.apply(kind, ch, a, b)
        self.render_until(self.total)

    def render_until(self, target: int) -> None:
        while self.cursor < target:
            end = min(target, self.block_end)
            lo, hi = self.cursor - self.block_start, end - self.block_start
            self.synth.generate_simple(hi - lo, buffer=self.buf[lo:hi].data)
            self.cursor = end
            if self.cursor == self.block_end:
                self._flush()

    def _flush(self) -> None:
        n = self.block_end - self.block_start
        if self.block_start >= 0:  # pre-roll output is only there to warm up voices
            block = self.buf[:n]
            self.peak = max(self.peak, float(np.abs(block).max(initial=0.0)))
            block.tofile(self.raw)
            self.report(0.95 * self.block_end / max(self.total, 1))
        if self.cancel is not None:
            self.cancel.raise_if_cancelled()
        self.block_start = self.block_end
        self.block_end = self._block_end(self.block_start)

    def apply(self, kind: int, ch: int, a: int, b: int) -> None:
        s = self.synth
        if kind == _K_ON:
            if b > 0:
                s.noteon(ch, a, b)
            else:  # velocity 0 is a note-off in MIDI; the parser should not emit it, but be safe
                self._note_off(ch, a)
        elif kind == _K_OFF:
            self._note_off(ch, a)
        elif kind == _K_PROGRAM:
            self._program(ch, b, a)
        elif kind == _K_BEND:
            s.pitchbend(ch, min(max(b, 0), 16383))
        elif a == _CC_SUSTAIN:
            self._sustain(ch, b >= 64)
        else:
            if a in _CC_ALL_OFF:
                self.held[ch].clear()
            elif a == _CC_RESET:
                self._sustain(ch, False)
            s.control_change(ch, a & 127, min(max(b, 0), 127))

    def _note_off(self, ch: int, key: int) -> None:
        if self.sustain[ch]:
            self.held[ch].append(key)
        else:
            self.synth.noteoff(ch, key)

    def _sustain(self, ch: int, down: bool) -> None:
        self.sustain[ch] = down
        if not down:
            for key in self.held[ch]:  # oldest first: TinySoundFont releases the oldest voice
                self.synth.noteoff(ch, key)
            self.held[ch].clear()

    def _program(self, ch: int, bank: int, program: int) -> None:
        """Select bank/program; channel 10 uses the drum banks. A preset the SoundFont
        lacks falls back (TinySoundFont tries bank 0 itself) and finally to the first preset,
        so a one-instrument SoundFont still plays every channel."""
        drums = ch == DRUM_CHANNEL
        try:
            self.synth.program_select(ch, self.sfid, bank & 0x3FFF, program & 127, is_drums=drums)
        except RuntimeError:
            try:
                self.synth.program_select(ch, self.sfid, 0, 0, is_drums=drums)
            except RuntimeError:
                self.font.channel_set_preset_index(ch, 0)


def _finish(
    scratch: Path,
    out_path: Path,
    total: int,
    gain: float,
    cancel: CancelToken | None,
    report: Callable[[float], None],
) -> None:
    """Pass 2: float scratch → 16-bit WAV at ``gain``, one block at a time."""
    with scratch.open("rb") as raw, WavWriter(out_path) as wav:
        done = 0
        while done < total:
            block = np.fromfile(raw, np.float32, count=2 * BLOCK_FRAMES).reshape(-1, 2)
            if block.shape[0] == 0:
                break
            wav.write_float(block, gain)
            done += block.shape[0]
            if cancel is not None:
                cancel.raise_if_cancelled()
            report(0.95 + 0.05 * done / max(total, 1))
        if wav.frames != total:  # cannot happen unless the scratch file was truncated
            raise AudioError(f"internal error: wrote {wav.frames} of {total} audio frames")
