"""Settings + theme → the concrete look of one render, and each note's colour."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..settings import ColorMode, Drums, Labels, RenderSettings
from ..song import DRUM_CHANNEL, Song
from .draw import RGB, hex_rgb, scale
from .themes import Theme, get_theme

VELOCITY_LEVELS = 4  # brightness steps, so pressed-key sprites can be cached


@dataclass(frozen=True, slots=True)
class Style:
    theme: Theme
    palette: tuple[RGB, ...]
    color_mode: ColorMode
    split_point: int
    velocity_brightness: bool
    note_labels: bool
    key_labels: bool
    glow: bool
    particles: bool
    pedal_indicator: bool
    progress_bar: bool
    sustain_keys: bool
    background_top: RGB
    background_bottom: RGB
    background_image: str | None
    transparent: bool
    watermark: bool
    drums_shown: bool


def resolve_style(settings: RenderSettings, song: Song | None = None) -> Style:
    theme = get_theme(settings.theme)
    color_mode = settings.color_mode or ColorMode(theme.color_mode)
    if settings.color_mode is None and color_mode == ColorMode.HAND and song is not None:
        # A file that already keeps the hands (or instruments) on separate tracks knows
        # better than any split point: the tenor voice often crosses middle C.
        pitched = {t.index for t in song.tracks if t.note_count and not t.is_drums}
        if len(pitched) >= 2:
            color_mode = ColorMode.TRACK
    palette = tuple(hex_rgb(c) for c in (settings.colors or theme.palette))
    labels = settings.labels or Labels(theme.labels)
    if settings.background_gradient:
        top, bottom = (hex_rgb(c) for c in settings.background_gradient)
    elif settings.background:
        top = bottom = hex_rgb(settings.background)
    else:
        top, bottom = (hex_rgb(c) for c in theme.background_gradient)

    def pick(value: bool | None, default: bool) -> bool:
        return default if value is None else value

    return Style(
        theme=theme,
        palette=palette,
        color_mode=color_mode,
        split_point=int(settings.split_point),
        velocity_brightness=pick(settings.velocity_brightness, theme.velocity_brightness),
        note_labels=labels in (Labels.NOTES, Labels.BOTH),
        key_labels=labels in (Labels.KEYS, Labels.BOTH),
        glow=pick(settings.glow, theme.glow),
        particles=pick(settings.particles, theme.particles),
        pedal_indicator=pick(settings.pedal_indicator, theme.pedal_indicator),
        progress_bar=pick(settings.progress_bar, theme.progress_bar),
        sustain_keys=settings.sustain_keys,
        background_top=top,
        background_bottom=bottom,
        background_image=settings.background_image,
        transparent=settings.transparent,
        watermark=settings.watermark,
        drums_shown=settings.drums == Drums.SHOW,
    )


def drawn_notes(song: Song, style: Style) -> np.ndarray:
    """The notes that appear in the picture (drums only when asked for)."""
    if style.drums_shown:
        return song.notes
    return song.notes[song.notes["channel"] != DRUM_CHANNEL]


def note_color_keys(notes: np.ndarray, song: Song, style: Style) -> tuple[np.ndarray, list[RGB]]:
    """Per note an index into a small table of colours (palette entry × velocity level)."""
    n = notes.shape[0]
    pal = len(style.palette)
    if style.color_mode == ColorMode.TRACK:
        # Number the tracks that have drawn notes, in file order, so track 0 (often
        # only tempo and names) does not use up the first colour.
        tracks = np.unique(notes["track"]) if n else np.zeros(0, np.uint16)
        order = np.zeros(int(tracks.max()) + 1 if tracks.size else 1, np.int64)
        order[tracks] = np.arange(tracks.size)
        base = order[notes["track"]] % pal
    elif style.color_mode == ColorMode.HAND:
        base = np.where(notes["pitch"] >= style.split_point, 0, 1 % pal)
    elif style.color_mode == ColorMode.CHANNEL:
        used = np.unique(notes["channel"]) if n else np.zeros(0, np.uint8)
        order = np.zeros(16, np.int64)
        order[used] = np.arange(used.size)
        base = order[notes["channel"]] % pal
    else:  # pitch class, around the palette
        base = (notes["pitch"].astype(np.int64) % 12) * pal // 12
    if style.velocity_brightness:
        level = np.minimum(
            notes["velocity"].astype(np.int64) * VELOCITY_LEVELS // 128, VELOCITY_LEVELS - 1
        )
    else:
        level = np.full(n, VELOCITY_LEVELS - 1, np.int64)
    keys = base.astype(np.int64) * VELOCITY_LEVELS + level
    table: list[RGB] = []
    for p in range(pal):
        for lv in range(VELOCITY_LEVELS):
            # Soft notes dim to 60 %, never to black, so every note stays readable.
            table.append(scale(style.palette[p], 0.6 + 0.4 * (lv + 1) / VELOCITY_LEVELS))
    return keys, table
