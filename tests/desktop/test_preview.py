"""The live preview on a real Qt event loop: frames from the engine, settings, sound.

Pictures are checked against ``FrameRenderer.render_at`` at the same moment and size —
the preview must show exactly what a render draws.
"""

from __future__ import annotations

import itertools
import wave
from pathlib import Path

import numpy as np
import pytest
from notefall.common.audio._wav import SAMPLE_RATE
from notefall.common.engine import FrameRenderer, PixelFormat
from notefall.common.midi import read_song
from notefall.common.settings import RenderSettings
from notefall.common.song import Song
from notefall.common.timeline import build_timeline
from notefall.desktop.ops import ErrorReport
from notefall.desktop.preview import PreviewPane
from notefall.desktop.preview.pane import preview_settings
from notefall.desktop.preview.view import preview_size
from notefall.desktop.signals import app_signals
from PySide6.QtGui import QColor

BACKDROP = (18, 18, 22)  # the pane's colour around the picture


@pytest.fixture
def song(midi_file: Path) -> Song:
    return read_song(midi_file)


@pytest.fixture
def pane(qtbot):
    widget = PreviewPane()
    qtbot.addWidget(widget)
    widget.resize(800, 500)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    widget.close_preview()


def loaded(qtbot, pane: PreviewPane, song: Song, settings: RenderSettings, **kw) -> PreviewPane:
    pane.load(song, settings, **kw)
    qtbot.waitUntil(lambda: pane.state == "paused" and pane.shown_time == 0.0, timeout=10_000)
    return pane


def reference(song: Song, settings: RenderSettings, pane: PreviewPane, t: float) -> np.ndarray:
    """What the render engine draws at ``t`` at the size the preview shows."""
    assert pane.view.frame is not None
    h, w = pane.view.frame.pixels.shape[:2]
    renderer = FrameRenderer(song, preview_settings(settings, (w, h)), pixel_format=PixelFormat.RGB)
    return renderer.render_at(t).to_rgb_array()


def shown(pane: PreviewPane) -> np.ndarray:
    assert pane.view.frame is not None
    return pane.view.frame.pixels.copy()


def test_loading_a_song_shows_its_first_frame_with_the_keyboard(qtbot, pane, song, screenshot):
    states: list[str] = []
    pane.state_changed.connect(states.append)
    settings = RenderSettings(title="Little Tune")
    loaded(qtbot, pane, song, settings)
    assert states[:2] == ["loading", "paused"]
    pixels = shown(pane)
    np.testing.assert_array_equal(pixels, reference(song, settings, pane, 0.0))
    # The picture on screen (the painted widget, not just the buffer): white keys at the bottom.
    image = pane.view.grab().toImage()
    rect = pane.view.image_rect()
    key_row = rect.top() + round(rect.height() * 0.96)  # below the black keys
    colours = [QColor(image.pixel(x, key_row)) for x in range(rect.left() + 5, rect.right(), 25)]
    bright = [c for c in colours if c.lightness() > 180]
    assert len(bright) > len(colours) // 2
    assert all((c.red(), c.green(), c.blue()) != BACKDROP for c in colours)
    screenshot(pane, "preview-first-frame")


def test_the_preview_keeps_the_videos_aspect_and_stays_within_720p(qtbot, pane, song):
    pane.resize(1900, 1200)
    loaded(qtbot, pane, song, RenderSettings(resolution="1080p"))
    h, w = shown(pane).shape[:2]
    assert w <= 1280 and h <= 720
    assert w / h == pytest.approx(16 / 9, rel=0.02)


def test_a_song_loaded_while_hidden_is_drawn_at_the_size_it_is_shown_at(qtbot, song):
    pane = PreviewPane()
    qtbot.addWidget(pane)
    try:
        pane.load(song, RenderSettings())
        assert pane.state == "loading"
        pane.resize(960, 620)
        pane.show()
        qtbot.waitUntil(lambda: pane.shown_time == 0.0, timeout=10_000)
        h, w = shown(pane).shape[:2]
        rect = pane.view.image_rect()
        assert (w, h) == (rect.width(), rect.height())  # drawn 1:1, not scaled up
        assert w >= 900
    finally:
        pane.close_preview()


