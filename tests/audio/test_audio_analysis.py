"""detect_onsets on synthetic signals."""

from __future__ import annotations

import numpy as np
from _audio_helpers import RATE, click_track
from notefall.common.audio import detect_onsets


def test_onsets_of_separated_bursts_are_sample_accurate():
    clicks = [0.25, 0.8, 1.3371, 2.0]
    audio = click_track(2.5, RATE, clicks, channels=2)
    found = detect_onsets(audio, RATE)
    assert np.allclose(found, clicks, atol=1.5 / RATE)


def test_quiet_note_after_decaying_tail_and_noise_floor():
    t = np.arange(3 * RATE) / RATE
    x = 1e-4 * np.random.default_rng(0).standard_normal(t.shape)  # −80 dB noise
    loud = (t >= 0.5) * np.exp(-(t - 0.5) * 8) * np.sin(2 * np.pi * 220 * t)
    soft = (t >= 2.0) * 0.1 * np.exp(-(t - 2.0) * 8) * np.sin(2 * np.pi * 330 * t)
    found = detect_onsets(x + loud + soft, RATE)
    assert len(found) == 2
    assert abs(found[0] - 0.5) < 0.001 and abs(found[1] - 2.0) < 0.002


def test_silence_and_empty_input_have_no_onsets():
    assert detect_onsets(np.zeros((RATE, 2), np.float32), RATE) == []
    assert detect_onsets(np.zeros((0, 2), np.float32), RATE) == []
