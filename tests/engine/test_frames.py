"""Behaviour of the frame engine: purity, keys, layout, colours, overlays, formats."""

import numpy as np
import pytest
from notefall.common.engine import FrameRenderer, PixelFormat
from notefall.common.settings import RenderSettings

from tests.support.songs import make_song

SMALL = {"resolution": "640x360", "lead_in": 1.0, "tail": 0.5}


def renderer(song, fmt=PixelFormat.RGB, **kw):
    return FrameRenderer(song, RenderSettings(**{**SMALL, **kw}), pixel_format=fmt)


def key_pixel(r, pitch, frame):
    """RGB of a point low on ``pitch``'s key (below the black keys for white keys)."""
    x = int((r.keys.key_x0[pitch] + r.keys.key_x1[pitch]) / 2)
    lay = r.layout
    y = lay.hit_y + (
        lay.felt_height + lay.black_height // 2
        if pitch % 12 in (1, 3, 6, 8, 10)
        else lay.keyboard_height - lay.keyboard_height // 6
    )
    return frame.to_rgb_array()[y, x, :3].astype(int)


@pytest.fixture
def song():
    return make_song(
        [(0.0, 0.5, 60), (0.5, 1.0, 64), (1.0, 2.0, 67), (1.0, 2.0, 48), (2.0, 2.5, 61)]
    )


def test_a_frame_depends_only_on_its_time(song):
    a = renderer(song, PixelFormat.YUV420P)
    b = renderer(song, PixelFormat.YUV420P)
    first = bytes(a.render(40).data())
    for i in (3, 90, 12, 70):  # other frames in between must not leave traces
        a.render(i)
    assert bytes(a.render(40).data()) == first
    assert bytes(b.render(40).data()) == first


def test_key_lights_exactly_when_its_note_starts(song):
    r = renderer(song, glow=False, particles=False)
    tl = r.timeline
    start_video = tl.video_time_of_song(1.0)  # G4 (67) starts at song time 1.0
    rest = key_pixel(r, 67, r.render_at(start_video - 0.02))
    lit = key_pixel(r, 67, r.render_at(start_video + 0.001))
    assert np.abs(lit - rest).sum() > 60
    after = key_pixel(r, 67, r.render_at(tl.video_time_of_song(2.0) + 0.01))
    assert np.abs(after - rest).sum() < 6


def test_sustain_pedal_keeps_released_keys_lit():
    song = make_song([(0.0, 0.3, 60)], pedals=[(0.0, 1.0)])
    held = renderer(song, glow=False, particles=False)
    plain = renderer(song, glow=False, particles=False, sustain_keys=False)
    t = held.timeline.video_time_of_song(0.6)  # key released, pedal still down
    rest = key_pixel(held, 60, held.render_at(held.timeline.video_time_of_song(1.2)))
    assert np.abs(key_pixel(held, 60, held.render_at(t)) - rest).sum() > 60
    assert np.abs(key_pixel(plain, 60, plain.render_at(t)) - rest).sum() < 6


def test_keyboard_fits_the_song_or_shows_all_88_keys(song):
    fit = renderer(song)
    assert fit.keys.low <= 48 and fit.keys.high >= 67
    assert fit.keys.high - fit.keys.low < 48  # fitted, not the whole piano
    full = renderer(song, keyboard_range="full")
    assert (full.keys.low, full.keys.high) == (21, 108)
    whites = [p for p in range(21, 109) if p % 12 not in (1, 3, 6, 8, 10)]
    assert len(whites) == 52
    # Keys tile the frame width exactly.
    assert full.keys.key_x0[21] == 0 and abs(full.keys.key_x1[108] - 640) < 1e-6


def test_vertical_layout_is_portrait_with_the_keyboard_at_the_bottom(song):
    r = renderer(song, resolution="360x640", vertical=True)
    frame = r.render_at(1.5)
    assert frame.to_rgb_array().shape == (640, 360, 3)
    assert r.layout.hit_y > 640 * 0.8


