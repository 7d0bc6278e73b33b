"""``notefall render|still|probe`` as a user runs them: exit codes, messages, files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from notefall.common.audio import decode_audio
from notefall.common.video.ffmpeg import probe
from PIL import Image

from tests.e2e._e2e_helpers import SMALL, entries, isolated_notes, run_cli, write_wav
from tests.support.midi_factory import make_midi, smf, track

# Song: notes at 0, 1, 2 s; video = 2 s lead-in + 2.25 s + 2 s tail = 6.25 s by default.
PITCHES = (60, 64, 72)


@pytest.fixture
def song(tmp_path: Path) -> Path:
    path = tmp_path / "song.mid"
    path.write_bytes(isolated_notes(PITCHES))
    return path


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    path = tmp_path / "out"
    path.mkdir()
    return path


FAST = ("--resolution", SMALL, "--preset", "draft", "--lead-in", "0.5", "--tail", "0.5")


def _one_line_error(proc, *, code: int = 2) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {lines}"
    assert lines[0].startswith("notefall: error: ")
    return lines[0]


def test_render_happy_path(song: Path, out_dir: Path) -> None:
    out = out_dir / "song.mp4"
    proc = run_cli("render", song, "-o", out, *FAST)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert entries(out_dir) == ["song.mp4"]
    info = probe(out)
    assert (info.width, info.height) == (256, 144)
    assert info.video_codec == "h264" and info.audio_codec == "aac"
    assert str(out) in proc.stdout


def _bad_inputs(tmp_path: Path, song: Path) -> dict[str, list[str | Path]]:
    png = tmp_path / "picture.mid"
    Image.new("RGB", (16, 16), (200, 10, 10)).save(png, format="PNG")
    type2 = tmp_path / "type2.mid"
    type2.write_bytes(
        smf(track(b"\x00\x90\x3c\x40", b"\x60\x3c\x00"), track(b"\x00\x90\x40\x40", b"\x60\x40\x00"),
            midi_type=2)
    )  # fmt: skip
    truncated = tmp_path / "truncated.mid"
    truncated.write_bytes(make_midi(notes=[(0, 1, 60, 100, 0)])[:10])  # cut inside the header
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"fps": 30, "sparkles": True}))
    return {
        "missing-file": ["render", tmp_path / "nope.mid"],
        "png-not-midi": ["render", png],
        "type-2": ["render", type2],
        "truncated": ["render", truncated],
        "fps-29": ["render", song, "--fps", "29"],
        "unknown-setting": ["render", song, "--settings", unknown],
        "transparent-mp4": ["render", song, "--transparent"],
        "unknown-codec": ["render", song, "--codec", "theora"],
    }


BAD = ["missing-file", "png-not-midi", "type-2", "truncated", "fps-29", "unknown-setting",
       "transparent-mp4", "unknown-codec"]  # fmt: skip


@pytest.mark.parametrize("case", BAD)
@pytest.mark.parametrize("quiet", [True, False], ids=["quiet", "default"])
def test_bad_input_exits_2_with_one_line(
    tmp_path: Path, song: Path, out_dir: Path, case: str, quiet: bool
) -> None:
    args = _bad_inputs(tmp_path, song)[case]
    proc = run_cli(*args, "-o", out_dir / "x.mp4", *FAST, *(["-q"] if quiet else []))
    message = _one_line_error(proc)
    assert len(message) < 300
    assert entries(out_dir) == []


def test_bad_input_messages_say_what_is_wrong(tmp_path: Path, song: Path, out_dir: Path) -> None:
    cases = _bad_inputs(tmp_path, song)
    expect = {
        "missing-file": "not found",
        "png-not-midi": "not a MIDI file",
        "type-2": "type 2",
        "truncated": "truncated",
        "fps-29": "29",
        "unknown-setting": "sparkles",
        "transparent-mp4": "transparen",
    }
    for case, words in expect.items():
        proc = run_cli(*cases[case], "-o", out_dir / "x.mp4", *FAST, "-q")
        assert words.lower() in _one_line_error(proc).lower(), case


def test_output_folder_missing(song: Path, tmp_path: Path) -> None:
    proc = run_cli("render", song, "-o", tmp_path / "no" / "such" / "x.mp4", *FAST, "-q")
    assert "does not exist" in _one_line_error(proc)
    assert not (tmp_path / "no").exists()


def test_still_writes_png_of_the_right_size(song: Path, out_dir: Path) -> None:
    out = out_dir / "x.png"
    proc = run_cli("still", song, "--at", "1.5", "-o", out, "--resolution", "320x180")
    assert proc.returncode == 0, proc.stderr
    with Image.open(out) as im:
        assert im.format == "PNG"
        assert im.size == (320, 180)
        pixels = np.asarray(im.convert("RGB"))
    assert pixels.std() > 5  # a picture, not a blank frame
    assert entries(out_dir) == ["x.png"]


def test_still_vertical_swaps_sides(song: Path, out_dir: Path) -> None:
    out = out_dir / "v.png"
    proc = run_cli("still", song, "--at", "1.5", "-o", out, "--resolution", "320x180", "--vertical")
    assert proc.returncode == 0, proc.stderr
    with Image.open(out) as im:
        assert im.size == (180, 320)


def test_still_beyond_the_end(song: Path, out_dir: Path) -> None:
    proc = run_cli("still", song, "--at", "60", "-o", out_dir / "x.png", "--resolution", SMALL)
    assert "--at" in _one_line_error(proc)
    assert entries(out_dir) == []


def test_probe_json(song: Path) -> None:
    proc = run_cli("probe", song, "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["note_count"] == len(PITCHES)
    assert data["midi_type"] == 1
    assert data["duration"] == pytest.approx(2.25)
    assert data["key_range"]["low"] == 60 and data["key_range"]["high"] == 72


def test_probe_missing_file(tmp_path: Path) -> None:
    _one_line_error(run_cli("probe", tmp_path / "nope.mid", "--json"))


def test_render_with_users_recording(song: Path, tmp_path: Path, out_dir: Path) -> None:
    recording = write_wav(tmp_path / "take.wav", 3.0, freq=440.0)
    out = out_dir / "with-take.mp4"
    proc = run_cli("render", song, "-o", out, *FAST, "--audio", recording, "-q")
    assert proc.returncode == 0, proc.stderr
    info = probe(out)
    assert info.has_audio and info.audio_codec == "aac"
    samples = decode_audio(out, 48_000)
    # The recording plays from song time 0 = video 0.5 s; the tone is a steady 440 Hz.
    body = samples[int(1.0 * 48_000) : int(2.0 * 48_000), 0]
    assert np.sqrt(np.mean(body**2)) > 0.1
    spectrum = np.abs(np.fft.rfft(body))
    assert np.argmax(spectrum) * 48_000 / body.shape[0] == pytest.approx(440, abs=3)
    # Before the song starts there is silence (the lead-in).
    assert np.abs(samples[: int(0.4 * 48_000)]).max() < 0.01
    assert entries(out_dir) == ["with-take.mp4"]


def test_render_no_audio(song: Path, out_dir: Path) -> None:
    out = out_dir / "silent.mp4"
    proc = run_cli("render", song, "-o", out, *FAST, "--no-audio", "-q")
    assert proc.returncode == 0, proc.stderr
    info = probe(out)
    assert info.has_video
    assert not info.has_audio
