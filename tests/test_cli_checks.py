"""The CLI refuses what it cannot do before doing any work, in one line with exit code 2."""

import subprocess
import sys

import pytest
from notefall.cli.main import main
from notefall.common.examples import EXAMPLE_MIDI

from tests.support.midi_factory import make_midi


def run(capsys, *args):
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    return code, err


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["-o", "{tmp}"], "is a folder"),
        (["-o", "{tmp}/song.txt"], "must end in .mp4, .webm or .mov"),
        (["-o", "{tmp}/song.webm", "--format", "mp4"], "does not match the file name"),
        (["-o", "{tmp}/song.mp4", "--start", "1000"], "after the song ends"),
    ],
)
def test_render_refuses_impossible_outputs_and_ranges(capsys, tmp_path, extra, fragment):
    args = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    code, err = run(capsys, "render", EXAMPLE_MIDI, *args)
    assert code == 2
    assert fragment in err and len(err.strip().splitlines()) == 1
    assert not any(p.suffix in (".mp4", ".webm") for p in tmp_path.iterdir())


def test_a_song_without_notes_is_refused(capsys, tmp_path):
    empty = tmp_path / "empty.mid"
    empty.write_bytes(make_midi(notes=[]))
    code, err = run(capsys, "render", empty, "-o", tmp_path / "x.mp4")
    assert code == 2 and "no notes" in err
    code, err = run(capsys, "still", empty, "--at", "0", "-o", tmp_path / "x.png")
    assert code == 2 and "no notes" in err


def test_still_must_be_a_png(capsys, tmp_path):
    code, err = run(capsys, "still", EXAMPLE_MIDI, "--at", "1", "-o", tmp_path / "x.jpg")
    assert code == 2 and "PNG" in err


def test_container_follows_the_file_name(tmp_path):
    out = tmp_path / "clip.webm"
    args = ["render", str(EXAMPLE_MIDI), "-o", str(out), "--resolution", "256x144"]
    code = main([*args, "--preset", "draft", "--end", "3", "-q", "--no-audio"])
    assert code == 0
    assert out.read_bytes()[:4] == b"\x1a\x45\xdf\xa3"  # Matroska/WebM magic


def test_end_past_the_music_stops_with_the_music(tmp_path):
    from notefall.common.settings import RenderSettings
    from notefall.common.timeline import build_timeline

    from tests.support.songs import make_song

    song = make_song([(0.0, 4.0, 60)])
    tl = build_timeline(song, RenderSettings(start=1.0, end=1000.0, tail=2.0))
    assert tl.song_to == pytest.approx(4.0) and tl.duration == pytest.approx(3.0 + 2.0)


def test_probe_into_a_closed_pipe_is_not_an_error():
    cmd = f"{sys.executable} -m notefall.cli probe {EXAMPLE_MIDI} --json | head -c 20"
    proc = subprocess.run(["bash", "-c", f"set -o pipefail; {cmd}"], capture_output=True, text=True)
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    assert proc.stdout.startswith("{")
