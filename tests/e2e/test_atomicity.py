"""A render that fails leaves the output folder exactly as it was: no new files (hidden
partials included) and an existing file of the same name untouched."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from notefall.common.errors import EncoderError, InputError
from notefall.common.pipeline import render_still, render_video
from notefall.common.video.ffmpeg import ENV_FFMPEG, ffmpeg_exe

from tests.e2e._e2e_helpers import SMALL, entries, isolated_notes, run_cli, small_settings

OLD = b"an earlier render, which a failed one must not replace"


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "song.mp4").write_bytes(OLD)
    (folder / "notes.txt").write_text("the user's own file")
    return folder


@pytest.fixture
def junk(tmp_path: Path) -> Path:
    path = tmp_path / "inputs"
    path.mkdir()
    (path / "not-audio.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + b"\x17" * 4000)
    (path / "not-a-soundfont.sf2").write_bytes(b"definitely not RIFF sfbk" * 100)
    (path / "not-an-image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    return path


def _unchanged(folder: Path) -> None:
    assert entries(folder) == ["notes.txt", "song.mp4"]
    assert (folder / "song.mp4").read_bytes() == OLD


@pytest.mark.parametrize(
    ("setting", "filename"),
    [
        ("audio", "not-audio.wav"),
        ("soundfont", "not-a-soundfont.sf2"),
        ("background_image", "not-an-image.png"),
    ],
)
def test_unusable_input_file_leaves_nothing(
    out_dir: Path, junk: Path, setting: str, filename: str
) -> None:
    settings = small_settings(**{setting: str(junk / filename)})
    with pytest.raises(InputError):
        render_video(isolated_notes((60, 64)), out_dir / "song.mp4", settings)
    _unchanged(out_dir)


def test_cli_audio_that_is_not_audio(tmp_path: Path, out_dir: Path, junk: Path) -> None:
    song = tmp_path / "song.mid"
    song.write_bytes(isolated_notes((60, 64)))
    proc = run_cli(
        "render", song, "-o", out_dir / "song.mp4", "--resolution", SMALL,
        "--audio", junk / "not-audio.wav", "-q",
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) == 1
    _unchanged(out_dir)


def test_bad_midi_leaves_nothing(out_dir: Path) -> None:
    with pytest.raises(InputError):
        render_video(b"MThd\x00\x00\x00\x06\x00", out_dir / "song.mp4", small_settings())
    with pytest.raises(InputError):
        render_still(b"not a midi file at all", out_dir / "frame.png", small_settings(), 0.5)
    _unchanged(out_dir)


def test_encoder_dying_mid_render_leaves_nothing(
    tmp_path: Path, out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FFmpeg starts writing its (hidden) output, takes some frames, then dies."""
    real = ffmpeg_exe()
    wrapper = tmp_path / "ffmpeg-that-dies"
    wrapper.write_text(
        "#!/bin/sh\n"
        'for a; do last="$a"; done\n'
        'case " $* " in *" pipe:0 "*)\n'
        '  echo "half a video" > "$last"\n'
        "  head -c 300000 > /dev/null\n"
        '  echo "simulated encoder crash" >&2\n'
        "  exit 1;;\n"
        "esac\n"
        f'exec "{real}" "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv(ENV_FFMPEG, str(wrapper))
    with pytest.raises(EncoderError, match="simulated encoder crash"):
        render_video(isolated_notes((60, 64, 72)), out_dir / "song.mp4", small_settings())
    _unchanged(out_dir)
    assert not any(name.startswith(".") for name in os.listdir(out_dir))
