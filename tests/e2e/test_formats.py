"""Every container/codec class, resolution class and frame rate renders end to end
through ``render_video`` and probes back as asked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from notefall.common.engine import FrameRenderer
from notefall.common.midi import read_song
from notefall.common.pipeline import render_video
from notefall.common.timeline import build_timeline
from notefall.common.video.ffmpeg import frame_timestamps, probe, read_frames

from tests.e2e._e2e_helpers import (
    BUSY_SONG_SECONDS,
    busy_song,
    expected_frames,
    isolated_notes,
    small_settings,
)

# (format, codec, transparent) → (demuxer, decoded codec, fourcc or None, profile, audio codec)
CLASSES = [
    pytest.param("mp4", "h264", False, ("mov,mp4", "h264", "avc1", None, "aac"), id="mp4-h264"),
    pytest.param("mp4", "hevc", False, ("mov,mp4", "hevc", "hvc1", None, "aac"), id="mp4-hevc"),
    pytest.param("mp4", "av1", False, ("mov,mp4", "av1", "av01", None, "aac"), id="mp4-av1"),
    pytest.param("webm", "vp9", False, ("matroska,webm", "vp9", None, None, "opus"), id="webm-vp9"),
    pytest.param("webm", None, True, ("matroska,webm", "vp9", None, None, "opus"), id="webm-alpha"),
    pytest.param(
        "mov", "prores", False, ("mov,mp4", "prores", "apch", "HQ", "aac"), id="mov-prores"
    ),
    pytest.param(
        "mov", "prores4444", True, ("mov,mp4", "prores", "ap4h", "4444", "aac"), id="mov-prores4444"
    ),
    pytest.param("mov", "h264", False, ("mov,mp4", "h264", "avc1", None, "aac"), id="mov-h264"),
]

PITCHES = (60, 64, 72)
VIDEO_SECONDS = 0.5 + 2.25 + 0.5  # lead-in + last note end (beat 4.5) + tail


@pytest.fixture(scope="module")
def song_bytes() -> bytes:
    return isolated_notes(PITCHES)


def _interior(mask: np.ndarray, r: int = 3) -> np.ndarray:
    """Pixels of ``mask`` whose whole (2r+1)² neighbourhood is in ``mask``."""
    padded = np.pad(mask, r, constant_values=False)
    h, w = mask.shape
    out = np.ones_like(mask)
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            out &= padded[dy : dy + h, dx : dx + w]
    return out


@pytest.mark.parametrize(("fmt", "codec", "transparent", "expect"), CLASSES)
def test_container_codec_renders_and_probes(
    tmp_path: Path, song_bytes: bytes, fmt: str, codec: str | None, transparent: bool, expect: tuple
) -> None:
    demuxer, vcodec, tag, profile, acodec = expect
    settings = small_settings(format=fmt, codec=codec, transparent=transparent)
    out = tmp_path / f"song.{fmt}"
    result = render_video(song_bytes, out, settings)

    assert out.is_file()
    n = expected_frames(VIDEO_SECONDS, 30)
    assert result.frames == n
    info = probe(out)
    assert info.container.startswith(demuxer)
    assert info.video_codec == vcodec
    if tag is not None:
        assert info.codec_tag == tag
    if profile is not None:
        assert info.video_profile == profile
    assert (info.width, info.height) == (256, 144)
    assert info.fps == 30
    assert info.has_alpha is transparent
    assert info.audio_codec == acodec
    assert info.audio_rate == 48_000 and info.audio_channels == 2
    assert info.color_range == "tv" and info.color_space == "bt709"
    assert len(frame_timestamps(out)) == n

    # The picture is the engine's picture (same colours, right frame), not just "a video".
    index = 45  # 1.5 s: note 2 is pressed, note 3 is falling
    song = read_song(song_bytes)
    reference = np.asarray(FrameRenderer(song, settings).still_image(index / 30)).astype(float)
    decoded = read_frames(out, [index], pix_fmt="rgba" if transparent else "rgb24")[0].astype(float)
    if transparent:
        alpha = reference[..., 3]
        clear, opaque = _interior(alpha == 0), _interior(alpha == 255)
        assert clear.any() and opaque.any()
        # Background stays see-through, notes and keys stay opaque (edges aside:
        # lossy alpha planes ring a few levels around the faint guide lines).
        assert decoded[..., 3][clear].max() <= 20
        assert decoded[..., 3][clear].mean() <= 2
        assert decoded[..., 3][opaque].min() >= 245
        colour_error = np.abs(decoded[..., :3] - reference[..., :3])[alpha == 255].mean()
    else:
        colour_error = np.abs(decoded - reference).mean()
    assert colour_error < 6.0, (
        f"decoded frame differs from the engine's by {colour_error:.1f} levels"
    )


def test_transparent_note_pixel_is_opaque_and_background_clear(tmp_path: Path) -> None:
    """A falling note's centre keeps alpha ≈255 and empty sky alpha 0 in a WebM file."""
    song_bytes = isolated_notes((60, 72))
    settings = small_settings(format="webm", transparent=True, lead_in=1.0)
    out = tmp_path / "alpha.webm"
    render_video(song_bytes, out, settings)
    song = read_song(song_bytes)
    renderer = FrameRenderer(song, settings)
    keys, layout = renderer.keys, renderer.layout
    # At 0.5 s the first note (pitch 60, starts at 1.0 s) is 0.5 s above the hit line.
    px_per_s = layout.hit_y / settings.lookahead
    x_note = int((keys.key_x0[60] + keys.key_x1[60]) / 2)
    y_note = int(layout.hit_y - (0.5 + 0.125) * px_per_s)  # middle of its 0.25 s bar
    x_sky = int((keys.key_x0[72] + keys.key_x1[72]) / 2)  # its note is 1.5–1.75 s up: off screen
    y_sky = layout.hit_y // 10
    frame = read_frames(out, [15], pix_fmt="rgba")[0]
    assert frame[y_note, x_note, 3] >= 245
    assert frame[y_sky, x_sky, 3] <= 8


