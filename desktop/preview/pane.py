"""``PreviewPane``: the live preview with its transport, for the studio window.

What the user sees is drawn by the same ``FrameRenderer`` the renders use, at the
widget's size (at most 720p) and in RGB; what they hear is the render's own
soundtrack. Settings changes rebuild the renderer off the UI thread while the last
picture stays on screen, then swap it in.
"""

from __future__ import annotations

from pathlib import Path

from notefall.common.engine import FrameRenderer, PixelFormat
from notefall.common.settings import RenderSettings
from notefall.common.song import Song
from notefall.common.timeline import Timeline, build_timeline
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QVBoxLayout, QWidget

from ..ops import ErrorReport, Operation, user_message
from ..signals import app_signals
from .clock import PlaybackClock, Tick
from .frames import DISPLAY_RATE, FrameProducer, PreviewFrame
from .sound import PreviewSound
from .transport import SPEEDS, TransportBar
from .view import FrameView, preview_size

TICK_MS = 1000 // DISPLAY_RATE  # the display tick while playing (a frame is picked per tick)
RESIZE_SETTLE_MS = 150  # redraw at a new size once the user stops dragging the splitter
SEEK_STEP = 5.0  # seconds for the arrow keys
FINE_SEEK_STEP = 1.0  # with Shift


def preview_settings(settings: RenderSettings, size: tuple[int, int]) -> RenderSettings:
    """The render's settings drawn at the preview's pixel size (nothing else changes)."""
    return settings.model_copy(update={"resolution": f"{size[0]}x{size[1]}", "vertical": False})


def build_renderer(song: Song, settings: RenderSettings, timeline: Timeline) -> FrameRenderer:
    fmt = PixelFormat.RGBA if settings.transparent else PixelFormat.RGB
    return FrameRenderer(song, settings, pixel_format=fmt, timeline=timeline)


