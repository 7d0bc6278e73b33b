"""The preview's sound: the render's own soundtrack, made in the background and played.

The WAV comes from ``notefall.common.audio.prepare_audio`` — the very audio stage a
render runs — so the preview plays the same SoundFont synthesis (or the user's
recording, placed with ``audio_offset_ms`` and stretched to the render's ``speed``)
on the same video timeline: sample 0 is video time 0. Files are cached by what they
depend on (the song's events and the audio settings), so changing a colour never
re-synthesizes, and switching back to an earlier speed is instant.

Playback uses QtMultimedia (``QMediaPlayer`` + ``QAudioOutput``) when the machine
has an audio output; without one the preview runs silent on its own clock.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs
from notefall.common.settings import RenderSettings
from notefall.common.song import Song
from notefall.common.timeline import Timeline
from PySide6.QtCore import QObject, QUrl, Signal

from ..ops import OpContext, Operation, OpHandle
from ..settings import APP_NAME, DATA_DIR_ENV, ORGANISATION

if TYPE_CHECKING:
    from PySide6.QtMultimedia import QAudioOutput, QMediaPlayer

# Settings that change the soundtrack; the others (colours, size, labels…) do not.
AUDIO_FIELDS = (
    "speed",
    "start",
    "end",
    "lead_in",
    "tail",
    "drums",
    "audio",
    "audio_offset_ms",
    "soundfont",
    "no_audio",
)
CACHE_KEPT = 8  # soundtracks kept in the cache folder (each ~11 MB per minute)


def default_cache_dir() -> Path:
    """The platform's cache folder (inside the app-data override when one is set, as in tests)."""
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override) / "cache" / "preview-audio"
    return Path(platformdirs.user_cache_dir(APP_NAME, ORGANISATION)) / "preview-audio"


def soundtrack_key(song: Song, settings: RenderSettings) -> str:
    """A name for the soundtrack of ``song`` under ``settings`` (same inputs, same name)."""
    h = hashlib.sha256()
    for arr in (song.notes, song.pedals, song.controls):
        h.update(arr.tobytes())
    fields = settings.model_dump(mode="json", include=set(AUDIO_FIELDS))
    h.update(json.dumps(fields, sort_keys=True).encode())
    for name in ("audio", "soundfont"):  # an edited file under the same name is a new sound
        value = getattr(settings, name)
        if value:
            try:
                st = os.stat(value)
                h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
            except OSError:
                pass  # prepare_audio reports the missing file clearly
    return h.hexdigest()[:24]


def make_soundtrack(
    song: Song, settings: RenderSettings, timeline: Timeline, cache_dir: Path, ctx: OpContext
) -> Path | None:
    """The cached soundtrack for these inputs, synthesized (or placed) when missing."""
    if settings.no_audio:
        return None
    folder = cache_dir / soundtrack_key(song, settings)
    wav = folder / "audio.wav"
    if wav.is_file():
        os.utime(folder)  # most recently used: kept longest
        return wav
    from notefall.common.audio import prepare_audio  # deferred: not needed to open the window

    result = prepare_audio(
        song, settings, timeline, folder, cancel=ctx.cancel_token, on_progress=ctx.report
    )
    _prune(cache_dir, keep=folder)
    return result


