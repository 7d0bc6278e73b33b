"""The user's own recording: decoded by FFmpeg and placed on the video timeline.

Offset convention (``settings.audio_offset_ms``): **a positive offset delays the
recording**. With +200 ms, what is at 0.0 s in the recording is heard together with the
note at song time 0.2 s, i.e. ``song_time = recording_time + offset``. Use a positive
offset when the notes come too early relative to the sound, a negative one when the
sound comes too early. Recording time 0 is song time 0 (the MIDI file's start) when the
offset is 0.

``speed`` is applied with FFmpeg's ``rubberband`` (or ``atempo`` when the build lacks it),
pitch kept, so the recording stays in step with the notes at any speed; the offset is in
recording (song) time, so it is scaled by the speed like everything else.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from ..progress import CancelToken
from ..settings import RenderSettings
from ..timeline import Timeline
from ._ffmpeg import decode_command, probe_audio, stream_stdout, tempo_delay_samples
from ._wav import SAMPLE_RATE, WavWriter

_FRAME_BYTES = 4  # s16le stereo


def recording_start_sample(timeline: Timeline, offset_ms: int) -> int:
    """Video sample at which the recording's first sample plays (may be negative)."""
    return round(timeline.video_time_of_song(offset_ms / 1000.0) * SAMPLE_RATE)


def place_recording(
    audio: Path,
    settings: RenderSettings,
    timeline: Timeline,
    out_path: Path,
    *,
    cancel: CancelToken | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> None:
    """Write ``audio`` as a 48 kHz stereo 16-bit WAV covering exactly the video's duration.

    The caller removes ``out_path`` on failure.
    """
    report = on_progress or (lambda _f: None)
    info = probe_audio(audio)  # AudioError for missing, non-audio or audio-less files
    total = round(timeline.duration * SAMPLE_RATE)
    # The tempo filter shifts audio by a few tens of ms; starting it that much later
    # (earlier) cancels the shift, so notes and sound stay together at any speed.
    delay = tempo_delay_samples(timeline.speed, SAMPLE_RATE)
    first = recording_start_sample(timeline, settings.audio_offset_ms) - delay
    with WavWriter(out_path) as wav:
        lead = min(max(first, 0), total)
        wav.write_silence(lead)
        if lead < total:
            skip = max(-first, 0) * _FRAME_BYTES  # the part before video time 0 is cut
            need = (total - lead) * _FRAME_BYTES
            args = decode_command(
                audio, info, rate=SAMPLE_RATE, sample_format="s16le", tempo=timeline.speed
            )
            chunks = stream_stdout(args, cancel=cancel, what=f"recording {audio.name}")
            with closing(chunks):  # closing early kills ffmpeg: the rest is not needed
                for chunk in chunks:
                    if skip:
                        dropped = min(skip, len(chunk))
                        skip -= dropped
                        chunk = chunk[dropped:]
                    if chunk:
                        take = chunk[:need]
                        wav.write_pcm16(take)
                        need -= len(take)
                        report(wav.frames / total)
                    if need == 0:
                        break
            # A recording that ends before the video does is followed by silence.
            wav.write_silence(total - wav.frames)
    report(1.0)