def test_transparent_background_is_see_through_and_notes_are_opaque():
    song = make_song([(0.0, 4.0, 60)])
    r = renderer(
        song,
        PixelFormat.RGBA,
        transparent=True,
        glow=False,
        particles=False,
        progress_bar=False,
        pedal_indicator=False,
        format="webm",
    )
    rgba = r.render_at(r.timeline.video_time_of_song(0.5)).to_rgb_array()
    x = int((r.keys.key_x0[60] + r.keys.key_x1[60]) / 2)
    assert rgba[r.layout.hit_y // 2, x, 3] == 255  # inside the falling note
    assert rgba[r.layout.hit_y // 2, 5, 3] == 0  # empty background
    assert rgba[-5, x, 3] == 255  # the keyboard stays opaque


def test_drums_are_heard_not_drawn_unless_asked():
    song = make_song([(0.0, 1.0, 60, 100, 0, 0), (0.0, 1.0, 38, 100, 1, 9)])
    assert renderer(song).notes.shape[0] == 1
    assert renderer(song, drums="show").notes.shape[0] == 2


def test_hand_colouring_splits_at_the_split_point():
    song = make_song([(0.0, 1.0, 50), (0.0, 1.0, 70)])
    r = renderer(song, color_mode="hand", split_point="C4")
    left, right = r.colors[r.color_keys[0]], r.colors[r.color_keys[1]]
    assert left != right
    r2 = renderer(song, color_mode="hand", split_point="C2")
    assert r2.colors[r2.color_keys[0]] == r2.colors[r2.color_keys[1]]


def test_separate_hand_tracks_are_coloured_by_track_by_default():
    song = make_song([(0.0, 1.0, 62, 100, 0, 0), (0.0, 1.0, 64, 100, 1, 0)])  # both above C4
    r = renderer(song)  # the default theme colours by hand
    assert r.colors[r.color_keys[0]] != r.colors[r.color_keys[1]]


def test_louder_notes_are_brighter_when_velocity_shows():
    song = make_song([(0.0, 1.0, 60, 30), (0.0, 1.0, 64, 127)])
    r = renderer(song, velocity_brightness=True, color_mode="track")
    soft, loud = (sum(r.colors[r.color_keys[i]]) for i in (0, 1))
    assert loud > soft
    flat = renderer(song, velocity_brightness=False, color_mode="track")
    assert flat.colors[flat.color_keys[0]] == flat.colors[flat.color_keys[1]]


def test_title_card_shows_at_the_start_and_then_goes():
    song = make_song([(5.0, 6.0, 60)])
    with_title = renderer(song, title="Nocturne", artist="Someone", title_duration=2.0)
    without = renderer(song)
    diff_start = np.abs(
        with_title.render_at(0.5).to_rgb_array().astype(int)
        - without.render_at(0.5).to_rgb_array().astype(int)
    ).sum()
    diff_later = np.abs(
        with_title.render_at(3.0).to_rgb_array().astype(int)
        - without.render_at(3.0).to_rgb_array().astype(int)
    ).sum()
    assert diff_start > 10_000 and diff_later == 0


def test_watermark_marks_the_frame():
    song = make_song([(0.0, 1.0, 60)])
    a = renderer(song, watermark=True).render_at(0.2).to_rgb_array().astype(int)
    b = renderer(song).render_at(0.2).to_rgb_array().astype(int)
    changed = np.argwhere(np.abs(a - b).sum(axis=2) > 0)
    assert changed.size > 0
    assert changed[:, 1].min() > 640 // 2  # in the top-right corner
    assert changed[:, 0].max() < 360 // 3


def test_note_labels_draw_names():
    song = make_song([(0.0, 2.0, 60)])
    plain = (
        renderer(song, labels="none", resolution="1280x720")
        .render_at(0.8)
        .to_rgb_array()
        .astype(int)
    )
    named = (
        renderer(song, labels="notes", resolution="1280x720")
        .render_at(0.8)
        .to_rgb_array()
        .astype(int)
    )
    assert np.abs(plain - named).sum() > 1000


def test_yuv_frames_match_rgb_frames_so_preview_equals_export(song):
    rgb = renderer(song).render_at(2.2).to_rgb_array().astype(np.float32)
    yuv = renderer(song, PixelFormat.YUV420P).render_at(2.2)
    y, u, v = (p.astype(np.float32) for p in yuv.planes)
    u = u.repeat(2, 0).repeat(2, 1)
    v = v.repeat(2, 0).repeat(2, 1)
    # BT.709 limited range back to RGB.
    yy, cb, cr = (y - 16) / 219, (u - 128) / 224, (v - 128) / 224
    r = yy + 1.5748 * cr
    g = yy - 0.1873 * cb - 0.4681 * cr
    b = yy + 1.8556 * cb
    back = np.clip(np.stack([r, g, b], axis=-1) * 255, 0, 255)
    assert np.abs(back - rgb).mean() < 2.5  # chroma subsampling is the only loss


def test_memory_stays_bounded_on_a_long_song():
    notes = [(i * 0.25, i * 0.25 + 0.2, 48 + (i * 7) % 36) for i in range(2400)]  # 10 minutes
    r = renderer(make_song(notes), PixelFormat.YUV420P)
    for i in range(0, r.frame_count, 97):
        r.render(i)
    assert len(r.strip._cache) <= 3
    assert r.strip.chunks_drawn > 20


def test_background_image_shows_behind_the_notes(tmp_path):
    from PIL import Image

    picture = tmp_path / "stage.png"
    img = Image.new("RGB", (64, 36), (200, 40, 40))  # red quarters top-left, bottom-right
    img.paste((40, 200, 40), (32, 0, 64, 18))  # green top-right
    img.paste((40, 200, 40), (0, 18, 32, 36))  # green bottom-left
    img.save(picture)
    song = make_song([(0.0, 1.0, 60)])
    r = renderer(song, background_image=str(picture), glow=False, particles=False)
    rgb = r.render_at(0.1).to_rgb_array().astype(int)
    y_top, y_low = r.layout.hit_y // 5, r.layout.hit_y * 4 // 5
    assert rgb[y_top, 40, 0] > rgb[y_top, 40, 1] + 30  # red top-left
    assert rgb[y_top, 600, 1] > rgb[y_top, 600, 0] + 30  # green top-right
    assert rgb[y_low, 40, 1] > rgb[y_low, 40, 0] + 30  # green bottom-left
    assert r.backdrop is None  # a checkerboard cannot split into B(x) + D(y): exact path


def test_a_missing_or_broken_background_image_is_a_clear_input_error(tmp_path):
    from notefall.common.errors import InputError

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image at all")
    song = make_song([(0.0, 1.0, 60)])
    with pytest.raises(InputError, match="cannot be used"):
        renderer(song, background_image=str(broken))
    with pytest.raises(InputError, match="not found"):
        renderer(song, background_image=str(tmp_path / "missing.png"))


def test_titles_in_other_alphabets_render_real_letters():
    from notefall.common.engine.draw import text_mask

    missing = text_mask("\ue000", 40)  # a private-use character: the font's empty box
    for text in ("É", "ř", "Ж", "—"):
        mask = text_mask(text, 40)
        assert mask.shape != missing.shape or not np.array_equal(mask, missing), text


def test_a_long_title_is_wrapped_and_shrunk_to_fit_the_frame():
    from notefall.common.engine.draw import fit_lines, text_width

    long = "Gymnopédie No. 1 — Lent et douloureux, arranged for solo piano by a long name"
    lines, size = fit_lines(long, 64, 600, bold=True, max_lines=3)
    assert 1 < len(lines) <= 3 and size <= 64
    assert all(text_width(line, size, bold=True) <= 600 for line in lines)
    assert " ".join(lines).replace("…", "").split() == long.split()[: len(" ".join(lines).split())]
    r = renderer(make_song([(4.0, 5.0, 60)]), resolution="360x640", title=long, artist="Érik Satie")
    assert r.title is not None and r.title.sprite.width <= 360


def test_a_key_held_only_by_the_pedal_is_lit_more_softly_than_a_struck_key():
    song = make_song([(0.0, 0.4, 60), (0.0, 2.0, 64)], pedals=[(0.0, 2.0)])
    r = renderer(song, glow=False, particles=False, color_mode="track")
    t = r.timeline.video_time_of_song(1.0)  # C4 released (pedal holds it), E4 still down
    rest = renderer(song, glow=False, particles=False, color_mode="track").render_at(0.01)
    frame = r.render_at(t)
    held = np.abs(key_pixel(r, 60, frame) - key_pixel(r, 60, rest)).sum()
    struck = np.abs(key_pixel(r, 64, frame) - key_pixel(r, 64, rest)).sum()
    assert 20 < held < struck


def test_fit_range_leaves_one_key_of_air_on_each_side():
    r = renderer(make_song([(0.0, 1.0, 36), (0.0, 1.0, 81)]))  # C2 .. A5
    assert (r.keys.low, r.keys.high) == (35, 83)  # B1 .. B5
