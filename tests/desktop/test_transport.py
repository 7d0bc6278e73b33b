"""The transport bar and keyboard: play/pause, scrubbing, loop points, speed, time display."""

from __future__ import annotations

from pathlib import Path

import pytest
from notefall.common.midi import read_song
from notefall.common.settings import RenderSettings
from notefall.desktop.preview import PreviewPane
from notefall.desktop.preview.transport import format_time
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest


@pytest.fixture
def pane(qtbot, midi_file: Path):
    widget = PreviewPane()
    qtbot.addWidget(widget)
    widget.resize(800, 500)
    widget.show()
    qtbot.waitExposed(widget)
    widget.load(read_song(midi_file), RenderSettings())
    qtbot.waitUntil(lambda: widget.state == "paused" and widget.shown_time == 0.0, timeout=10_000)
    widget.activateWindow()
    widget.view.setFocus()
    qtbot.waitUntil(widget.view.hasFocus)
    yield widget
    widget.close_preview()


def key(pane: PreviewPane, k: Qt.Key, mod=Qt.KeyboardModifier.NoModifier) -> None:
    QTest.keyClick(pane.view, k, mod)


def slider_point(pane: PreviewPane, seconds: float) -> QPoint:
    slider = pane.transport.slider
    return QPoint(slider.x_of(round(seconds * 1000)), slider.height() // 2)


def test_space_plays_and_pauses(qtbot, pane):
    key(pane, Qt.Key.Key_Space)
    assert pane.state == "playing"
    assert pane.transport.play_button.accessibleName() == "Pause"
    qtbot.waitUntil(lambda: pane.position > 0.2)
    key(pane, Qt.Key.Key_Space)
    assert pane.state == "paused"
    assert pane.transport.play_button.accessibleName() == "Play"


def test_the_play_button_toggles_playback(qtbot, pane):
    pane.transport.play_button.click()
    assert pane.state == "playing"
    pane.transport.play_button.click()
    assert pane.state == "paused"


def test_arrow_keys_home_and_end_move_the_playhead(qtbot, pane):
    key(pane, Qt.Key.Key_Right)
    assert pane.position == 5.0
    key(pane, Qt.Key.Key_Left, Qt.KeyboardModifier.ShiftModifier)
    assert pane.position == 4.0
    key(pane, Qt.Key.Key_End)
    assert pane.position == pane.duration
    key(pane, Qt.Key.Key_Home)
    assert pane.position == 0.0
    qtbot.waitUntil(lambda: pane.shown_time == 0.0)


def test_dragging_the_timeline_scrubs_through_frames(qtbot, pane):
    slider = pane.transport.slider
    shown: list[float] = []
    pane.frame_shown.connect(shown.append)
    pane.play()
    QTest.mousePress(slider, Qt.MouseButton.LeftButton, pos=slider_point(pane, 1.0))
    assert pane.state == "paused"  # scrubbing holds playback
    qtbot.waitUntil(lambda: pane.shown_time == pytest.approx(1.0, abs=0.05))
    for target in (2.0, 3.0, 4.0):
        QTest.mouseMove(slider, slider_point(pane, target))
        qtbot.waitUntil(lambda t=target: pane.shown_time == pytest.approx(t, abs=0.05))
    QTest.mouseRelease(slider, Qt.MouseButton.LeftButton, pos=slider_point(pane, 4.0))
    assert pane.state == "playing"  # and resumes where the drag ended
    assert pane.position == pytest.approx(4.0, abs=0.1)
    pane.pause()
    scrubbed = [t for t in shown if 0.9 < t < 4.1]
    assert any(abs(t - 2.0) < 0.05 for t in scrubbed) and any(abs(t - 3.0) < 0.05 for t in scrubbed)


def test_clicking_the_timeline_while_paused_jumps_there(qtbot, pane):
    slider = pane.transport.slider
    QTest.mouseClick(slider, Qt.MouseButton.LeftButton, pos=slider_point(pane, 2.5))
    assert pane.state == "paused"
    assert pane.position == pytest.approx(2.5, abs=0.1)
    qtbot.waitUntil(lambda: pane.shown_time == pytest.approx(2.5, abs=0.1))


def test_loop_points_are_set_at_the_playhead_and_shown_on_the_timeline(qtbot, pane, screenshot):
    pane.seek(1.0)
    key(pane, Qt.Key.Key_I)
    pane.seek(3.0)
    pane.transport.loop_out.click()
    assert pane.clock.loop == (1.0, 3.0)
    assert pane.transport.slider.loop == (1.0, 3.0)
    assert pane.transport.loop_off.isEnabled()
    qtbot.waitUntil(lambda: pane.shown_time == 3.0)
    screenshot(pane, "preview-loop")
    key(pane, Qt.Key.Key_L)
    assert pane.clock.loop is None
    assert not pane.transport.loop_off.isEnabled()


def test_an_in_point_after_the_out_point_loops_to_the_end(qtbot, pane):
    pane.set_loop(1.0, 2.0)
    pane.seek(3.0)
    pane.set_loop_in()
    assert pane.clock.loop == (3.0, pane.duration)


def test_the_speed_menu_and_keys_change_the_speed(qtbot, pane):
    combo = pane.transport.speed
    combo.activated.emit(combo.findText("1.5×"))
    assert pane.clock.speed == 1.5
    assert pane.sound.rate == 1.5
    key(pane, Qt.Key.Key_Minus)
    assert pane.clock.speed == 1.25
    assert combo.currentText() == "1.25×"
    for _ in range(6):
        key(pane, Qt.Key.Key_Plus)
    assert pane.clock.speed == 2.0  # the fastest offered
    assert combo.currentText() == "2×"


def test_the_time_display_shows_position_and_length(qtbot, pane):
    pane.seek(2.34)
    assert pane.transport.time_label.text() == f"0:02.3 / {format_time(pane.duration)}"
    assert format_time(75.06) == "1:15.1"


def test_the_transport_is_disabled_until_a_song_is_loaded(qtbot):
    widget = PreviewPane()
    qtbot.addWidget(widget)
    try:
        assert not widget.transport.isEnabled()
        widget.play()  # nothing to play: nothing happens
        assert widget.state == "empty"
    finally:
        widget.close_preview()
