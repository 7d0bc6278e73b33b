"""The user's recording: offset convention, speed, codecs, length, errors, cancel."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import numpy as np
import pytest
from _audio_helpers import RATE, click_track, encode, make_song, read_wav, rms, timeline, write_wav
from notefall.common.audio import decode_audio, detect_onsets, prepare_audio
from notefall.common.errors import AudioError, RenderCancelled
from notefall.common.progress import CancelToken
from notefall.common.settings import RenderSettings
from notefall.common.video.ffmpeg import ffmpeg_exe

CLICK = 1.0  # seconds into the recording
SONG = make_song([(0.0, 0.5, 60)])


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("rec")
    wav = d / "take.wav"
    write_wav(wav, click_track(3.0, 44_100, [CLICK]), 44_100)  # mono, 44.1 kHz
    return {
        "wav": wav,
        "flac": encode(wav, d / "take.flac", "flac"),
        "ogg": encode(wav, d / "take.ogg", "libvorbis"),
        "mp3": encode(wav, d / "take.mp3", "libmp3lame"),
    }


def place(path: Path, tl, tmp_path: Path, **settings) -> np.ndarray:
    out = prepare_audio(SONG, RenderSettings(audio=str(path), **settings), tl, tmp_path / "w")
    assert out is not None
    audio, params = read_wav(out)
    assert (params.nchannels, params.sampwidth, params.framerate) == (2, 2, RATE)
    assert params.nframes == round(tl.duration * RATE)
    return audio


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3"])
@pytest.mark.parametrize("offset_ms", [0, 200, -300])
def test_offset_positive_delays_the_recording(recordings, tmp_path, fmt, offset_ms):
    tl = timeline(3.0, lead_in=0.5, tail=0.2)
    audio = place(recordings[fmt], tl, tmp_path, audio_offset_ms=offset_ms)
    # Documented: song time = recording time + offset; video = lead_in + song time here.
    expected = 0.5 + CLICK + offset_ms / 1000
    (found,) = detect_onsets(audio, RATE)
    tolerance = 0.001 if fmt in ("wav", "flac") else 0.005  # lossy codecs smear the edge
    assert abs(found - expected) < tolerance, (found, expected)
    assert rms(audio[:, 0]) == pytest.approx(rms(audio[:, 1]), rel=1e-3)  # mono → both sides


@pytest.mark.parametrize("speed", [0.5, 2.0, 0.3])
def test_speed_keeps_recording_in_step(recordings, tmp_path, speed):
    tl = timeline(3.0, speed=speed, lead_in=0.25, tail=0.1)
    audio = place(recordings["wav"], tl, tmp_path, speed=speed, audio_offset_ms=100)
    (found,) = detect_onsets(audio, RATE)
    expected = tl.video_time_of_song(CLICK + 0.1)
    assert abs(found - expected) < 0.02, found - expected


@pytest.mark.parametrize("speed", [0.5, 2.0])
def test_speed_keeps_pitch(tmp_path, speed):
    src = tmp_path / "tone.wav"
    t = np.arange(2 * RATE) / RATE
    write_wav(src, 0.5 * np.sin(2 * np.pi * 440 * t), RATE)
    tl = timeline(2.0, speed=speed)
    audio = place(src, tl, tmp_path, speed=speed)
    mid = audio[round(0.2 * RATE / speed) : round(1.6 * RATE / speed), 0]
    spec = np.abs(np.fft.rfft(mid * np.hanning(len(mid))))
    assert abs(np.argmax(spec) * RATE / len(mid) - 440) < 3


def test_clip_from_mid_song_cuts_recording_start_and_pads_end(recordings, tmp_path):
    tl = timeline(5.0, song_from=0.6, tail=0.0)  # video 0 = song 0.6; recording is 3 s long
    audio = place(recordings["wav"], tl, tmp_path)
    (found,) = detect_onsets(audio, RATE)
    assert abs(found - (CLICK - 0.6)) < 0.001
    assert not audio[round(2.5 * RATE) :].any()  # the recording ended at video 2.4 s


def test_recording_longer_than_video_is_cut_and_stereo_kept(tmp_path):
    src = tmp_path / "long.wav"
    stereo = click_track(30.0, RATE, [0.5, 25.0], channels=2)  # clicks on the left only
    write_wav(src, stereo, RATE)
    tl = timeline(1.0)
    audio = place(src, tl, tmp_path)
    assert len(audio) == RATE
    assert rms(audio[:, 0]) > 0.01 and not audio[:, 1].any()


def test_bad_recordings_are_audio_errors(tmp_path):
    text = tmp_path / "notes.mp3"
    text.write_text("definitely not audio\n" * 20)
    silent_video = tmp_path / "video.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i", "color=c=black:s=64x64:d=0.2",
         "-c:v", "mpeg4", str(silent_video)],
        check=True,
    )  # fmt: skip
    for path, words in [
        (tmp_path / "missing.wav", "not found"),
        (text, "not an audio file"),
        (silent_video, "no audio stream"),
    ]:
        work = tmp_path / f"w-{path.stem}"
        with pytest.raises(AudioError, match=words) as info:
            prepare_audio(SONG, RenderSettings(audio=str(path)), timeline(1.0), work)
        assert "\n" not in info.value.message
        assert not work.exists() or not any(work.iterdir())


def test_cancel_while_decoding_kills_ffmpeg_and_leaves_nothing(tmp_path):
    src = tmp_path / "long.wav"
    write_wav(src, click_track(120.0, RATE, [1.0]), RATE)
    token = CancelToken()

    def progress(f: float) -> None:
        if f > 0.2:
            token.cancel()

    work = tmp_path / "w"
    with pytest.raises(RenderCancelled):
        prepare_audio(SONG, RenderSettings(audio=str(src)), timeline(120.0), work,
                      cancel=token, on_progress=progress)  # fmt: skip
    assert not any(work.iterdir())


def test_ffmpeg_override_env_var(tmp_path, monkeypatch, recordings):
    log = tmp_path / "calls.log"
    wrapper = tmp_path / "ffmpeg-wrapper"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> "{log}"\nexec "{ffmpeg_exe()}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("NOTEFALL_FFMPEG", str(wrapper))
    audio = place(recordings["wav"], timeline(2.0), tmp_path)
    assert rms(audio) > 0
    assert log.read_text().count("take.wav") >= 2  # probe and decode both went through it


def test_decode_audio_reads_back_at_48k(recordings):
    audio = decode_audio(recordings["flac"])
    assert audio.dtype == np.float32 and audio.shape == (3 * RATE, 2)
    assert detect_onsets(audio, RATE) == [pytest.approx(CLICK, abs=0.001)]
    with pytest.raises(AudioError, match="not found"):
        decode_audio(recordings["flac"].with_name("nope.flac"))
