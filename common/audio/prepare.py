"""The audio stage's entry point: synthesis, the user's recording, or nothing."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ..progress import CancelToken
from ..settings import RenderSettings
from ..song import Song
from ..timeline import Timeline
from .recording import place_recording
from .synth import synthesize

AUDIO_FILENAME = "audio.wav"


def prepare_audio(
    song: Song,
    settings: RenderSettings,
    timeline: Timeline,
    workdir: Path,
    *,
    cancel: CancelToken | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> Path | None:
    """Make the soundtrack: ``workdir/audio.wav`` (48 kHz, stereo, 16-bit PCM), or None.

    Sample 0 is video time 0 and the file holds exactly ``round(timeline.duration * 48000)``
    frames, so the muxer needs no offsets or trimming. The source is the user's recording
    (``settings.audio``, see ``recording`` for the offset convention), else the song
    synthesized with ``settings.soundfont`` or the General MIDI default; ``no_audio`` gives
    None. Raises AudioError for unusable input files and RenderCancelled on cancel; on any
    failure nothing is left behind in ``workdir``.
    """
    if settings.no_audio:
        return None
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / AUDIO_FILENAME
    part = workdir / (AUDIO_FILENAME + ".part")
    out.unlink(missing_ok=True)  # a stale file from an earlier run must not pass as this one's
    try:
        if settings.audio:
            place_recording(
                Path(settings.audio),
                settings,
                timeline,
                part,
                cancel=cancel,
                on_progress=on_progress,
            )
        else:
            synthesize(song, settings, timeline, part, cancel=cancel, on_progress=on_progress)
        os.replace(part, out)  # only a complete file ever carries the final name
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return out