def test_resizing_redraws_at_the_new_size(qtbot, pane, song):
    loaded(qtbot, pane, song, RenderSettings())
    before = shown(pane).shape
    pane.resize(400, 300)
    qtbot.waitUntil(lambda: pane.view.frame is not None and pane.view.frame.pixels.shape != before)
    h, w = shown(pane).shape[:2]
    assert w <= 400 and h <= 300


def test_a_vertical_video_is_previewed_upright(qtbot, pane, song, screenshot):
    pane.resize(500, 800)
    loaded(qtbot, pane, song, RenderSettings(vertical=True))
    h, w = shown(pane).shape[:2]
    assert h > w
    assert w / h == pytest.approx(9 / 16, rel=0.03)
    screenshot(pane, "preview-vertical")


def test_a_transparent_video_shows_a_checkerboard_through_its_background(
    qtbot, pane, song, screenshot
):
    settings = RenderSettings(transparent=True, format="webm")
    loaded(qtbot, pane, song, settings)
    pixels = shown(pane)
    assert pixels.shape[2] == 4  # RGBA: what the render's alpha channel will hold
    h, w = pixels.shape[:2]
    expected = FrameRenderer(
        song, preview_settings(settings, (w, h)), pixel_format=PixelFormat.RGBA
    ).render_at(0.0)
    np.testing.assert_array_equal(pixels, expected.to_rgb_array())
    image = pane.view.grab().toImage()
    rect = pane.view.image_rect()
    row = rect.top() + rect.height() // 2
    greys = {QColor(image.pixel(x, row)).red() for x in range(rect.left() + 2, rect.left() + 60)}
    assert len(greys) >= 2  # the light and dark squares show through the empty background
    screenshot(pane, "preview-transparent")


def test_seeking_shows_the_frame_for_that_moment(qtbot, pane, song):
    settings = RenderSettings()
    loaded(qtbot, pane, song, settings)
    moved: list[float] = []
    pane.position_changed.connect(moved.append)
    pane.seek(3.0)
    qtbot.waitUntil(lambda: pane.shown_time == 3.0)
    assert moved[-1] == 3.0
    np.testing.assert_array_equal(shown(pane), reference(song, settings, pane, 3.0))
    assert not np.array_equal(shown(pane), reference(song, settings, pane, 0.0))


def test_playing_advances_the_position_and_the_picture(qtbot, pane, song):
    loaded(qtbot, pane, song, RenderSettings())
    frames: list[float] = []
    pane.frame_shown.connect(frames.append)
    pane.play()
    assert pane.state == "playing"
    qtbot.waitUntil(lambda: len(frames) >= 10 and pane.position > 0.3, timeout=10_000)
    pane.pause()
    assert pane.state == "paused"
    assert frames == sorted(frames)  # never backwards
    assert frames[-1] > 0.1


def test_playback_stops_at_the_end(qtbot, pane, song):
    loaded(qtbot, pane, song, RenderSettings(lead_in=0, tail=0))
    pane.seek(pane.duration - 0.3)
    pane.play()
    qtbot.waitUntil(lambda: pane.state == "ended", timeout=10_000)
    assert pane.position == pane.duration
    qtbot.waitUntil(lambda: pane.shown_time == pane.duration)


def test_a_loop_plays_its_range_over_and_over(qtbot, pane, song):
    loaded(qtbot, pane, song, RenderSettings())
    pane.set_loop(1.0, 1.4)
    positions: list[float] = []
    pane.position_changed.connect(positions.append)
    pane.play()  # outside the loop: starts at its in point
    qtbot.waitUntil(lambda: any(b < a for a, b in itertools.pairwise(positions)), timeout=10_000)
    pane.pause()
    assert positions[0] == pytest.approx(1.0, abs=0.1)
    assert all(1.0 <= p < 1.4 + 0.05 for p in positions)


