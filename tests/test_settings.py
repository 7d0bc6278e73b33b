import pytest
from notefall.common.errors import SettingsError
from notefall.common.settings import (
    Codec,
    Format,
    RenderSettings,
    parse_pitch,
    settings_from_mapping,
)


def test_named_resolutions_and_vertical_swap():
    assert RenderSettings(resolution="720p").size == (1280, 720)
    assert RenderSettings(resolution="2160p").size == (3840, 2160)
    assert RenderSettings(resolution="1080p", vertical=True).size == (1080, 1920)
    assert RenderSettings(resolution="640x360").size == (640, 360)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"resolution": "999p"}, "not a resolution"),
        ({"resolution": "641x360"}, "odd side"),
        ({"resolution": "10000x360"}, "out of range"),
        ({"fps": 29}, "29 fps is not offered"),
        ({"format": "avi"}, "format"),
        ({"format": "mp4", "codec": "vp9"}, "mp4 files cannot hold vp9"),
        ({"format": "mp4", "transparent": True}, "MP4 cannot carry transparency"),
        ({"format": "mov", "codec": "prores", "transparent": True}, "cannot carry transparency"),
        ({"colors": ["#12345"]}, "not a colour"),
        ({"keyboard_range": "C4-D4"}, "at least one octave"),
        ({"keyboard_range": "H2-C7"}, "not a note"),
        ({"start": 5, "end": 4}, "end must be after start"),
        ({"audio": "a.wav", "no_audio": True}, "either an audio file or no audio"),
        ({"speed": 10}, "speed"),
        ({"sparkles": True}, "sparkles: unknown setting"),
    ],
)
def test_invalid_settings_are_refused_with_a_specific_message(data, fragment):
    with pytest.raises(SettingsError) as err:
        settings_from_mapping(data)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_default_codec_follows_container_and_alpha():
    assert RenderSettings().video_codec == Codec.H264
    assert RenderSettings(format=Format.WEBM).video_codec == Codec.VP9
    assert RenderSettings(format=Format.MOV).video_codec == Codec.PRORES
    assert RenderSettings(format=Format.MOV, transparent=True).video_codec == Codec.PRORES_4444


def test_settings_round_trip_through_json():
    s = RenderSettings(
        resolution="1440p", fps=60, colors=("#FF0000", "00ff00"), keyboard_range="A0-C8"
    )
    again = settings_from_mapping(s.model_dump(mode="json"))
    assert again == s
    assert again.colors == ("#ff0000", "#00ff00")
    assert again.keyboard_bounds() == (21, 108)


@pytest.mark.parametrize(
    ("text", "pitch"), [("C4", 60), ("A0", 21), ("C8", 108), ("F#3", 54), ("Bb2", 46), (60, 60)]
)
def test_note_names_parse_to_midi_numbers(text, pitch):
    assert parse_pitch(text) == pitch
