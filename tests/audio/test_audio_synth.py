"""Synthesis: timing on the video timeline, controllers, loudness, errors, cancel, memory."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from _audio_helpers import RATE, make_song, read_wav, rms, timeline
from notefall.common.audio import default_soundfont, detect_onsets, prepare_audio
from notefall.common.errors import AudioError, RenderCancelled
from notefall.common.progress import CancelToken
from notefall.common.settings import RenderSettings
from notefall.common.song import CONTROL_CC, CONTROL_PITCHBEND, CONTROL_PROGRAM, PEDAL_DTYPE

S = RenderSettings()
# Pitches whose TimGM6mb samples start at once (G4's sample opens with 7 ms of silence).
SEPARATED = [(0.0, 0.15, 60), (1.0, 1.15, 72), (2.0, 2.15, 76), (3.3, 3.45, 48)]


def render(song, tl, tmp_path: Path, settings: RenderSettings = S, name="w"):
    out = prepare_audio(song, settings, tl, tmp_path / name)
    assert out is not None
    return read_wav(out)


@pytest.mark.parametrize(
    ("speed", "song_from", "lead_in"), [(1.0, 0.0, 1.5), (2.0, 0.0, 1.0), (0.75, 0.5, 0.3)]
)
def test_onsets_land_on_their_video_samples(tmp_path, speed, song_from, lead_in):
    song = make_song(SEPARATED)
    tl = timeline(3.6, speed=speed, song_from=song_from, lead_in=lead_in, tail=0.5)
    audio, _ = render(song, tl, tmp_path)
    # A note from before the clip start still rings at video time 0 and counts there.
    expected = [max(0.0, tl.video_time_of_song(n[0])) for n in SEPARATED]
    found = detect_onsets(audio, RATE)
    assert len(found) == len(expected)
    assert np.max(np.abs(np.array(found) - expected)) < 0.002
    if expected[0] > 0:
        # The synth is split at the event sample: sound starts exactly there, not at a
        # block boundary (±3 samples: the attack's first samples may round to 0 in 16 bits).
        first = int(np.flatnonzero(np.abs(audio).max(axis=1) > 0)[0])
        assert abs(first - round(expected[0] * RATE)) <= 3, first - round(expected[0] * RATE)


@pytest.mark.parametrize(
    ("song_to", "speed", "lead_in", "tail"), [(1.2345, 1.0, 2.0, 2.0), (3.0, 0.75, 0.1, 0.01)]
)
def test_exact_length_and_format(tmp_path, song_to, speed, lead_in, tail):
    tl = timeline(song_to, speed=speed, lead_in=lead_in, tail=tail)
    _, params = render(make_song([(0.0, 0.5, 60)]), tl, tmp_path)
    assert (params.nchannels, params.sampwidth, params.framerate) == (2, 2, RATE)
    assert params.nframes == round(tl.duration * RATE)
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["audio.wav"]


def spectrum(x: np.ndarray) -> np.ndarray:
    mag = np.abs(np.fft.rfft(x.mean(axis=1) * np.hanning(x.shape[0])))
    return mag / np.linalg.norm(mag)


def test_program_change_changes_timbre_and_synthesis_is_deterministic(tmp_path):
    notes = [(0.0, 1.0, 60)]
    tl = timeline(1.0)
    piano, _ = render(make_song(notes), tl, tmp_path, name="a")
    again, _ = render(make_song(notes), tl, tmp_path, name="b")
    violin, _ = render(make_song(notes, [(0.0, 0, CONTROL_PROGRAM, 40, 0)]), tl, tmp_path, name="c")
    assert np.array_equal(piano, again)
    seg = slice(round(0.2 * RATE), round(0.7 * RATE))
    similarity = float(spectrum(piano[seg]) @ spectrum(violin[seg]))
    assert similarity < 0.8, similarity


def test_program_change_mid_song_applies_from_its_time(tmp_path):
    notes = [(0.0, 0.5, 60), (1.0, 1.5, 60)]
    tl = timeline(1.5)
    plain, _ = render(make_song(notes), tl, tmp_path, name="a")
    switched, _ = render(
        make_song(notes, [(0.9, 0, CONTROL_PROGRAM, 73, 0)]), tl, tmp_path, name="b"
    )
    first, second = slice(0, round(0.5 * RATE)), slice(RATE, round(1.5 * RATE))
    assert float(spectrum(plain[first]) @ spectrum(switched[first])) > 0.99
    assert float(spectrum(plain[second]) @ spectrum(switched[second])) < 0.8


def test_drums_heard_unless_muted(tmp_path):
    song = make_song([(0.1, 0.2, 38, 110, 9), (0.6, 0.7, 42, 110, 9)])
    tl = timeline(1.0)
    heard, _ = render(song, tl, tmp_path, name="a")
    muted, _ = render(song, tl, tmp_path, RenderSettings(drums="mute"), name="b")
    assert np.abs(heard).max() > 0.5
    assert not muted.any()


def test_note_sounding_before_clip_start_is_heard(tmp_path):
    # An organ chord from song time 0 to 6; the clip starts at song time 3 with no lead-in.
    notes = [(0.0, 6.0, 60), (0.0, 6.0, 64)]
    organ = [(0.0, 0, CONTROL_PROGRAM, 19, 0)]
    tl = timeline(4.0, song_from=3.0)
    clip, _ = render(make_song(notes, organ), tl, tmp_path)
    full, _ = render(make_song(notes, organ), timeline(4.0), tmp_path, name="full")
    head = clip[: RATE // 2]
    assert rms(head) > 0.05
    # Same sound as the uncut render at that point (the organ, not a re-attacked piano).
    same = full[3 * RATE : round(3.5 * RATE)]
    assert float(spectrum(head) @ spectrum(same)) > 0.95


@pytest.mark.parametrize("source", ["cc64", "pedals", "sound_end"])
def test_sustain_pedal_keeps_notes_ringing(tmp_path, source):
    if source == "sound_end":
        song = make_song([(0.0, 0.2, 60, 100, 0, 1.5)])
    elif source == "cc64":
        song = make_song(
            [(0.0, 0.2, 60)], [(0.0, 0, CONTROL_CC, 64, 127), (1.5, 0, CONTROL_CC, 64, 0)]
        )
    else:
        song = make_song([(0.0, 0.2, 60)], pedals=np.array([(0.0, 1.5, 0)], PEDAL_DTYPE))
    tl = timeline(2.5)
    held, _ = render(song, tl, tmp_path, name="a")
    dry, _ = render(make_song([(0.0, 0.2, 60)]), tl, tmp_path, name="b")
    window = slice(round(0.9 * RATE), round(1.1 * RATE))
    assert rms(held[window]) > 10 * rms(dry[window])
    assert rms(held[round(2.3 * RATE) :]) < 0.1 * rms(held[window])  # released at 1.5 s


def test_volume_pan_expression_and_pitch_bend(tmp_path):
    notes = [(0.0, 1.0, 69)]
    tl = timeline(1.0)
    base, _ = render(make_song(notes), tl, tmp_path, name="base")
    left, _ = render(make_song(notes, [(0.0, 0, CONTROL_CC, 10, 0)]), tl, tmp_path, name="pan")
    assert rms(left[:, 0]) > 5 * rms(left[:, 1])
    # Loudness is normalised per file, so compare a quiet note against a loud one in one file.
    two = [(0.0, 0.5, 69), (1.0, 1.5, 69)]
    tl2 = timeline(1.5)
    for cc in (7, 11):
        soft, _ = render(
            make_song(two, [(0.9, 0, CONTROL_CC, cc, 30)]), tl2, tmp_path, name=f"c{cc}"
        )
        assert rms(soft[RATE + 2000 : RATE + 20000]) < 0.3 * rms(soft[2000:20000])
    bent, _ = render(
        make_song(notes, [(0.0, 0, CONTROL_PITCHBEND, 0, 16383)]), tl, tmp_path, name="pb"
    )
    seg = slice(round(0.2 * RATE), round(0.8 * RATE))
    freqs = np.fft.rfftfreq(seg.stop - seg.start, 1 / RATE)

    def fundamental(x):
        spec = np.abs(np.fft.rfft(x[seg].mean(axis=1)))
        band = (freqs > 300) & (freqs < 600)
        return freqs[band][np.argmax(spec[band])]

    assert abs(fundamental(base) - 440) < 5
    assert abs(fundamental(bent) - 440 * 2 ** (2 / 12)) < 8  # default bend range: 2 semitones


def test_loudness_is_normalised_without_clipping(tmp_path):
    soft, _ = render(make_song([(0.0, 0.5, 60, 30)]), timeline(1.0), tmp_path, name="soft")
    cluster = [(0.0, 1.0, p, 127) for p in range(36, 96, 2)]
    loud, _ = render(make_song(cluster), timeline(1.0), tmp_path, name="loud")
    assert 0.85 < np.abs(loud).max() <= 0.90  # peak normalised to −1 dBFS
    # A lone pp note is boosted by the 20 dB cap (its raw peak is ~0.03), not to full scale.
    assert 0.1 < np.abs(soft).max() < 0.5
    assert not (np.abs(loud) >= 0.999).any()


def test_custom_soundfont_path_is_used(tmp_path):
    tl = timeline(0.5)
    song = make_song([(0.0, 0.3, 60)])
    default, _ = render(song, tl, tmp_path, name="a")
    explicit, _ = render(
        song, tl, tmp_path, RenderSettings(soundfont=str(default_soundfont())), name="b"
    )
    assert np.array_equal(default, explicit)
    assert default_soundfont().name == "TimGM6mb.sf2"


def test_bad_soundfont_is_an_audio_error(tmp_path):
    text = tmp_path / "notes.sf2"
    text.write_text("not a soundfont")
    riff_wave = tmp_path / "fake.sf2"
    riff_wave.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(32))
    damaged = tmp_path / "damaged.sf2"
    damaged.write_bytes(b"RIFF\x24\x00\x00\x00sfbkLIST" + bytes(32))
    for path, words in [
        (tmp_path / "missing.sf2", "not found"),
        (text, "not a SoundFont"),
        (riff_wave, "not a SoundFont"),
        (damaged, "damaged"),
    ]:
        work = tmp_path / f"w-{path.stem}"
        with pytest.raises(AudioError, match=words) as info:
            prepare_audio(
                make_song([(0, 1, 60)]), RenderSettings(soundfont=str(path)), timeline(1), work
            )
        assert "\n" not in info.value.message
        assert not any(work.iterdir())


def test_no_audio_gives_none(tmp_path):
    assert (
        prepare_audio(
            make_song([(0, 1, 60)]), RenderSettings(no_audio=True), timeline(1), tmp_path / "w"
        )
        is None
    )
    assert not (tmp_path / "w").exists()


def test_cancel_mid_synthesis_leaves_nothing(tmp_path):
    token = CancelToken()
    seen: list[float] = []

    def progress(f: float) -> None:
        seen.append(f)
        if f > 0.3:
            token.cancel()

    notes = [(t * 0.5, t * 0.5 + 0.4, 60 + t % 12) for t in range(120)]
    work = tmp_path / "w"
    with pytest.raises(RenderCancelled):
        prepare_audio(make_song(notes), S, timeline(60.0), work, cancel=token, on_progress=progress)
    assert not any(work.iterdir())
    assert 0.3 < seen[-1] < 0.6  # stopped at the next block, not at the end


def test_progress_goes_to_one(tmp_path):
    seen: list[float] = []
    prepare_audio(
        make_song([(0, 1, 60)]), S, timeline(3.0), tmp_path / "w", on_progress=seen.append
    )
    assert seen == sorted(seen) and seen[-1] == 1.0 and seen[0] < 0.5


def test_ten_minute_song_streams_in_bounded_memory(tmp_path):
    minutes = 10
    notes = [(t * 1.0, t * 1.0 + 0.3, 48 + t % 24, 80) for t in range(minutes * 60)]
    song = make_song(notes)
    tl = timeline(minutes * 60.0)
    full_float32 = round(tl.duration * RATE) * 2 * 4
    tracemalloc.start()
    try:
        out = prepare_audio(song, S, tl, tmp_path / "w")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out is not None
    assert out.stat().st_size == 44 + round(tl.duration * RATE) * 4
    assert peak < full_float32 / 20, (peak, full_float32)
    out.unlink()  # 115 MB; pytest keeps old tmp dirs around
