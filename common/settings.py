"""``RenderSettings``: the one schema shared by the CLI, the API, the workers and the desktop app.

Unknown fields are refused. Visual fields left as ``None`` take the theme's value
(see ``themes.py``); ``resolve_style`` merges the two.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import SettingsError

RESOLUTIONS: dict[str, tuple[int, int]] = {
    "720p": (1280, 720),
    "1080p": (1920, 1080),
    "1440p": (2560, 1440),
    "2160p": (3840, 2160),
}
MAX_DIMENSION = 4096
MIN_DIMENSION = 128
FRAME_RATES = (24, 25, 30, 50, 60)

_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")
_WXH = re.compile(r"^(\d{2,5})x(\d{2,5})$")
_NOTE = re.compile(r"^([A-Ga-g])([#b♯♭]?)(-?\d)$")


class Format(StrEnum):
    MP4 = "mp4"
    WEBM = "webm"
    MOV = "mov"


class Codec(StrEnum):
    H264 = "h264"
    HEVC = "hevc"
    VP9 = "vp9"
    AV1 = "av1"
    PRORES = "prores"  # ProRes 422 HQ
    PRORES_4444 = "prores4444"  # with alpha


class QualityPreset(StrEnum):
    DRAFT = "draft"
    STANDARD = "standard"
    HIGH = "high"
    MASTER = "master"


class ColorMode(StrEnum):
    TRACK = "track"
    HAND = "hand"
    CHANNEL = "channel"
    PITCH = "pitch"


class Labels(StrEnum):
    NONE = "none"
    NOTES = "notes"
    KEYS = "keys"
    BOTH = "both"


class Drums(StrEnum):
    HIDE = "hide"  # heard, not drawn (drum hits are not piano keys)
    SHOW = "show"  # drawn like any other notes on their pitch
    MUTE = "mute"  # neither drawn nor heard


# Which codecs each container takes, the default first.
CONTAINER_CODECS: dict[Format, tuple[Codec, ...]] = {
    Format.MP4: (Codec.H264, Codec.HEVC, Codec.AV1),
    Format.WEBM: (Codec.VP9, Codec.AV1),
    Format.MOV: (Codec.PRORES, Codec.PRORES_4444, Codec.H264, Codec.HEVC),
}
ALPHA_CODECS = {Codec.VP9, Codec.PRORES_4444}

Color = Annotated[str, Field(description="#RRGGBB")]


def parse_color(value: str) -> tuple[int, int, int]:
    m = _HEX.match(value.strip())
    if not m:
        raise ValueError(f"'{value}' is not a colour; use #RRGGBB, e.g. #4FC3F7")
    h = m.group(1)
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def parse_pitch(value: str | int) -> int:
    """'A0' → 21, 'C8' → 108, 60 → 60."""
    if isinstance(value, int):
        pitch = value
    else:
        text = value.strip()
        if text.isdigit():
            pitch = int(text)
        else:
            m = _NOTE.match(text)
            if not m:
                raise ValueError(f"'{value}' is not a note; use a name like C4 or a MIDI number")
            base = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}[m.group(1).upper()]
            acc = {"#": 1, "♯": 1, "b": -1, "♭": -1, "": 0}[m.group(2)]
            pitch = (int(m.group(3)) + 1) * 12 + base + acc
    if not 0 <= pitch <= 127:
        raise ValueError(f"note {value} is outside the MIDI range 0–127")
    return pitch


class RenderSettings(BaseModel):
    """Every option of a render. JSON field names equal the CLI long options."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    # Output
    resolution: str = Field("1080p", description="720p, 1080p, 1440p, 2160p or WxH")
    vertical: bool = Field(False, description="9:16 portrait layout (Shorts, Reels)")
    fps: int = Field(30, description="frames per second: 24, 25, 30, 50 or 60")
    format: Format = Field(Format.MP4, description="container: mp4, webm or mov")
    codec: Codec | None = Field(None, description="default: h264 (mp4), vp9 (webm), prores (mov)")
    preset: QualityPreset = Field(
        QualityPreset.STANDARD, description="quality: draft, standard, high, master"
    )
    transparent: bool = Field(False, description="alpha channel (webm vp9, mov prores4444)")

    # Time
    start: float | None = Field(None, ge=0, description="song seconds to start at")
    end: float | None = Field(None, gt=0, description="song seconds to end at")
    speed: float = Field(1.0, ge=0.25, le=4.0, description="playback speed multiplier")
    lead_in: float = Field(2.0, ge=0, le=30, description="seconds before the first note")
    tail: float = Field(2.0, ge=0, le=30, description="seconds after the last note ends")

    # Look
    theme: str = Field("aurora", description="aurora, classic, sunset, neon or paper")
    color_mode: ColorMode | None = Field(
        None, description="colour notes by track, hand, channel or pitch"
    )
    colors: tuple[Color, ...] | None = Field(None, description="note colours, in track/hand order")
    split_point: str | int = Field("C4", description="hand split for color_mode=hand")
    velocity_brightness: bool | None = Field(None, description="softer notes look dimmer")
    labels: Labels | None = Field(None, description="note names on notes, keys, both or none")
    keyboard_range: str = Field("fit", description="fit, full (88 keys) or LOW-HIGH, e.g. C2-C7")
    sustain_keys: bool = Field(True, description="keys stay lit while the pedal holds the note")
    pedal_indicator: bool | None = Field(None, description="show when the sustain pedal is down")
    glow: bool | None = Field(None, description="glow around notes and above pressed keys")
    particles: bool | None = Field(None, description="sparks rising from pressed keys")
    lookahead: float = Field(
        2.5, ge=0.5, le=15, description="seconds of music visible above the keys"
    )
    background: Color | None = Field(None, description="solid background colour")
    background_gradient: tuple[Color, Color] | None = Field(
        None, description="top and bottom colours"
    )
    background_image: str | None = Field(
        None, description="PNG or JPEG behind the notes (darkened)"
    )
    title: str | None = Field(None, max_length=120, description="title card text")
    artist: str | None = Field(None, max_length=120, description="title card second line")
    title_duration: float = Field(3.0, ge=0, le=15, description="seconds the title card shows")
    progress_bar: bool | None = Field(None, description="thin progress bar at the top")
    watermark: bool = Field(
        False, description="'Made with Notefall' mark (forced on the free tier)"
    )
    drums: Drums = Field(Drums.HIDE, description="channel 10: hide (heard only), show or mute")

    # Audio
    audio: str | None = Field(None, description="your recording: WAV, FLAC, MP3 or OGG")
    audio_offset_ms: int = Field(
        0, ge=-600_000, le=600_000, description="positive delays your recording"
    )
    soundfont: str | None = Field(None, description=".sf2/.sf3 file; default General MIDI bank")
    no_audio: bool = Field(False, description="a silent video")
    audio_bitrate: int | None = Field(None, ge=32, le=512, description="kbit/s; default by preset")

    @field_validator("resolution")
    @classmethod
    def _check_resolution(cls, v: str) -> str:
        text = v.strip().lower()
        if text in RESOLUTIONS:
            return text
        m = _WXH.match(text)
        if not m:
            raise ValueError(f"'{v}' is not a resolution; use 720p, 1080p, 1440p, 2160p or WxH")
        w, h = int(m.group(1)), int(m.group(2))
        for d in (w, h):
            if not MIN_DIMENSION <= d <= MAX_DIMENSION:
                raise ValueError(
                    f"{w}x{h} is out of range: each side must be {MIN_DIMENSION}–{MAX_DIMENSION} px"
                )
        if w % 2 or h % 2:
            raise ValueError(f"{w}x{h} has an odd side; video codecs need even width and height")
        return f"{w}x{h}"

    @field_validator("fps")
    @classmethod
    def _check_fps(cls, v: int) -> int:
        if v not in FRAME_RATES:
            raise ValueError(
                f"{v} fps is not offered; choose one of {', '.join(map(str, FRAME_RATES))}"
            )
        return v

    @field_validator("colors")
    @classmethod
    def _check_colors(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is None:
            return None
        if not 1 <= len(v) <= 16:
            raise ValueError("give between 1 and 16 colours")
        return tuple(_normalise_color(c) for c in v)

    @field_validator("background")
    @classmethod
    def _check_background(cls, v: str | None) -> str | None:
        return None if v is None else _normalise_color(v)

    @field_validator("background_gradient")
    @classmethod
    def _check_gradient(cls, v: tuple[str, str] | None) -> tuple[str, str] | None:
        return None if v is None else (_normalise_color(v[0]), _normalise_color(v[1]))

    @field_validator("split_point")
    @classmethod
    def _check_split(cls, v: str | int) -> int:
        return parse_pitch(v)

    @field_validator("keyboard_range")
    @classmethod
    def _check_range(cls, v: str) -> str:
        text = v.strip()
        if text.lower() in ("fit", "full"):
            return text.lower()
        parts = text.split("-", 1) if not text.startswith("-") else []
        if len(parts) != 2:
            raise ValueError(f"'{v}' is not a keyboard range; use fit, full or LOW-HIGH like C2-C7")
        lo, hi = parse_pitch(parts[0]), parse_pitch(parts[1])
        if hi - lo < 11:
            raise ValueError("a keyboard range must span at least one octave")
        return f"{lo}-{hi}"

    @model_validator(mode="after")
    def _check_combination(self) -> RenderSettings:
        codec = self.codec or CONTAINER_CODECS[self.format][0]
        if codec not in CONTAINER_CODECS[self.format]:
            allowed = ", ".join(c.value for c in CONTAINER_CODECS[self.format])
            raise ValueError(
                f"{self.format.value} files cannot hold {codec.value}; use one of {allowed}"
            )
        if self.transparent:
            if self.format == Format.MP4:
                raise ValueError("MP4 cannot carry transparency; use --format webm or --format mov")
            if self.codec is not None and self.codec not in ALPHA_CODECS:
                raise ValueError(
                    f"{self.codec.value} cannot carry transparency; use vp9 or prores4444"
                )
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        if self.audio and self.no_audio:
            raise ValueError("choose either an audio file or no audio, not both")
        if self.audio and self.soundfont:
            raise ValueError("a recording replaces synthesis; give either audio or a soundfont")
        if self.background_image and self.transparent:
            raise ValueError("a transparent video cannot have a background image")
        return self

    # Derived values -------------------------------------------------------------------------

    @property
    def size(self) -> tuple[int, int]:
        """Output (width, height) in pixels after the vertical flag."""
        if self.resolution in RESOLUTIONS:
            w, h = RESOLUTIONS[self.resolution]
        else:
            w, h = (int(x) for x in self.resolution.split("x"))
        if self.vertical and w > h:
            w, h = h, w
        return w, h

    @property
    def video_codec(self) -> Codec:
        if self.codec is not None:
            return self.codec
        if self.transparent:
            return Codec.VP9 if self.format == Format.WEBM else Codec.PRORES_4444
        return CONTAINER_CODECS[self.format][0]

    @property
    def has_alpha(self) -> bool:
        return self.transparent

    def keyboard_bounds(self) -> tuple[int, int] | None:
        """Explicit (low, high) pitches, or None for 'fit' (resolved against the song)."""
        if self.keyboard_range == "full":
            return 21, 108
        if self.keyboard_range == "fit":
            return None
        lo, hi = self.keyboard_range.split("-")
        return int(lo), int(hi)

    def input_paths(self) -> dict[str, Path]:
        paths = {}
        for name in ("audio", "soundfont", "background_image"):
            value = getattr(self, name)
            if value:
                paths[name] = Path(value)
        return paths


def _normalise_color(value: str) -> str:
    r, g, b = parse_color(value)
    return f"#{r:02x}{g:02x}{b:02x}"


def settings_from_mapping(data: dict[str, Any]) -> RenderSettings:
    """Validate a JSON-like mapping; raise ``SettingsError`` with a one-line message."""
    try:
        return RenderSettings.model_validate(data)
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "settings"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown setting"
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)
