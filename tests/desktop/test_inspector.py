"""The inspector: every render setting has an editor, errors show where they happen, plans lock."""

from __future__ import annotations

from pathlib import Path

import pytest
from notefall.common.settings import Format, RenderSettings
from notefall.desktop.inspector import BoolEditor, ChoiceEditor, Inspector, NumberEditor, TextEditor
from PySide6.QtCore import Qt


@pytest.fixture
def inspector(qtbot) -> Inspector:
    widget = Inspector()
    qtbot.addWidget(widget)
    widget.resize(380, 900)
    widget.show()
    return widget


def test_every_render_setting_has_an_editor(inspector):
    assert set(inspector.editors) == set(RenderSettings.model_fields)
    groups = {title for title in inspector.groups}
    assert groups == {"Look", "Keyboard", "Background", "Title card", "Timing", "Output", "Sound"}


def test_the_form_shows_a_projects_settings_and_reads_them_back_unchanged(inspector):
    settings = RenderSettings(
        theme="neon", resolution="1280x960", fps=60, format="webm", transparent=True,
        colors=("#ff0000", "#00ff00"), keyboard_range="C2-C7", split_point="E4",
        title="Nocturne", start=1.5, glow=False, background_gradient=("#000000", "#223344"),
        audio_bitrate=192, lookahead=4.0,
    )  # fmt: skip
    inspector.set_settings(settings)
    assert inspector.editors["keyboard_range"].value() == "C2-C7"
    assert inspector.editors["split_point"].value() == "E4"
    assert RenderSettings.model_validate(inspector.values()) == settings


def test_a_change_reaches_the_preview_once_after_a_short_pause(qtbot, inspector):
    seen: list[RenderSettings] = []
    inspector.settings_changed.connect(seen.append)
    title = inspector.editors["title"]
    assert isinstance(title, TextEditor)
    qtbot.keyClicks(title.line, "Clair de lune")
    qtbot.waitUntil(lambda: len(seen) >= 1)
    qtbot.wait(120)  # longer than the debounce: the burst of keystrokes stays one update
    assert [s.title for s in seen] == ["Clair de lune"]
    assert inspector.settings.title == "Clair de lune"


def test_an_invalid_value_is_explained_next_to_its_field_and_not_sent(qtbot, inspector, screenshot):
    seen: list[RenderSettings] = []
    inspector.settings_changed.connect(seen.append)
    keys = inspector.editors["keyboard_range"]
    assert isinstance(keys, ChoiceEditor)
    keys.combo.setEditText("C4-E4")
    keys.changed.emit()
    assert inspector.commit() is None
    error = inspector.errors["keyboard_range"]
    assert error.isVisible()
    assert error.text() == "a keyboard range must span at least one octave"
    assert seen == []
    inspector.scroll_to("keyboard_range")
    qtbot.wait(20)  # let the form settle (wrapped notes are measured once shown)
    screenshot(inspector, "inspector-error")

    keys.combo.setEditText("C3-C6")
    keys.changed.emit()
    assert inspector.commit() is not None
    assert not error.isVisible()
    assert seen[-1].keyboard_range == "48-84"


def test_a_conflict_between_fields_is_shown_above_the_form(inspector):
    transparent = inspector.editors["transparent"]
    assert isinstance(transparent, BoolEditor)
    transparent.check.setChecked(True)  # the format is still MP4
    assert inspector.commit() is None
    assert inspector.problem.isVisible()
    assert inspector.problem.text() == (
        "⚠ MP4 cannot carry transparency; use --format webm or --format mov"
    )
    fmt = inspector.editors["format"]
    assert isinstance(fmt, ChoiceEditor)
    fmt.set_value(Format.WEBM)
    assert inspector.commit() is not None
    assert not inspector.problem.isVisible()


def test_free_user_sees_locked_options_with_an_upgrade_link(qtbot, inspector, screenshot):
    inspector.set_tier(None)  # signed out counts as Free
    assert set(inspector.locked_fields()) == {
        "resolution",
        "fps",
        "format",
        "transparent",
        "watermark",
    }
    lock = inspector.locks["resolution"]
    assert "720p" in lock.text() and "Upgrade" in lock.text()
    resolution = inspector.editors["resolution"]
    assert isinstance(resolution, ChoiceEditor)
    locked_items = [
        resolution.combo.itemData(i)
        for i in range(resolution.combo.count())
        if not resolution.combo.itemIcon(i).isNull()
    ]
    assert locked_items == ["1080p", "1440p", "2160p"]
    with qtbot.waitSignal(inspector.upgrade_requested, timeout=1000):
        lock.linkActivated.emit("upgrade")
    inspector.scroll_to("resolution")
    qtbot.wait(20)
    screenshot(inspector, "inspector-free-locks")


def test_a_locked_choice_stays_usable_and_says_what_the_plan_allows(inspector):
    inspector.set_tier("free")
    fps = inspector.editors["fps"]
    assert isinstance(fps, ChoiceEditor)
    fps.set_value(60)
    settings = inspector.commit()
    assert settings is not None and settings.fps == 60
    assert inspector.locks["fps"].isVisible()
    assert "60 fps is above the 30 fps your Free plan renders" in inspector.locks["fps"].text()


def test_pro_unlocks_1080p_60fps_mov_and_transparency_but_not_4k(inspector):
    inspector.set_tier("pro")
    assert inspector.locked_fields() == ["resolution"]
    inspector.set_tier("enterprise")
    assert inspector.locked_fields() == []


def test_optional_numbers_mean_the_whole_song_until_switched_on(inspector):
    start = inspector.editors["start"]
    assert isinstance(start, NumberEditor) and start.enabled is not None
    assert start.value() is None and not start.spin.isEnabled()
    start.enabled.setChecked(True)
    start.spin.setValue(12.5)
    settings = inspector.commit()
    assert settings is not None and settings.start == 12.5


def test_choosing_a_recording_is_announced_for_the_project_not_stored_in_settings(
    qtbot, inspector, tmp_path
):
    take = tmp_path / "take.wav"
    take.write_bytes(b"RIFF")
    chosen: list[Path | None] = []
    inspector.recording_chosen.connect(chosen.append)
    audio = inspector.editors["audio"]
    audio.choose(take)  # what the file dialog does once a file is picked
    assert chosen == [take]
    settings = inspector.commit()
    assert settings is not None and settings.audio is None
    soundfont = inspector.editors["soundfont"]
    soundfont.choose(tmp_path / "piano.sf2")
    assert inspector.commit() is None
    assert "either audio or a soundfont" in inspector.problem.text()


def test_each_editor_has_the_settings_own_help_as_tooltip(inspector):
    for name, editor in inspector.editors.items():
        assert editor.toolTip() == RenderSettings.model_fields[name].description, name


def test_keyboard_focus_moves_through_the_form(qtbot, inspector):
    title = inspector.editors["title"]
    assert isinstance(title, TextEditor)
    title.line.setFocus(Qt.FocusReason.OtherFocusReason)
    qtbot.waitUntil(title.line.hasFocus)
    qtbot.keyClick(title.line, Qt.Key.Key_Tab)
    assert not title.line.hasFocus()
