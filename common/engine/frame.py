"""``FrameRenderer``: a frame is a pure function of (song, settings, time).

Used alike by ``notefall render`` (every frame, in the encoder's pixel format),
``notefall still`` and thumbnails (one RGB frame) and the desktop preview.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..settings import RenderSettings
from ..song import Song
from ..timeline import Timeline, build_timeline
from .draw import RGB, hex_rgb, mix
from .effects import HitLine, KeyGlow, Particles
from .index import IntervalIndex
from .keyboard import Keyboard
from .layout import FrameLayout, KeyboardLayout, fit_range
from .overlays import (
    PedalIndicator,
    ProgressBar,
    TitleCard,
    Watermark,
    background_band,
    separable_background,
)
from .planes import Frame, PixelFormat
from .strip import NoteStrip, bar_times
from .style import Style, drawn_notes, note_color_keys, resolve_style


class FrameRenderer:
    def __init__(
        self,
        song: Song,
        settings: RenderSettings,
        *,
        pixel_format: PixelFormat | None = None,
        timeline: Timeline | None = None,
    ) -> None:
        style = resolve_style(settings, song)
        if pixel_format is None:
            pixel_format = PixelFormat.RGBA if settings.transparent else PixelFormat.RGB
        fmt = pixel_format
        self.song, self.settings, self.style, self.format = song, settings, style, fmt
        self.timeline = timeline or build_timeline(song, settings)
        width, height = settings.size
        notes = drawn_notes(song, style)
        low, high = settings.keyboard_bounds() or fit_range(song, style.drums_shown)
        keys = KeyboardLayout.build(low, high, width)
        layout = FrameLayout.build(width, height, keys, style.progress_bar)
        self.keys, self.layout = keys, layout
        self.notes = notes
        color_keys, colors = note_color_keys(notes, song, style)
        self.color_keys, self.colors = color_keys, colors
        self.color_array = np.asarray(colors, np.float32).reshape(-1, 3)
        self.held_colors = [mix(c, (0.93, 0.93, 0.95), 0.6) for c in colors]
        # Strip pixels per song second: ``lookahead`` video seconds fill the note area.
        k = layout.hit_y / (settings.lookahead * settings.speed)
        sigs = [(ts.time, ts.numerator, ts.denominator) for ts in song.time_signatures]
        bars = bar_times(song.beat_times(self.timeline.song_to + 10), sigs)
        self.background = background_band(
            layout,
            keys,
            fmt,
            top=style.background_top,
            bottom=style.background_bottom,
            image=style.background_image,
            transparent=style.transparent,
            guide=style.theme.guide_color,
            guide_opacity=style.theme.guide_opacity,
        )
        self.backdrop = separable_background(self.background, fmt)
        self.strip = NoteStrip(
            notes, color_keys, colors, keys, layout, style, fmt, k, bars, self.backdrop
        )
        theme = style.theme
        self.keyboard = Keyboard(
            keys, layout, fmt, felt=theme.felt_color, labels=style.key_labels, tint=theme.key_tint
        )
        self.hit_line = HitLine(layout, fmt, theme.hit_line_color, style.glow)
        self.key_glow = KeyGlow(layout, fmt, keys.white_width) if style.glow else None
        self.particles = Particles(layout, fmt, keys.white_width) if style.particles else None
        held_end = notes["sound_end"] if style.sustain_keys else notes["end"]
        self.held_end = np.maximum(held_end, notes["end"])
        self.key_index = IntervalIndex(notes["start"], self.held_end)
        self.centers = (keys.key_x0[notes["pitch"]] + keys.key_x1[notes["pitch"]]) / 2.0
        self.in_range = (notes["pitch"] >= keys.low) & (notes["pitch"] <= keys.high)
        self.pedals = song.pedals
        self.pedal = (
            PedalIndicator(layout, fmt, style.palette[0], _quiet_color(style))
            if style.pedal_indicator
            else None
        )
        self.progress = (
            ProgressBar(layout, fmt, style.palette[0], style.background_top)
            if style.progress_bar
            else None
        )
        self.title = None
        if settings.title_duration > 0 and (settings.title or settings.artist):
            self.title = TitleCard(
                layout, fmt, settings.title or "", settings.artist or "", settings.title_duration
            )
        self.watermark = Watermark(layout, fmt) if style.watermark else None
        self.frame = Frame(width, height, fmt)

    @property
    def frame_count(self) -> int:
        return self.timeline.frame_count

    def new_frame(self) -> Frame:
        """A frame buffer to render into (the pipeline keeps a few in flight)."""
        return Frame(self.layout.width, self.layout.height, self.format)

    def render(self, index: int, into: Frame | None = None) -> Frame:
        """Frame ``index`` of the render's global frame grid."""
        return self.render_at(self.timeline.video_time(index), into)

    def render_at(self, video_time: float, into: Frame | None = None) -> Frame:
        """Draw the moment ``video_time``; every pixel of the frame is rewritten."""
        tl = self.timeline
        f = self.frame if into is None else into
        t = tl.song_time(video_time)
        if self.backdrop is None:
            f.copy_rows_from(self.background, 0)
        self.strip.compose(f, t)
        self.hit_line.draw(f)
        active = self.key_index.overlapping(t, t + 1e-9)
        active = active[self.in_range[active]]
        pressed: dict[int, int] = {}
        for i in active.tolist():  # later starts win, so a re-struck key shows its new colour
            pressed[int(self.notes["pitch"][i])] = i
        if self.key_glow is not None:
            # Light rises only while a finger is on the key, not while the pedal holds it.
            ends = self.notes["end"]
            for i in pressed.values():
                if ends[i] > t:
                    self.key_glow.draw(
                        f, float(self.centers[i]), self.colors[int(self.color_keys[i])]
                    )
        if self.particles is not None:
            self._draw_particles(f, video_time, t)
        ends = self.notes["end"]
        self.keyboard.draw(
            f,
            {
                # A key only the pedal still holds is lit softly, so it never looks
                # like a key being struck.
                p: self.colors[int(self.color_keys[i])]
                if ends[i] > t
                else self.held_colors[int(self.color_keys[i])]
                for p, i in pressed.items()
            },
        )
        if self.pedal is not None:
            self.pedal.draw(f, self._pedal_down(t))
        if self.progress is not None:
            span = tl.song_to - tl.song_from
            self.progress.draw(f, (t - tl.song_from) / span if span > 0 else 1.0)
        if self.title is not None:
            self.title.draw(f, video_time)
        if self.watermark is not None:
            self.watermark.draw(f)
        if self.format.has_alpha:
            f.unpremultiply_alpha()
        return f

    def _pedal_down(self, t: float) -> bool:
        p = self.pedals
        return bool(p.shape[0] and np.any((p["start"] <= t) & (p["end"] > t)))

    def _draw_particles(self, f: Frame, video_time: float, t: float) -> None:
        assert self.particles is not None
        from .effects import EMIT_FOR, LIFE

        speed = self.timeline.speed
        window = (EMIT_FOR + LIFE) * speed
        ids = self.key_index.overlapping(t - window, t + 1e-9)
        ids = ids[self.in_range[ids]]
        if ids.size == 0:
            return
        starts_v = self.timeline.video_time_of_song(0.0) + self.notes["start"][ids] / speed
        ends_v = self.timeline.video_time_of_song(0.0) + self.held_end[ids] / speed
        colors = self.color_array[self.color_keys[ids]]
        self.particles.draw(f, video_time, ids, starts_v, ends_v, self.centers[ids], colors)

    def still_image(self, video_time: float) -> Image.Image:
        """An RGB(A) PIL image of one moment (stills, thumbnails, preview)."""
        if self.format.is_yuv:
            raise ValueError("still_image needs an RGB renderer")
        arr = self.render_at(video_time).to_rgb_array()
        return Image.fromarray(arr, "RGBA" if self.format.has_alpha else "RGB")


def _quiet_color(style: Style) -> RGB:
    """A colour that reads on the theme's background without shouting: its guide colour,
    pulled towards mid-grey on dark themes."""
    guide = hex_rgb(style.theme.guide_color)
    light = sum(style.background_top) / 3 > 0.5
    return mix(guide, (0.35, 0.33, 0.3), 0.4) if light else mix(guide, (0.72, 0.72, 0.76), 0.5)