def test_speed_changes_how_fast_the_video_runs(qtbot, pane, song):
    import time

    loaded(qtbot, pane, song, RenderSettings())
    pane.set_speed(2.0)
    assert pane.transport.speed.currentText() == "2×"
    assert pane.sound.rate == 2.0  # the sound follows (when a device plays it)
    pane.play()
    outer0 = time.monotonic()
    p0 = pane.position
    inner0 = time.monotonic()
    qtbot.wait(300)
    inner1 = time.monotonic()
    p1 = pane.position
    outer1 = time.monotonic()
    pane.pause()
    # Video seconds per wall second, bracketed by the wall time around the two readings.
    assert 2.0 * (inner1 - inner0) <= (p1 - p0) + 1e-6
    assert p1 - p0 <= 2.0 * (outer1 - outer0) + 1e-6


def test_changing_settings_swaps_the_picture_without_a_blank(qtbot, pane, song, screenshot):
    settings = RenderSettings(theme="aurora")
    loaded(qtbot, pane, song, settings)
    pane.seek(2.0)
    qtbot.waitUntil(lambda: pane.shown_time == 2.0)
    before = shown(pane)
    first = pane.view.frame
    generation = pane.producer.generation
    blanks: list[object] = []
    pane.frame_shown.connect(
        lambda _t: blanks.append(pane.view.frame) if pane.view.frame is None else None
    )
    sunset = RenderSettings(theme="sunset")
    pane.apply_settings(sunset)
    assert pane.view.frame is first  # the old picture stays until the new one is drawn
    qtbot.waitUntil(lambda: pane.producer.generation > generation and pane.view.frame is not first)
    qtbot.waitUntil(lambda: pane.view.frame is not None and pane.view.frame.generation > generation)
    assert not blanks
    after = shown(pane)
    assert pane.shown_time == 2.0
    top_left_before, top_left_after = before[40, 40], after[40, 40]
    assert tuple(top_left_before) != tuple(top_left_after)  # the theme's background changed
    np.testing.assert_array_equal(after, reference(song, sunset, pane, 2.0))
    screenshot(pane, "preview-sunset")


def test_a_timing_change_keeps_the_same_moment_of_the_song(qtbot, pane, song):
    loaded(qtbot, pane, song, RenderSettings(lead_in=2.0))
    old = build_timeline(song, RenderSettings(lead_in=2.0))
    pane.seek(3.0)
    song_time = old.song_time(3.0)
    pane.apply_settings(RenderSettings(lead_in=0.5, speed=0.5))
    new = build_timeline(song, RenderSettings(lead_in=0.5, speed=0.5))
    assert pane.position == pytest.approx(new.video_time_of_song(song_time))
    assert pane.duration == pytest.approx(new.duration)


def test_the_song_is_synthesized_to_a_soundtrack_as_long_as_the_video(qtbot, pane, song):
    ready: list[Path | None] = []
    pane.audio_ready.connect(ready.append)
    settings = RenderSettings(speed=1.25)
    loaded(qtbot, pane, song, settings)
    qtbot.waitUntil(lambda: bool(ready), timeout=60_000)
    path = ready[0]
    assert path is not None and path.is_file()
    with wave.open(str(path)) as wav:
        assert wav.getframerate() == SAMPLE_RATE
        frames = wav.getnframes()
        audio = np.frombuffer(wav.readframes(frames), np.int16)
    assert frames == round(build_timeline(song, settings).duration * SAMPLE_RATE)
    assert frames / SAMPLE_RATE == pytest.approx(pane.duration, abs=1 / SAMPLE_RATE)
    assert np.abs(audio).max() > 1000  # music, not silence


