"""The preview clock: play, pause, speed, loop, end, and following the audio player.

The clock reads time through an injected source, so these tests step time by hand;
following the audio is tested with reported positions because this machine has no
audio output device (``QMediaDevices.audioOutputs()`` is empty) for a real player.
"""

from __future__ import annotations

import pytest
from notefall.desktop.preview.clock import SNAP_SECONDS, PlaybackClock, Tick


class Time:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def time_() -> Time:
    return Time()


@pytest.fixture
def clock(time_: Time) -> PlaybackClock:
    c = PlaybackClock(now=time_)
    c.set_duration(30.0)
    return c


def test_a_paused_clock_stays_where_it_was_put(clock: PlaybackClock, time_: Time):
    clock.seek(4.0)
    time_.now += 10
    assert clock.position() == 4.0
    assert clock.tick() == (4.0, Tick.RUNNING)


def test_playing_runs_at_the_preview_speed(clock: PlaybackClock, time_: Time):
    clock.seek(2.0)
    clock.play()
    time_.now += 1.5
    assert clock.position() == pytest.approx(3.5)
    clock.set_speed(2.0)
    assert clock.position() == pytest.approx(3.5)  # changing speed does not jump
    time_.now += 1.0
    assert clock.position() == pytest.approx(5.5)
    clock.set_speed(0.5)
    time_.now += 2.0
    assert clock.position() == pytest.approx(6.5)


def test_speed_is_kept_between_half_and_double(clock: PlaybackClock):
    assert clock.set_speed(0.1) == 0.5
    assert clock.set_speed(9) == 2.0
    assert clock.speed == 2.0


def test_pausing_keeps_the_position_reached(clock: PlaybackClock, time_: Time):
    clock.play()
    time_.now += 3.25
    clock.pause()
    time_.now += 5
    assert clock.position() == pytest.approx(3.25)
    assert not clock.playing


def test_seek_is_clamped_to_the_video(clock: PlaybackClock):
    assert clock.seek(-3) == 0.0
    assert clock.seek(99) == 30.0


def test_the_loop_wraps_from_its_out_point_to_its_in_point(clock: PlaybackClock, time_: Time):
    clock.set_loop(10.0, 12.0)
    clock.seek(11.5)
    clock.play()
    time_.now += 0.75  # 12.25: a quarter second past the out point
    position, what = clock.tick()
    assert what == Tick.WRAPPED
    assert position == pytest.approx(10.25)
    time_.now += 0.5
    assert clock.tick() == (pytest.approx(10.75), Tick.RUNNING)


def test_play_outside_the_loop_starts_at_its_in_point(clock: PlaybackClock):
    clock.set_loop(10.0, 12.0)
    clock.seek(3.0)
    clock.play()
    assert clock.position() == 10.0


def test_a_loop_without_an_out_point_runs_to_the_end(clock: PlaybackClock):
    clock.set_loop(25.0)
    assert clock.loop == (25.0, 30.0)
    clock.set_loop(None)
    assert clock.loop is None


def test_a_loop_too_short_to_hear_is_no_loop(clock: PlaybackClock):
    clock.set_loop(5.0, 5.01)
    assert clock.loop is None


def test_the_clock_stops_at_the_end_and_play_starts_over(clock: PlaybackClock, time_: Time):
    clock.seek(29.0)
    clock.play()
    time_.now += 2.0
    assert clock.tick() == (30.0, Tick.ENDED)
    assert not clock.playing
    clock.play()
    assert clock.position() == 0.0


def test_small_audio_drift_is_corrected_gradually_and_never_backwards(
    clock: PlaybackClock, time_: Time
):
    clock.play()
    time_.now += 1.0
    before = clock.position()
    clock.follow_audio(before - 0.05)  # the sound is 50 ms behind the picture
    after = clock.position()
    assert after == before  # the picture waits rather than stepping back
    time_.now += 0.1
    # The picture now runs a little slower than wall time until it meets the sound.
    assert before < clock.position() < before + 0.1
    for _ in range(40):
        time_.now += 0.05
        clock.follow_audio(clock.position())
    time_.now += 0.05
    ahead = clock.position()
    clock.follow_audio(ahead)
    assert clock.position() == pytest.approx(ahead, abs=1e-3)


def test_a_large_audio_jump_is_followed_at_once(clock: PlaybackClock, time_: Time):
    clock.play()
    time_.now += 1.0
    clock.follow_audio(1.0 + SNAP_SECONDS * 3)
    assert clock.position() == pytest.approx(1.0 + SNAP_SECONDS * 3)
    time_.now += 0.5
    assert clock.position() == pytest.approx(1.5 + SNAP_SECONDS * 3)


def test_audio_reports_are_ignored_while_paused(clock: PlaybackClock):
    clock.seek(7.0)
    clock.follow_audio(1.0)
    assert clock.position() == 7.0


def test_audio_reports_follow_at_the_preview_speed(clock: PlaybackClock, time_: Time):
    clock.set_speed(2.0)
    clock.play()
    time_.now += 1.0  # 2 s of video in 1 s of wall time; the player agrees
    clock.follow_audio(2.0)
    assert clock.position() == pytest.approx(2.0)
    time_.now += 0.25
    assert clock.position() == pytest.approx(2.5)
