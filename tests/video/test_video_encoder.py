"""Encoder: every container/codec class, alpha, audio, cancel, abort and failures."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from _video_helpers import FPS, H, W, rgba_frame, yuv_frame, yuva_frame
from notefall.common.errors import EncoderError, RenderCancelled
from notefall.common.progress import CancelToken, Stage
from notefall.common.settings import RenderSettings
from notefall.common.video import encoder as encoder_module
from notefall.common.video.codecs import preset_table, preset_table_markdown
from notefall.common.video.encoder import Encoder
from notefall.common.video.ffmpeg import (
    ffmpeg_exe,
    frame_timestamps,
    parse_probe,
    probe,
    read_frames,
    stream_duration,
)

N = 24

# (format, codec, transparent, expected codec, fourcc, decoded pix_fmt prefix)
CASES = [
    ("mp4", "h264", False, "h264", "avc1", "yuv420p"),
    ("mp4", "hevc", False, "hevc", "hvc1", "yuv420p"),
    ("mp4", "av1", False, "av1", "av01", "yuv420p"),
    ("webm", "vp9", False, "vp9", None, "yuv420p"),
    ("webm", "vp9", True, "vp9", None, "yuva420p"),
    ("webm", "av1", False, "av1", None, "yuv420p"),
    ("mov", "prores", False, "prores", "apch", "yuv422p10"),
    ("mov", "prores4444", True, "prores", "ap4h", "yuva444p"),
    ("mov", "h264", False, "h264", "avc1", "yuv420p"),
    ("mov", "hevc", False, "hevc", "hvc1", "yuv420p"),
]


def _settings(fmt: str, codec: str, alpha: bool = False, **kw: object) -> RenderSettings:
    return RenderSettings(
        format=fmt, codec=codec, transparent=alpha, resolution=f"{W}x{H}", fps=FPS, **kw
    )


def _encode(out: Path, s: RenderSettings, n: int = N, **kw: object) -> Path:
    alpha = s.has_alpha
    with Encoder(out, s, W, H, FPS, "rgba" if alpha else "yuv420p", **kw) as enc:  # type: ignore[arg-type]
        for i in range(n):
            enc.write(rgba_frame(i) if alpha else yuv_frame(i))
    return out


def _gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()


@pytest.mark.parametrize(
    ("fmt", "codec", "alpha", "vcodec", "tag", "pix"),
    CASES,
    ids=[f"{c[0]}-{c[1]}{'-alpha' if c[2] else ''}" for c in CASES],
)
def test_encode_and_probe(tmp_path, fmt, codec, alpha, vcodec, tag, pix):
    out = _encode(tmp_path / f"out.{fmt}", _settings(fmt, codec, alpha))
    info = probe(out)
    assert fmt in info.container
    assert info.video_codec == vcodec
    assert info.codec_tag == tag if tag else True
    assert info.pix_fmt is not None and info.pix_fmt.startswith(pix)
    assert (info.width, info.height, info.fps) == (W, H, FPS)
    assert (info.color_range, info.color_space, info.color_primaries, info.color_transfer) == (
        "tv",
        "bt709",
        "bt709",
        "bt709",
    )
    assert info.has_alpha is alpha
    assert not info.has_audio
    stamps = frame_timestamps(out)
    assert len(stamps) == N
    assert stamps == pytest.approx([i / FPS for i in range(N)], abs=1e-3)
    assert os.listdir(tmp_path) == [f"out.{fmt}"]  # no temp file left behind


@pytest.mark.parametrize(("fmt", "codec"), [("webm", "vp9"), ("mov", "prores4444")])
def test_alpha_survives(tmp_path, fmt, codec):
    out = _encode(tmp_path / f"a.{fmt}", _settings(fmt, codec, True), n=6)
    (frame,) = read_frames(out, [3], pix_fmt="rgba")
    expect = rgba_frame(3)
    assert frame.shape == (H, W, 4)
    assert frame[H // 2, W - 10, 3] == 0  # transparent half
    assert frame[H // 2, 2, 3] == 255  # opaque half
    # Colour through RGB→BT.709 YUV→RGB comes back close: the tags match the matrix.
    assert np.abs(frame[H // 2, 100, :3].astype(int) - expect[H // 2, 100, :3]).max() <= 6


@pytest.mark.parametrize(
    ("fmt", "codec", "acodec"),
    [("mp4", "h264", "aac"), ("webm", "vp9", "opus"), ("mov", "prores", "aac")],
)
def test_audio_is_muxed(tmp_path, wav, fmt, codec, acodec):
    n = 30  # 1.0 s of video; the WAV is 1.5 s and must be trimmed
    out = _encode(tmp_path / f"v.{fmt}", _settings(fmt, codec), n=n, audio=wav, frame_count=n)
    info = probe(out)
    assert info.audio_codec == acodec
    assert info.audio_rate == 48_000
    assert info.audio_channels == 2
    assert stream_duration(out, "a") == pytest.approx(1.0, abs=0.025)
    assert len(frame_timestamps(out)) == n


def test_audio_needs_the_frame_count_so_it_can_be_cut_exactly(tmp_path, wav):
    with pytest.raises(ValueError, match="frame_count is required"):
        Encoder(tmp_path / "v.mp4", _settings("mp4", "h264"), W, H, FPS, "yuv420p", wav)
    assert not any(p.name.startswith(".v.") for p in tmp_path.iterdir())  # no FFmpeg started


def test_cancel_midstream_leaves_nothing(tmp_path):
    token = CancelToken()
    enc = Encoder(tmp_path / "c.mp4", _settings("mp4", "h264"), W, H, FPS, "yuv420p", cancel=token)
    for i in range(5):
        enc.write(yuv_frame(i))
    token.cancel()
    with pytest.raises(RenderCancelled):
        enc.write(yuv_frame(5))
    assert os.listdir(tmp_path) == []
    assert _gone(enc.pid)


def test_cancel_during_finish(tmp_path):
    token = CancelToken()
    enc = Encoder(
        tmp_path / "c.mov", _settings("mov", "prores"), W, H, FPS, "yuv420p", cancel=token
    )
    enc.write(yuv_frame(0))
    token.cancel()
    with pytest.raises(RenderCancelled):
        enc.finish()
    assert os.listdir(tmp_path) == []
    assert _gone(enc.pid)


def test_exception_in_with_block_aborts(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):  # noqa: SIM117 — need the encoder's pid
        with Encoder(tmp_path / "x.webm", _settings("webm", "vp9"), W, H, FPS, "yuv420p") as enc:
            enc.write(yuv_frame(0))
            pid = enc.pid
            assert enc.temp_path.parent == tmp_path
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []
    assert _gone(pid)


def test_ffmpeg_failure_is_readable(tmp_path, monkeypatch):
    real = encoder_module.video_args
    monkeypatch.setattr(
        encoder_module, "video_args", lambda *a, **k: [*real(*a, **k), "-level:v", "9.9"]
    )
    with pytest.raises(EncoderError, match=r"level.*9\.9") as info:  # noqa: SIM117
        with Encoder(tmp_path / "f.mp4", _settings("mp4", "h264"), W, H, FPS, "yuv420p") as enc:
            for i in range(N):
                enc.write(yuv_frame(i))
    assert "Terminating thread" not in str(info.value)
    assert os.listdir(tmp_path) == []


def test_corrupt_audio_raises_encoder_error(tmp_path_factory):
    bad = tmp_path_factory.mktemp("bad") / "bad.wav"
    bad.write_bytes(b"RIFF not really" * 64)
    out_dir = tmp_path_factory.mktemp("out")
    with pytest.raises(EncoderError, match="Invalid data"):
        _encode(out_dir / "v.mp4", _settings("mp4", "h264"), audio=bad, frame_count=30)
    assert os.listdir(out_dir) == []


def test_wrong_frame_size_is_refused(tmp_path):
    with Encoder(tmp_path / "w.mp4", _settings("mp4", "h264"), W, H, FPS, "yuv420p") as enc:
        with pytest.raises(ValueError, match="needs"):
            enc.write(b"\0" * 10)
        enc.write(memoryview(yuv_frame(0).tobytes()))  # bytes-like objects work too
        enc.write(bytearray(yuv_frame(1).tobytes()))
    assert len(frame_timestamps(tmp_path / "w.mp4")) == 2


def test_progress_reports_stages(tmp_path):
    events = []
    _encode(tmp_path / "p.mp4", _settings("mp4", "h264"), progress=events.append)
    done = [(e.stage, e.frames) for e in events if e.done]
    assert (Stage.ENCODING, done[0][1]) == done[0]
    assert done[-1] == (Stage.MUXING, N)


def test_replaces_existing_output_atomically(tmp_path):
    out = tmp_path / "o.mp4"
    out.write_bytes(b"old")
    _encode(out, _settings("mp4", "h264"), n=3)
    assert probe(out).video_codec == "h264"


def test_ffmpeg_exe_override(monkeypatch):
    real = ffmpeg_exe()
    monkeypatch.setenv("NOTEFALL_FFMPEG", real)
    assert ffmpeg_exe() == real
    monkeypatch.setenv("NOTEFALL_FFMPEG", "/nonexistent/ffmpeg")
    with pytest.raises(EncoderError, match="NOTEFALL_FFMPEG"):
        ffmpeg_exe()


def test_parse_probe_variants():
    text = (
        "Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'x.mov':\n"
        "  Duration: 00:01:02.50, start: 0.000000, bitrate: 354 kb/s\n"
        "  Stream #0:0[0x1](eng): Video: h264 (High 10) (avc1 / 0x31637661), "
        "yuv420p10le(pc, bt709/bt2020/smpte2084, progressive, left), 3840x2160 "
        "[SAR 1:1 DAR 16:9], 1000 kb/s, 29.97 fps, 29.97 tbr, 30k tbn (default)\n"
        "  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, "
        "5.1(side), fltp, 70 kb/s (default)\n"
    )
    info = parse_probe(text)
    assert info.duration == pytest.approx(62.5)
    assert (info.video_codec, info.video_profile, info.pix_fmt) == (
        "h264",
        "High 10",
        "yuv420p10le",
    )
    assert (info.width, info.height, info.fps) == (3840, 2160, 29.97)
    assert (info.color_range, info.color_space, info.color_primaries, info.color_transfer) == (
        "pc",
        "bt709",
        "bt2020",
        "smpte2084",
    )
    assert (info.audio_codec, info.audio_rate, info.audio_channels) == ("aac", 44100, 6)
    assert not info.has_alpha


def test_preset_table_covers_everything():
    rows = preset_table()
    assert len(rows) == 6 * 4
    assert {(r.codec.value, r.preset.value) for r in rows} >= {
        ("h264", "standard"),
        ("vp9", "draft"),
    }
    table = preset_table_markdown()
    # Every row of the table is a real line of the rendered markdown, and the
    # arguments each row hands FFmpeg carry the speed and quality the table shows.
    for r in rows:
        assert f"| {r.codec.value} | {r.preset.value} | {r.encoder} |" in table
        if r.encoder == "libx264":
            assert r.speed in r.options and r.quality.split()[-1] in r.options


@pytest.mark.parametrize(("fmt", "codec"), [("webm", "vp9"), ("mov", "prores4444")])
def test_alpha_from_engine_yuva420p(tmp_path, fmt, codec):
    out = tmp_path / f"y.{fmt}"
    with Encoder(out, _settings(fmt, codec, True), W, H, FPS, "yuva420p") as enc:
        for i in range(4):
            enc.write(yuva_frame(i))
    info = probe(out)
    assert info.has_alpha and info.color_space == "bt709"
    (frame,) = read_frames(out, times=[0.05], pix_fmt="rgba")
    assert frame[H // 2, W - 4, 3] == 0
    assert frame[H // 2, 4, 3] == 255


def test_progress_fraction(tmp_path):
    events = []
    _encode(tmp_path / "f.mp4", _settings("mp4", "h264"), frame_count=N, progress=events.append)
    assert events[-1].fraction == 1.0
    assert all(0.0 <= e.fraction <= 1.0 for e in events)
