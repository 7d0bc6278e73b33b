"""The audio stage: a WAV aligned to the video timeline, from MIDI synthesis or a recording."""

from .analysis import decode_audio, detect_onsets
from .prepare import AUDIO_FILENAME, prepare_audio
from .recording import recording_start_sample
from .synth import default_soundfont

__all__ = [
    "AUDIO_FILENAME",
    "decode_audio",
    "default_soundfont",
    "detect_onsets",
    "prepare_audio",
    "recording_start_sample",
]