def _prune(cache_dir: Path, keep: Path) -> None:
    folders = sorted(
        (p for p in cache_dir.iterdir() if p.is_dir() and p != keep),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in folders[CACHE_KEPT - 1 :]:
        shutil.rmtree(old, ignore_errors=True)


class PreviewSound(QObject):
    """Makes the soundtrack in the background and, with an audio device, plays it."""

    ready = Signal(object)  # Path of the WAV, or None for a silent video
    progressed = Signal(float)  # 0..1 while synthesizing
    position_reported = Signal(float)  # video seconds, from the audio player

    def __init__(self, parent: QObject | None = None, cache_dir: Path | None = None) -> None:
        super().__init__(parent)
        self.cache_dir = cache_dir or default_cache_dir()
        self.path: Path | None = None
        self._job: OpHandle | None = None
        self._key: str | None = None
        self._player: QMediaPlayer | None = None
        self._output: QAudioOutput | None = None
        self._rate = 1.0
        self._playing = False
        self._looked_for_device = False

    def _find_device(self) -> None:
        """Set up the player once, when the first soundtrack is ready (QtMultimedia's
        start-up is kept out of the app's cold start)."""
        if self._looked_for_device:
            return
        self._looked_for_device = True
        from PySide6.QtMultimedia import QAudioOutput, QMediaDevices, QMediaPlayer

        if QMediaDevices.audioOutputs():
            self._output = QAudioOutput(self)
            self._player = QMediaPlayer(self)
            self._player.setAudioOutput(self._output)
            self._player.positionChanged.connect(self._on_player_position)
            # At 0.5× a piece should sound slower, not an octave lower (Qt 6.10+, when the
            # backend can).
            if hasattr(self._player, "setPitchCompensation"):
                self._player.setPitchCompensation(True)

    @property
    def has_device(self) -> bool:
        """True when sound is actually heard (and the clock follows it)."""
        self._find_device()
        return self._player is not None

    def prepare(self, song: Song, settings: RenderSettings, timeline: Timeline) -> None:
        """Make (or find) the soundtrack for these settings; ``ready`` when done."""
        key = "silent" if settings.no_audio else soundtrack_key(song, settings)
        if key == self._key:
            return
        self._key = key
        if self._job is not None:
            self._job.cancel()
        # The old soundtrack no longer matches the picture's timeline: silence until the
        # new one is ready (a few seconds at most) rather than music out of step.
        self.path = None
        if self._player is not None:
            self._player.setSource(QUrl())
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        cache_dir = self.cache_dir

        def done(path: Path | None, key: str = key) -> None:
            if key == self._key:
                self._use(path)

        def failed(exc: Exception, key: str = key) -> None:
            if key == self._key:
                self._key = None  # a retry after fixing the file must run again
            from ..ops import ErrorReport, user_message
            from ..signals import app_signals

            app_signals().error_raised.emit(
                ErrorReport(f"The preview plays without sound: {user_message(exc)}")
            )

        self._job = (
            Operation(
                self, lambda ctx: make_soundtrack(song, settings, timeline, cache_dir, ctx), done
            )
            .failure(failed)
            .progress(lambda f: self.progressed.emit(float(f)))
            .cancellable()
            .run_in_background()
        )

    def _use(self, path: Path | None) -> None:
        """Load the finished soundtrack; the pane then starts it at the clock's position."""
        self.path = path
        self._find_device()
        if self._player is not None:
            self._player.setSource(QUrl.fromLocalFile(str(path)) if path else QUrl())
            self._player.setPlaybackRate(self._rate)
        self.ready.emit(path)

    # Transport (video seconds) ------------------------------------------------------------
    def play(self, position: float, rate: float) -> None:
        self._playing, self._rate = True, rate
        if self._player is not None and self.path is not None:
            self._player.setPlaybackRate(rate)
            self._player.setPosition(round(position * 1000))
            self._player.play()

    def pause(self, position: float) -> None:
        self._playing = False
        if self._player is not None:
            self._player.pause()
            if self.path is not None:
                self._player.setPosition(round(position * 1000))

    def seek(self, position: float) -> None:
        if self._player is not None and self.path is not None:
            self._player.setPosition(round(position * 1000))

    def set_rate(self, rate: float) -> None:
        self._rate = rate
        if self._player is not None:
            self._player.setPlaybackRate(rate)

    @property
    def rate(self) -> float:
        return self._rate

    def _on_player_position(self, ms: int) -> None:
        if self._playing:
            self.position_reported.emit(ms / 1000.0)

    def close(self) -> None:
        if self._job is not None:
            self._job.cancel()
        if self._player is not None:
            self._player.stop()
