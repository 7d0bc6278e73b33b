"""Named looks. A theme fills every visual setting the user left unset."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SettingsError


@dataclass(frozen=True, slots=True)
class Theme:
    name: str
    description: str
    palette: tuple[str, ...]  # note colours: track/hand/channel order (hand: right, left)
    background_gradient: tuple[str, str]  # top, bottom
    guide_color: str  # octave lines and beat lines
    guide_opacity: float
    hit_line_color: str
    felt_color: str  # the strip above the keys, like a real piano's key felt
    color_mode: str = "track"
    glow: bool = True
    particles: bool = True
    velocity_brightness: bool = True
    labels: str = "none"
    pedal_indicator: bool = True
    progress_bar: bool = True
    note_radius: float = 0.28  # corner radius as a share of the note width
    key_tint: float = 0.85  # how strongly a pressed key takes the note colour


THEMES: dict[str, Theme] = {
    t.name: t
    for t in (
        Theme(
            name="aurora",
            description="Deep night blue, cyan right hand and violet left hand, soft glow.",
            palette=("#35d0ff", "#b46bff", "#4cf2a0", "#ffb547", "#ff6b8b", "#7aa2ff"),
            background_gradient=("#04060f", "#101a33"),
            guide_color="#8fa8ff",
            guide_opacity=0.07,
            hit_line_color="#dff6ff",
            felt_color="#7a1020",
            color_mode="hand",
        ),
        Theme(
            name="classic",
            description="Black stage, violet notes, bright sparks — the look players know.",
            palette=("#b04dff", "#ff4dd8", "#4d9dff", "#4dffb8"),
            background_gradient=("#000000", "#08040e"),
            guide_color="#ffffff",
            guide_opacity=0.10,
            hit_line_color="#ffd6ff",
            felt_color="#5c0c1c",
        ),
        Theme(
            name="sunset",
            description="Warm dusk gradient with coral and gold notes.",
            palette=("#ff7a59", "#ffc94d", "#ff4d8d", "#b07cff"),
            background_gradient=("#1a0b1e", "#3a1630"),
            guide_color="#ffd2b8",
            guide_opacity=0.07,
            hit_line_color="#fff0e0",
            felt_color="#6b0f1a",
            color_mode="hand",
        ),
        Theme(
            name="neon",
            description="Saturated colours by pitch on pure black, for dense music.",
            palette=(
                "#ff3b3b",
                "#ff8c1a",
                "#ffe11a",
                "#7dff1a",
                "#1aff6e",
                "#1affd5",
                "#1ab2ff",
                "#1a4dff",
                "#7a1aff",
                "#d21aff",
                "#ff1ab2",
                "#ff1a5e",
            ),
            background_gradient=("#000000", "#000000"),
            guide_color="#ffffff",
            guide_opacity=0.06,
            hit_line_color="#ffffff",
            felt_color="#400a14",
            color_mode="pitch",
        ),
        Theme(
            name="paper",
            description="Light, calm and printable: ink-blue and terracotta on warm paper.",
            palette=("#2f5d9e", "#c0573e", "#3f8a5a", "#8a5aa8"),
            background_gradient=("#f6f1e7", "#e9e0cf"),
            guide_color="#4a3b2a",
            guide_opacity=0.10,
            hit_line_color="#3a2f25",
            felt_color="#8a1c1c",
            color_mode="hand",
            glow=False,
            particles=False,
        ),
    )
}

DEFAULT_THEME = "aurora"


def get_theme(name: str) -> Theme:
    try:
        return THEMES[name]
    except KeyError:
        names = ", ".join(sorted(THEMES))
        raise SettingsError(f"There is no theme called '{name}'; choose one of {names}.") from None