class PreviewPane(QWidget):
    """Live preview: ``load``, ``apply_settings``, ``play``/``pause``/``toggle``, ``seek``,
    ``set_loop``, ``set_speed``.

    Signals: ``position_changed(video seconds)``, ``state_changed`` with "loading",
    "paused", "playing" or "ended", ``frame_shown(video seconds of the frame painted)``
    and ``audio_ready(Path | None)`` once the soundtrack exists.
    """

    position_changed = Signal(float)
    state_changed = Signal(str)
    frame_shown = Signal(float)
    audio_ready = Signal(object)
    _frame_ready = Signal()  # from the frame thread: a frame finished

    def __init__(self, parent: QWidget | None = None, *, audio_cache: Path | None = None) -> None:
        super().__init__(parent)
        self.clock = PlaybackClock()
        self.view = FrameView(self)
        self.transport = TransportBar(self)
        self.sound = PreviewSound(self, audio_cache)
        self.producer = FrameProducer(self._frame_ready.emit)
        self._frame_ready.connect(self._on_frame_ready, Qt.ConnectionType.QueuedConnection)
        # Deleted with its window without close_preview(): still stop the frame thread.
        self.destroyed.connect(self.producer.close)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.transport)
        self.setFocusProxy(self.view)

        self.song: Song | None = None
        self.settings: RenderSettings | None = None
        self.timeline: Timeline | None = None
        self.state = "empty"
        self._built: tuple[RenderSettings, tuple[int, int]] | None = None  # what is on screen
        self._building: tuple[RenderSettings, tuple[int, int]] | None = None
        self._scrub_resume = False

        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)
        self._resize_timer = QTimer(self)
        self._resize_timer.setSingleShot(True)
        self._resize_timer.setInterval(RESIZE_SETTLE_MS)
        self._resize_timer.timeout.connect(self._rebuild)
        self.view.resized.connect(self._view_resized)

        t = self.transport
        t.play_toggled.connect(self.toggle)
        t.seek_requested.connect(self.seek)
        t.scrub_started.connect(self._scrub_start)
        t.scrub_finished.connect(self._scrub_end)
        t.loop_in_requested.connect(self.set_loop_in)
        t.loop_out_requested.connect(self.set_loop_out)
        t.loop_cleared.connect(lambda: self.set_loop(None))
        t.speed_chosen.connect(self.set_speed)
        self.sound.position_reported.connect(self.clock.follow_audio)
        self.sound.ready.connect(self._sound_ready)
        self._shortcuts()
        self._set_enabled(False)

    # Public API -------------------------------------------------------------------------
    def load(self, song: Song, settings: RenderSettings, audio_path: Path | None = None) -> None:
        """Show ``song`` with ``settings`` from the start; ``audio_path`` is the user's
        recording (placed with ``settings.audio_offset_ms``), else the song is synthesized."""
        self.pause()
        if audio_path is not None:
            settings = settings.model_copy(update={"audio": str(audio_path), "soundfont": None})
        try:
            timeline = build_timeline(song, settings)
        except Exception as exc:  # e.g. a start after the song's end: say so, keep nothing
            self._report(exc)
            return
        self.song, self.settings, self.timeline = song, settings, timeline
        self._built = None
        self.producer.reset()
        self.clock.set_loop(None)
        self.clock.set_duration(timeline.duration)
        self.clock.seek(0.0)
        self.transport.set_duration(timeline.duration)
        self.transport.show_loop(None)
        self.transport.show_position(0.0)
        self.view.checkerboard = settings.transparent
        self.view.clear("Preparing the preview…")
        self._set_state("loading")
        self._set_enabled(True)
        self.sound.prepare(song, settings, timeline)
        self._rebuild()

    def apply_settings(self, settings: RenderSettings) -> None:
        """Show new settings; the same moment of the *song* stays on screen.

        ``settings`` are complete: a recording is ``settings.audio`` (as
        ``LocalProject.render_settings()`` gives them); without it the song is synthesized.
        """
        if self.song is None or self.settings is None or self.timeline is None:
            self.settings = settings
            return
        try:
            timeline = build_timeline(self.song, settings)
        except Exception as exc:
            self._report(exc)
            return
        old, song_time = self.timeline, self.timeline.song_time(self.clock.position())
        loop = self.clock.loop
        self.settings, self.timeline = settings, timeline
        if timeline != old:
            self.clock.set_duration(timeline.duration)
            self.transport.set_duration(timeline.duration)
            if loop is not None:
                a, b = (timeline.video_time_of_song(old.song_time(x)) for x in loop)
                self.clock.set_loop(a, b)
                self.transport.show_loop(self.clock.loop)
            self._seek_to(timeline.video_time_of_song(song_time))
        self.view.checkerboard = settings.transparent
        self.sound.prepare(self.song, settings, timeline)
        self._rebuild()

    def play(self) -> None:
        if self.timeline is None or self.clock.playing:
            return
        self.clock.play()
        pos = self.clock.position()
        self.producer.follow(pos, self.clock.speed, restart=True)
        self.sound.play(pos, self.clock.speed)
        self._timer.start()
        self.transport.show_playing(True)
        self._set_state("playing")

    def pause(self) -> None:
        if not self.clock.playing:
            return
        self.clock.pause()
        self._stopped(self.clock.position(), "paused")

    def toggle(self) -> None:
        if self.clock.playing:
            self.pause()
        else:
            self.play()

    def seek(self, seconds: float) -> None:
        if self.timeline is None:
            return
        self._seek_to(seconds)

    def set_loop(self, start: float | None, end: float | None = None) -> None:
        """Loop ``[start, end)`` in video seconds; ``end=None``: to the end; ``None``: off."""
        self.clock.set_loop(start, end)
        self.transport.show_loop(self.clock.loop)

    def set_loop_in(self) -> None:
        """Loop from the playhead (to the current out point, or the end)."""
        end = self.clock.loop[1] if self.clock.loop else None
        if end is not None and end <= self.clock.position():
            end = None
        self.set_loop(self.clock.position(), end)

    def set_loop_out(self) -> None:
        """Loop up to the playhead (from the current in point, or the start)."""
        start = self.clock.loop[0] if self.clock.loop else 0.0
        if start >= self.clock.position():
            start = 0.0
        self.set_loop(start, self.clock.position())

    def set_speed(self, speed: float) -> None:
        """Preview speed, 0.5× to 2× (the sound follows)."""
        s = self.clock.set_speed(speed)
        if self.clock.playing:
            self.producer.follow(self.clock.position(), s, restart=True)
        self.sound.set_rate(s)
        self.transport.show_speed(s)

    @property
    def duration(self) -> float:
        """Video seconds (0 before a song is loaded)."""
        return self.clock.duration

    @property
    def position(self) -> float:
        return self.clock.position()

    @property
    def shown_time(self) -> float | None:
        """Video time of the frame on screen, or None before the first frame."""
        return self.view.frame.time if self.view.frame is not None else None

    def close_preview(self) -> None:
        """Stop the frame thread and the sound (the window calls this when closing)."""
        self._timer.stop()
        self.producer.close()
        self.sound.close()

    # Playback ---------------------------------------------------------------------------
    def _tick(self) -> None:
        pos, what = self.clock.tick()
        if what == Tick.WRAPPED:
            self.producer.follow(pos, self.clock.speed, restart=True)
            self.sound.seek(pos)
        elif what == Tick.ENDED:
            self._stopped(pos, "ended")
            return
        else:
            self.producer.follow(pos, self.clock.speed)
        self._show(self.producer.take(pos))
        self._moved(pos)

    def _stopped(self, pos: float, state: str) -> None:
        self._timer.stop()
        self.producer.stop(pos)
        self.producer.request(pos)  # exactly the moment the clock stopped at
        self.sound.pause(pos)
        self.transport.show_playing(False)
        self._moved(pos)
        self._set_state(state)

    def _seek_to(self, seconds: float) -> None:
        pos = self.clock.seek(seconds)
        if self.clock.playing:
            self.producer.follow(pos, self.clock.speed, restart=True)
        else:
            self.producer.request(pos)
            if self.state == "ended":
                self._set_state("paused")
        self.sound.seek(pos)
        self._moved(pos)

    def _moved(self, pos: float) -> None:
        self.transport.show_position(pos)
        self.position_changed.emit(pos)

    def _sound_ready(self, path: Path | None) -> None:
        # Made in the background: join the picture where the clock is now.
        if self.clock.playing:
            self.sound.play(self.clock.position(), self.clock.speed)
        else:
            self.sound.seek(self.clock.position())
        self.audio_ready.emit(path)

    def _on_frame_ready(self) -> None:
        if not self.clock.playing:  # while playing, the tick picks frames
            self._show(self.producer.take(self.clock.position()))

    def _show(self, frame: PreviewFrame | None) -> None:
        if frame is None:
            return
        self.view.show_frame(frame)
        if self.state == "loading":
            self._set_state("playing" if self.clock.playing else "paused")
        self.frame_shown.emit(frame.time)

    def _scrub_start(self) -> None:
        self._scrub_resume = self.clock.playing
        self.pause()

    def _scrub_end(self) -> None:
        if self._scrub_resume:
            self.play()

    # Renderer ---------------------------------------------------------------------------
    def _view_resized(self) -> None:
        if self._built is None and self._building is None:
            self._rebuild()  # nothing on screen yet: draw at once
        else:
            self._resize_timer.start()  # redraw at the new size once resizing settles

    def _rebuild(self) -> None:
        """Build a renderer for the current settings and size, off the UI thread."""
        if self.song is None or self.settings is None or self.timeline is None:
            return
        if not self.view.isVisible():
            return  # not laid out yet: its size means nothing; showing it resizes it
        size = preview_size(self.settings.size, self.view.pixel_space())
        wanted = (self.settings, size)
        if wanted == self._built or wanted == self._building:
            return
        if self._building is not None:
            return  # one build at a time (two cores); the newest wish is built next
        self._building = wanted
        song, timeline = self.song, self.timeline
        drawn = preview_settings(self.settings, size)

        def done(renderer: FrameRenderer) -> None:
            self._building = None
            if self.song is song:
                self._built = wanted
                self.producer.set_renderer(renderer)
                if not self.clock.playing:
                    self.producer.request(self.clock.position())
            self._rebuild()  # settings or size may have moved on meanwhile

        def failed(exc: Exception) -> None:
            self._building = None
            self._report(exc)

        Operation(self, lambda ctx: build_renderer(song, drawn, timeline), done).failure(
            failed
        ).run_in_background()

    # Helpers ----------------------------------------------------------------------------
    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state)

    def _set_enabled(self, enabled: bool) -> None:
        self.transport.setEnabled(enabled)

    def _report(self, exc: Exception) -> None:
        app_signals().error_raised.emit(
            ErrorReport(f"The preview cannot show this: {user_message(exc)}")
        )

    def _step_speed(self, direction: int) -> None:
        i = min(range(len(SPEEDS)), key=lambda k: abs(SPEEDS[k] - self.clock.speed))
        self.set_speed(SPEEDS[max(0, min(len(SPEEDS) - 1, i + direction))])

    def _shortcuts(self) -> None:
        keys = {
            "Space": self.toggle,
            "K": self.toggle,
            "Left": lambda: self.seek(self.clock.position() - SEEK_STEP),
            "Right": lambda: self.seek(self.clock.position() + SEEK_STEP),
            "Shift+Left": lambda: self.seek(self.clock.position() - FINE_SEEK_STEP),
            "Shift+Right": lambda: self.seek(self.clock.position() + FINE_SEEK_STEP),
            "Home": lambda: self.seek(0.0),
            "End": lambda: self.seek(self.clock.duration),
            "I": self.set_loop_in,
            "O": self.set_loop_out,
            "L": lambda: self.set_loop(None),
            "-": lambda: self._step_speed(-1),
            "+": lambda: self._step_speed(1),
            "=": lambda: self._step_speed(1),
        }
        for key, action in keys.items():
            shortcut = QShortcut(QKeySequence(key), self)
            # Only while the preview (or its transport) has focus: the window's own
            # shortcuts and text fields in the inspector keep their keys.
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(action)