def test_a_colour_change_reuses_the_soundtrack(qtbot, pane, song):
    ready: list[Path | None] = []
    pane.audio_ready.connect(ready.append)
    loaded(qtbot, pane, song, RenderSettings())
    qtbot.waitUntil(lambda: bool(ready), timeout=60_000)
    pane.apply_settings(RenderSettings(theme="neon"))
    pane.apply_settings(RenderSettings(theme="neon", speed=2.0))
    qtbot.waitUntil(lambda: len(ready) == 2, timeout=60_000)
    assert ready[1] != ready[0]  # speed changes the sound; the colour alone did not


def test_a_recording_is_placed_with_its_offset_like_a_render(qtbot, pane, song, tmp_path):
    # A click at 0.0 s of the recording; +500 ms offset: heard with song time 0.5 s.
    click = np.zeros((SAMPLE_RATE * 3, 2), np.int16)
    click[:480] = 20000
    recording = tmp_path / "take.wav"
    with wave.open(str(recording), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(click.tobytes())
    ready: list[Path | None] = []
    pane.audio_ready.connect(ready.append)
    settings = RenderSettings(audio_offset_ms=500, lead_in=1.0)
    loaded(qtbot, pane, song, settings, audio_path=recording)
    qtbot.waitUntil(lambda: bool(ready), timeout=60_000)
    assert ready[0] is not None
    with wave.open(str(ready[0])) as wav:
        audio = np.frombuffer(wav.readframes(wav.getnframes()), np.int16).reshape(-1, 2)
    onset = int(np.argmax(np.abs(audio[:, 0]) > 10000)) / SAMPLE_RATE
    timeline = build_timeline(song, settings.model_copy(update={"audio": str(recording)}))
    assert onset == pytest.approx(timeline.video_time_of_song(0.5), abs=0.002)
    # Settings without the recording (it was removed from the project): the song is heard.
    pane.apply_settings(settings)
    qtbot.waitUntil(lambda: len(ready) == 2, timeout=60_000)
    assert ready[1] is not None and ready[1] != ready[0]


def test_a_silent_video_has_no_soundtrack(qtbot, pane, song):
    ready: list[Path | None] = []
    pane.audio_ready.connect(ready.append)
    loaded(qtbot, pane, song, RenderSettings(no_audio=True))
    qtbot.waitUntil(lambda: bool(ready))
    assert ready == [None]


def test_settings_the_song_cannot_take_are_explained_not_raised(qtbot, pane, song):
    reports: list[ErrorReport] = []
    app_signals().error_raised.connect(reports.append)
    pane.load(song, RenderSettings(start=500.0))
    assert reports and "after the song ends" in reports[0].message
    assert pane.state == "empty"
    assert not pane.transport.isEnabled()


def test_a_missing_background_image_is_explained_and_the_picture_stays(qtbot, pane, song, tmp_path):
    loaded(qtbot, pane, song, RenderSettings())
    first = pane.view.frame
    reports: list[ErrorReport] = []
    app_signals().error_raised.connect(reports.append)
    pane.apply_settings(RenderSettings(background_image=str(tmp_path / "nope.png")))
    qtbot.waitUntil(lambda: bool(reports), timeout=10_000)
    assert "nope.png" in reports[0].message
    assert pane.view.frame is first


@pytest.mark.parametrize(
    ("output", "space", "expected"),
    [
        ((1920, 1080), (3000, 2000), (1280, 720)),  # never more than 720p
        ((1920, 1080), (800, 800), (800, 448)),  # fits the width, keeps 16:9 (sides ÷ 8)
        ((1080, 1920), (3000, 3000), (720, 1280)),  # vertical: 720p turned upright
        ((1080, 1920), (400, 1000), (400, 704)),
        ((1920, 1080), (100, 50), (224, 128)),  # a tiny pane still gets a drawable frame
    ],
)
def test_the_preview_size_fits_the_pane_and_keeps_the_videos_shape(output, space, expected):
    assert preview_size(output, space) == expected