@pytest.mark.parametrize(
    ("resolution", "vertical", "size"),
    [
        pytest.param("320x180", False, (320, 180), id="small-16x9"),
        pytest.param("320x180", True, (180, 320), id="vertical"),
        pytest.param("720p", False, (1280, 720), id="720p"),
    ],
)
def test_resolution_classes(
    tmp_path: Path, resolution: str, vertical: bool, size: tuple[int, int]
) -> None:
    # A 1-second song (one note of 1 s) with no lead-in or tail: 30 frames.
    song_bytes = isolated_notes((60,), length_beats=2.0)
    settings = small_settings(resolution=resolution, vertical=vertical, lead_in=0, tail=0)
    out = tmp_path / "res.mp4"
    result = render_video(song_bytes, out, settings)
    info = probe(out)
    assert (info.width, info.height) == size
    assert (result.width, result.height) == size
    assert result.frames == 30
    assert len(frame_timestamps(out)) == 30
    frame = read_frames(out, [15])[0]
    assert frame.shape == (size[1], size[0], 3)
    if vertical:
        assert info.height > info.width


@pytest.mark.parametrize("fps", [24, 30, 60])
def test_frame_rates(tmp_path: Path, fps: int) -> None:
    song_bytes = busy_song()
    settings = small_settings(fps=fps)
    timeline = build_timeline(read_song(song_bytes), settings)
    seconds = 0.5 + BUSY_SONG_SECONDS + 0.5
    assert timeline.duration == pytest.approx(seconds)
    n = expected_frames(seconds, fps)  # 24: 80 (79.2 rounded up), 30: 99, 60: 198
    out = tmp_path / f"fps{fps}.mp4"
    result = render_video(song_bytes, out, settings)
    assert result.frames == n
    info = probe(out)
    assert info.fps == fps
    stamps = frame_timestamps(out)
    assert len(stamps) == n
    assert stamps == pytest.approx([i / fps for i in range(n)], abs=1e-6)


def test_h264_colour_tags(tmp_path: Path) -> None:
    out = tmp_path / "tags.mp4"
    render_video(isolated_notes((60, 64)), out, small_settings(format="mp4", codec="h264"))
    info = probe(out)
    assert info.video_codec == "h264"
    assert info.color_range == "tv"
    assert (info.color_space, info.color_primaries, info.color_transfer) == ("bt709",) * 3
