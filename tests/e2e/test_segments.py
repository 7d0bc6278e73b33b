"""Segmented rendering (the cloud's fan-out): render_video(frames=...) pieces joined
with join_segments equal the one-pass render, frame for frame."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from notefall.common.audio import prepare_audio
from notefall.common.midi import read_song
from notefall.common.pipeline import render_video
from notefall.common.timeline import build_timeline
from notefall.common.video.ffmpeg import frame_hashes, frame_timestamps, probe, stream_duration
from notefall.common.video.segments import join_segments, segment_frame_ranges

from tests.e2e._e2e_helpers import busy_song, entries, psnr, read_all, small_settings

FPS = 30


def _render_segments(tmp_path: Path, song: bytes, settings, ranges) -> list[Path]:
    parts = []
    for k, (a, b) in enumerate(ranges):
        part = tmp_path / f"seg{k}.{settings.format.value}"
        result = render_video(song, part, settings, frames=(a, b))
        assert result.frames == b - a
        assert not probe(part).has_audio  # segments are video-only
        parts.append(part)
    return parts


@pytest.mark.parametrize(
    ("fmt", "codec"),
    [
        pytest.param("mov", "prores", id="mov-prores"),  # intra-only: decoded frames bit-identical
        pytest.param("mp4", "h264", id="mp4-h264"),
        pytest.param("webm", "vp9", id="webm-vp9"),  # millisecond timestamps
    ],
)
def test_joined_segments_equal_one_pass(tmp_path: Path, fmt: str, codec: str) -> None:
    song = busy_song()
    # The best preset: both files are lossy, so PSNR between them is bounded by quality.
    settings = small_settings(format=fmt, codec=codec, fps=FPS, preset="master")
    n = build_timeline(read_song(song), settings).frame_count  # 3.3 s → 99 frames
    ranges = segment_frame_ranges(n, FPS, target_seconds=4 / 3)
    assert len(ranges) == 3 and ranges[0][0] == 0 and ranges[-1][1] == n
    assert all(a2 == b1 for (_, b1), (a2, _) in itertools.pairwise(ranges))

    one = tmp_path / f"one.{fmt}"
    render_video(song, one, settings, frames=(0, n))
    parts = _render_segments(tmp_path, song, settings, ranges)
    joined = tmp_path / f"joined.{fmt}"
    join_segments(parts, joined, settings, frame_counts=[b - a for a, b in ranges])

    one_stamps, joined_stamps = frame_timestamps(one), frame_timestamps(joined)
    assert len(one_stamps) == n
    assert len(joined_stamps) == n
    assert joined_stamps == one_stamps
    assert probe(joined).video_codec == probe(one).video_codec

    if codec == "prores":
        assert frame_hashes(joined) == frame_hashes(one)
        return
    one_frames, joined_frames = read_all(one, n), read_all(joined, n)
    for i in range(n):
        assert psnr(joined_frames[i], one_frames[i]) > 40, f"frame {i} differs"
    # At every seam the joined frame is frame i, not its neighbour (no duplicate or gap).
    for a, _ in ranges[1:]:
        for i in (a - 1, a):
            same = psnr(joined_frames[i], one_frames[i])
            for j in (i - 1, i + 1):
                assert psnr(one_frames[j], one_frames[i]) < same, f"seam frame {i} looks like {j}"


def test_joined_render_with_audio(tmp_path: Path) -> None:
    song = busy_song()
    settings = small_settings(fps=FPS)
    parsed = read_song(song)
    timeline = build_timeline(parsed, settings)
    n = timeline.frame_count
    ranges = segment_frame_ranges(n, FPS, target_seconds=1.0)
    work = tmp_path / "work"
    parts_dir = tmp_path / "parts"
    parts_dir.mkdir()
    audio = prepare_audio(parsed, settings, timeline, work)
    assert audio is not None
    parts = _render_segments(parts_dir, song, settings, ranges)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    joined = out_dir / "joined.mp4"
    join_segments(parts, joined, settings, audio)  # frame counts read from the files

    assert entries(out_dir) == ["joined.mp4"]  # no concat list or partial left behind
    info = probe(joined)
    assert info.has_audio and info.audio_codec == "aac"
    video = stream_duration(joined, "v")
    assert video == pytest.approx(n / FPS, abs=1e-6)
    assert stream_duration(joined, "a") == pytest.approx(video, abs=1.0 / FPS)
    assert len(frame_timestamps(joined)) == n
