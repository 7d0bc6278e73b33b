"""Segment split/join: the joined file has exactly the one-pass file's frames."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
from _video_helpers import FPS, H, W, md5, yuv_frame, yuva_frame
from notefall.common.errors import RenderCancelled
from notefall.common.progress import CancelToken
from notefall.common.settings import Codec, QualityPreset, RenderSettings
from notefall.common.video import codecs
from notefall.common.video.encoder import Encoder
from notefall.common.video.ffmpeg import framemd5, probe, read_frames, stream_duration
from notefall.common.video.segments import join_segments, segment_frame_ranges

N = 100  # 3.33 s: three segments of whole seconds plus a short tail


def _lossless(monkeypatch, codec: Codec, options: tuple[str, ...]) -> None:
    row = codecs._TABLE[codec][QualityPreset.DRAFT]
    monkeypatch.setitem(
        codecs._TABLE[codec],
        QualityPreset.DRAFT,
        codecs.PresetRow(row.codec, row.preset, row.encoder, "test", "lossless", options),
    )


def _one_pass(path: Path, s: RenderSettings, audio: Path | None = None) -> Path:
    with Encoder(path, s, W, H, FPS, "yuv420p", audio) as enc:
        for i in range(N):
            enc.write(yuv_frame(i))
    return path


def _segments(folder: Path, s: RenderSettings, ranges: list[tuple[int, int]]) -> list[Path]:
    paths = []
    for k, (a, b) in enumerate(ranges):
        p = folder / f"seg{k}.{s.format.value}"
        with Encoder(p, s, W, H, FPS, "yuv420p", segment=True) as enc:
            for i in range(a, b):
                enc.write(yuv_frame(i))
        assert not probe(p).has_audio
        paths.append(p)
    return paths


def test_segment_frame_ranges():
    ranges = segment_frame_ranges(1000, 30, target_seconds=10)
    assert ranges[0][0] == 0 and ranges[-1][1] == 1000
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    assert all(a % 30 == 0 for a, _ in ranges)  # every segment starts on a whole second
    assert len(ranges) == 3
    assert segment_frame_ranges(10, 30) == [(0, 10)]
    assert segment_frame_ranges(0, 30) == []
    assert len(segment_frame_ranges(N, FPS, target_seconds=1)) == 4


@pytest.mark.parametrize(
    ("fmt", "codec", "options"),
    [
        # x264 lossless (qp 0) with B-frames, so the reorder delay crosses every seam.
        ("mp4", Codec.H264, ("-preset", "ultrafast", "-qp", "0", "-bf", "3")),
        ("webm", Codec.VP9, ("-deadline", "realtime", "-cpu-used", "8", "-lossless", "1")),
    ],
    ids=["h264-mp4", "vp9-webm"],
)
def test_join_equals_one_pass_lossless(tmp_path, monkeypatch, fmt, codec, options):
    _lossless(monkeypatch, codec, options)
    s = RenderSettings(format=fmt, codec=codec, preset="draft", resolution=f"{W}x{H}", fps=FPS)
    one = _one_pass(tmp_path / f"one.{fmt}", s)
    ranges = segment_frame_ranges(N, FPS, target_seconds=1)
    joined = join_segments(_segments(tmp_path, s, ranges), tmp_path / f"joined.{fmt}", s)
    a, b = framemd5(one), framemd5(joined)
    assert len(a) == len(b) == N
    assert [(r.pts, r.time_base) for r in a] == [(r.pts, r.time_base) for r in b]
    # Lossless: decoded frames are exactly the frames that went in, in both files.
    source = [md5(yuv_frame(i)) for i in range(N)]
    assert [r.md5 for r in b] == source
    assert [r.md5 for r in a] == source
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]


@pytest.mark.parametrize(
    ("fmt", "codec"), [("mp4", "hevc"), ("mp4", "av1"), ("mov", "prores"), ("webm", "av1")]
)
def test_join_timestamps_other_codecs(tmp_path, fmt, codec):
    s = RenderSettings(format=fmt, codec=codec, preset="draft", resolution=f"{W}x{H}", fps=FPS)
    one = _one_pass(tmp_path / f"one.{fmt}", s)
    ranges = segment_frame_ranges(N, FPS, target_seconds=1)
    joined = join_segments(
        _segments(tmp_path, s, ranges),
        tmp_path / f"joined.{fmt}",
        s,
        frame_counts=[b - a for a, b in ranges],
    )
    assert [r.pts for r in framemd5(one)] == [r.pts for r in framemd5(joined)]
    info = probe(joined)
    assert (info.video_codec, info.color_space, info.color_range) == (codec, "bt709", "tv")


def test_mp4_join_exact_at_any_boundary(tmp_path):
    s = RenderSettings(format="mp4", codec="h264", preset="draft", resolution=f"{W}x{H}", fps=FPS)
    one = _one_pass(tmp_path / "one.mp4", s)
    joined = join_segments(
        _segments(tmp_path, s, [(0, 31), (31, 77), (77, N)]), tmp_path / "joined.mp4", s
    )
    assert [r.pts for r in framemd5(one)] == [r.pts for r in framemd5(joined)]


def test_join_muxes_audio_once(tmp_path, wav):
    s = RenderSettings(format="mp4", codec="h264", preset="draft", resolution=f"{W}x{H}", fps=FPS)
    n = 45  # 1.5 s; the tone is 1.5 s as well
    segs = _segments(tmp_path, s, [(0, 30), (30, n)])
    joined = join_segments(segs, tmp_path / "joined.mp4", s, wav)
    info = probe(joined)
    assert (info.audio_codec, info.audio_rate, info.audio_channels) == ("aac", 48_000, 2)
    assert stream_duration(joined, "a") == pytest.approx(1.5, abs=0.025)
    assert len(framemd5(joined)) == n


def test_join_cancelled_leaves_nothing(tmp_path):
    s = RenderSettings(format="webm", codec="vp9", preset="draft", resolution=f"{W}x{H}", fps=FPS)
    segs = _segments(tmp_path, s, [(0, 30), (30, 40)])
    token = CancelToken()
    token.cancel()
    with pytest.raises(RenderCancelled):
        join_segments(segs, tmp_path / "joined.webm", s, cancel=token)
    assert sorted(os.listdir(tmp_path)) == ["seg0.webm", "seg1.webm"]


def test_vp9_alpha_survives_join(tmp_path):
    s = RenderSettings(
        format="webm", codec="vp9", transparent=True, preset="draft", resolution=f"{W}x{H}", fps=FPS
    )
    segs = []
    for k, (a, b) in enumerate([(0, 30), (30, 40)]):
        p = tmp_path / f"s{k}.webm"
        with Encoder(p, s, W, H, FPS, "yuva420p", segment=True) as enc:
            for i in range(a, b):
                enc.write(yuva_frame(i))
        segs.append(p)
    joined = join_segments(segs, tmp_path / "joined.webm", s)
    assert probe(joined).has_alpha
    (frame,) = read_frames(joined, [35], pix_fmt="rgba")
    assert (frame[H // 2, W - 4, 3], frame[H // 2, 4, 3]) == (0, 255)
