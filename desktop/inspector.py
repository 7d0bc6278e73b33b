"""The inspector: a form for every ``RenderSettings`` option of the open project.

Each field has an editor; any edit is validated with the model's own validators
(so the message is the one the CLI and the API give) and, when valid, announced
50 ms later through ``settings_changed`` so the preview follows while the user types
or drags. Options the user's plan does not render in the cloud stay usable but carry
a lock and an "Upgrade" link (``set_tier``; Free when signed out).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from notefall.common.engine import THEMES
from notefall.common.settings import (
    FRAME_RATES,
    RESOLUTIONS,
    Codec,
    ColorMode,
    Drums,
    Format,
    Labels,
    QualityPreset,
    RenderSettings,
)
from notefall.common.song import note_name
from notefall.common.tier_rules import plan_problems
from notefall.common.tiers import Tier, TierLimits, limits_for
from pydantic import ValidationError
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QIcon, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QColorDialog,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from .resources import icon

DEBOUNCE_MS = 50

# plan_problems codes → the field that carries the lock.
PROBLEM_FIELDS = {
    "resolution_not_in_plan": "resolution",
    "frame_rate_not_in_plan": "fps",
    "format_not_in_plan": "format",
    "transparency_not_in_plan": "transparent",
}
LOCKABLE = ("resolution", "fps", "format", "transparent", "watermark")


# Editors ------------------------------------------------------------------------------


class FieldEditor(QWidget):
    """One setting's editor: ``value()``/``set_value()`` in the model's own terms."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.row = QHBoxLayout(self)
        self.row.setContentsMargins(0, 0, 0, 0)
        self.row.setSpacing(4)

    # Abstract (QWidget's metaclass rules out ABCMeta): every editor below overrides both.
    def value(self) -> Any:
        raise NotImplementedError

    def set_value(self, value: Any) -> None:
        raise NotImplementedError


class ChoiceEditor(FieldEditor):
    """A list of (label, value); ``editable`` also takes typed text (resolution WxH, C2-C7)."""

    def __init__(self, choices: Sequence[tuple[str, Any]], *, editable: bool = False) -> None:
        super().__init__()
        self.combo = QComboBox()
        self.combo.setEditable(editable)
        # Typed values are read, not added to the list (a typo must not become a choice).
        self.combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        for label, value in choices:
            self.combo.addItem(label, value)
        self.combo.currentIndexChanged.connect(self.changed)
        if editable:
            line = self.combo.lineEdit()
            assert line is not None
            line.editingFinished.connect(self.changed)
        self.row.addWidget(self.combo, 1)

    def value(self) -> Any:
        if self.combo.isEditable():
            text = self.combo.currentText().strip()
            index = self.combo.findText(text)
            return self.combo.itemData(index) if index >= 0 else text
        return self.combo.currentData()

    def set_value(self, value: Any) -> None:
        for i in range(self.combo.count()):
            if self.combo.itemData(i) == value:
                self.combo.setCurrentIndex(i)
                return
        if self.combo.isEditable():
            self.combo.setCurrentIndex(-1)
            self.combo.setEditText("" if value is None else str(value))

    def lock_items(self, locked: Callable[[Any], bool]) -> bool:
        """Mark the choices the plan does not include; True if any is marked."""
        any_locked = False
        typed = self.combo.currentText() if self.combo.currentIndex() < 0 else None
        self.combo.blockSignals(True)
        for i in range(self.combo.count()):
            is_locked = locked(self.combo.itemData(i))
            self.combo.setItemIcon(i, icon("lock") if is_locked else QIcon())
            any_locked |= is_locked
        if typed is not None:  # changing an item's icon would put the item's text back
            self.combo.setEditText(typed)
        self.combo.blockSignals(False)
        return any_locked


class BoolEditor(FieldEditor):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.check = QCheckBox(text)
        self.check.toggled.connect(self.changed)
        self.row.addWidget(self.check, 1)

    def value(self) -> bool:
        return self.check.isChecked()

    def set_value(self, value: Any) -> None:
        self.check.setChecked(bool(value))


class TriStateEditor(ChoiceEditor):
    """On / Off / the theme's choice (None)."""

    def __init__(self) -> None:
        super().__init__([("Theme default", None), ("On", True), ("Off", False)])


class NumberEditor(FieldEditor):
    """A number; ``optional`` adds a check box whose unchecked state means None."""

    def __init__(
        self,
        minimum: float,
        maximum: float,
        *,
        step: float = 1.0,
        decimals: int = 0,
        suffix: str = "",
        optional: str = "",
    ) -> None:
        super().__init__()
        self.spin: QSpinBox | QDoubleSpinBox
        if decimals:
            spin = QDoubleSpinBox()
            spin.setDecimals(decimals)
            spin.setRange(minimum, maximum)
            spin.setSingleStep(step)
            spin.valueChanged.connect(self.changed)
            self.spin = spin
        else:
            ispin = QSpinBox()
            ispin.setRange(int(minimum), int(maximum))
            ispin.setSingleStep(int(step))
            ispin.valueChanged.connect(self.changed)
            self.spin = ispin
        self.spin.setSuffix(suffix)
        self.spin.setKeyboardTracking(True)
        self.enabled: QCheckBox | None = None
        if optional:
            self.enabled = QCheckBox(optional)
            self.enabled.toggled.connect(self.spin.setEnabled)
            self.enabled.toggled.connect(self.changed)
            self.row.addWidget(self.enabled)
        self.row.addWidget(self.spin, 1)

    def value(self) -> float | int | None:
        if self.enabled is not None and not self.enabled.isChecked():
            return None
        return self.spin.value()

    def set_value(self, value: Any) -> None:
        if self.enabled is not None:
            self.enabled.setChecked(value is not None)
            self.spin.setEnabled(value is not None)
        if value is not None:
            self.spin.setValue(value)


class TextEditor(FieldEditor):
    """Free text; empty means None when ``optional``."""

    def __init__(self, placeholder: str = "", *, optional: bool = True) -> None:
        super().__init__()
        self.optional = optional
        self.line = QLineEdit()
        self.line.setPlaceholderText(placeholder)
        self.line.textEdited.connect(self.changed)
        self.row.addWidget(self.line, 1)

    def value(self) -> str | None:
        text = self.line.text()
        return (text or None) if self.optional else text

    def set_value(self, value: Any) -> None:
        self.line.setText("" if value is None else str(value))


class ColorButton(QToolButton):
    """A swatch; click to pick. ``color`` is '#rrggbb' or None (the theme's)."""

    picked = Signal()

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title = title
        self.color: str | None = None
        self.setFixedSize(28, 22)
        self.clicked.connect(self._pick)
        self._paint()

    def set_color(self, color: str | None) -> None:
        self.color = color
        self._paint()

    def _paint(self) -> None:
        if self.color is None:
            self.setStyleSheet("")
            self.setText("…")
            self.setToolTip(f"{self.title}: the theme's colour — click to choose")
        else:
            self.setText("")
            self.setStyleSheet(
                f"QToolButton {{ background: {self.color}; border: 1px solid #8a93a6; border-radius: 4px; }}"
            )
            self.setToolTip(f"{self.title}: {self.color} — click to change")

    def _pick(self) -> None:
        chosen = QColorDialog.getColor(QColor(self.color or "#4fc3f7"), self, self.title)
        if chosen.isValid():
            self.set_color(chosen.name())
            self.picked.emit()


class ColorEditor(FieldEditor):
    def __init__(self, title: str) -> None:
        super().__init__()
        self.button = ColorButton(title)
        self.button.picked.connect(self.changed)
        self.text = QLineEdit()
        self.text.setPlaceholderText("theme")
        self.text.setMaximumWidth(90)
        self.text.textEdited.connect(self._typed)
        clear = QToolButton()
        clear.setText("Theme")
        clear.setToolTip("Use the theme's colour")
        clear.clicked.connect(self._use_theme)
        self.row.addWidget(self.button)
        self.row.addWidget(self.text)
        self.row.addWidget(clear)
        self.row.addStretch(1)
        self.button.picked.connect(lambda: self.text.setText(self.button.color or ""))

    def _use_theme(self) -> None:
        self.set_value(None)
        self.changed.emit()

    def _typed(self, text: str) -> None:
        self.button.set_color(QColor(text).name() if QColor.isValidColorName(text) else None)
        self.changed.emit()

    def value(self) -> str | None:
        return self.text.text().strip() or None

    def set_value(self, value: Any) -> None:
        self.text.setText(value or "")
        self.button.set_color(value)


class GradientEditor(FieldEditor):
    """Top and bottom colours, or None for the theme's background."""

    def __init__(self) -> None:
        super().__init__()
        self.enabled = QCheckBox("Gradient")
        self.top = ColorButton("Top colour")
        self.bottom = ColorButton("Bottom colour")
        for w in (self.top, self.bottom):
            w.picked.connect(self._picked)
        self.enabled.toggled.connect(self._toggled)
        self.row.addWidget(self.enabled)
        self.row.addWidget(self.top)
        self.row.addWidget(self.bottom)
        self.row.addStretch(1)

    def _picked(self) -> None:
        self.enabled.setChecked(True)
        self.changed.emit()

    def _toggled(self, on: bool) -> None:
        if on and self.top.color is None:
            self.top.set_color("#04060f")
            self.bottom.set_color("#101a33")
        self.changed.emit()

    def value(self) -> tuple[str, str] | None:
        if not self.enabled.isChecked() or not (self.top.color and self.bottom.color):
            return None
        return self.top.color, self.bottom.color

    def set_value(self, value: Any) -> None:
        self.enabled.blockSignals(True)
        self.enabled.setChecked(value is not None)
        self.enabled.blockSignals(False)
        self.top.set_color(value[0] if value else None)
        self.bottom.set_color(value[1] if value else None)


class ColorsEditor(FieldEditor):
    """Note colours in track/hand order; none means the theme's palette."""

    MAX = 16

    def __init__(self) -> None:
        super().__init__()
        self.swatches: list[ColorButton] = []
        self.swatch_row = QHBoxLayout()
        self.swatch_row.setSpacing(2)
        self.add = QToolButton()
        self.add.setText("+")
        self.add.setToolTip("Add a colour")
        self.add.clicked.connect(self._add)
        self.remove = QToolButton()
        self.remove.setText("−")
        self.remove.setToolTip("Remove the last colour (none left: the theme's palette)")
        self.remove.clicked.connect(self._remove)
        self.row.addLayout(self.swatch_row)
        self.row.addWidget(self.add)
        self.row.addWidget(self.remove)
        self.row.addStretch(1)
        self.placeholder = QLabel("Theme palette")
        self.swatch_row.addWidget(self.placeholder)

    def _swatch(self, color: str) -> ColorButton:
        button = ColorButton(f"Colour {len(self.swatches) + 1}")
        button.set_color(color)
        button.picked.connect(self.changed)
        self.swatch_row.addWidget(button)
        self.swatches.append(button)
        return button

    def _refresh(self) -> None:
        self.placeholder.setVisible(not self.swatches)
        self.add.setEnabled(len(self.swatches) < self.MAX)
        self.remove.setEnabled(bool(self.swatches))

    def _add(self) -> None:
        palette = THEMES["aurora"].palette
        self._swatch(palette[len(self.swatches) % len(palette)])
        self._refresh()
        self.changed.emit()

    def _remove(self) -> None:
        if self.swatches:
            self.swatches.pop().deleteLater()
        self._refresh()
        self.changed.emit()

    def value(self) -> tuple[str, ...] | None:
        colors = tuple(b.color for b in self.swatches if b.color)
        return colors or None

    def set_value(self, value: Any) -> None:
        while self.swatches:
            self.swatches.pop().deleteLater()
        for color in value or ():
            self._swatch(color)
        self._refresh()


class PathEditor(FieldEditor):
    """A file chosen with the platform's dialog; None when cleared."""

    def __init__(self, caption: str, file_filter: str, placeholder: str) -> None:
        super().__init__()
        self.caption = caption
        self.file_filter = file_filter
        self.line = QLineEdit()
        self.line.setPlaceholderText(placeholder)
        self.line.setReadOnly(True)
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._browse)
        clear = QToolButton()
        clear.setText("✕")
        clear.setToolTip("Remove")
        clear.clicked.connect(lambda: self.choose(None))
        self.row.addWidget(self.line, 1)
        self.row.addWidget(browse)
        self.row.addWidget(clear)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, self.caption, "", self.file_filter)
        if path:
            self.choose(Path(path))

    def choose(self, path: Path | None) -> None:
        self.set_value(None if path is None else str(path))
        self.changed.emit()

    def value(self) -> str | None:
        return self.line.text() or None

    def set_value(self, value: Any) -> None:
        self.line.setText("" if value is None else str(value))
        self.line.setToolTip(self.line.text())


# The form ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    name: str
    label: str
    make: Callable[[], FieldEditor]


def _enum_choices(enum: Any, *, theme_default: bool = False) -> list[tuple[str, Any]]:
    choices: list[tuple[str, Any]] = [("Theme default", None)] if theme_default else []
    return choices + [(m.value.capitalize(), m) for m in enum]


def _resolution_choices() -> list[tuple[str, Any]]:
    return [(f"{name}  ({w}x{h})", name) for name, (w, h) in RESOLUTIONS.items()]


CODEC_LABELS = {
    Codec.H264: "H.264",
    Codec.HEVC: "HEVC (H.265)",
    Codec.VP9: "VP9",
    Codec.AV1: "AV1",
    Codec.PRORES: "ProRes 422 HQ",
    Codec.PRORES_4444: "ProRes 4444 (alpha)",
}

GROUPS: list[tuple[str, list[FieldSpec]]] = [
    (
        "Look",
        [
            FieldSpec("theme", "Theme", lambda: ChoiceEditor([(n.capitalize(), n) for n in THEMES])),
            FieldSpec("color_mode", "Colour notes by", lambda: ChoiceEditor(_enum_choices(ColorMode, theme_default=True))),
            FieldSpec("colors", "Note colours", ColorsEditor),
            FieldSpec("velocity_brightness", "Softer notes dimmer", TriStateEditor),
            FieldSpec("labels", "Note names", lambda: ChoiceEditor(_enum_choices(Labels, theme_default=True))),
            FieldSpec("glow", "Glow", TriStateEditor),
            FieldSpec("particles", "Particles", TriStateEditor),
            FieldSpec("progress_bar", "Progress bar", TriStateEditor),
            FieldSpec("lookahead", "Notes visible ahead", lambda: NumberEditor(0.5, 15, step=0.25, decimals=2, suffix=" s")),
            FieldSpec("drums", "Drums (channel 10)", lambda: ChoiceEditor(_enum_choices(Drums))),
            FieldSpec("watermark", "Watermark", lambda: BoolEditor("“Made with Notefall” mark")),
        ],
    ),
    (
        "Keyboard",
        [
            FieldSpec("keyboard_range", "Keys shown", lambda: ChoiceEditor(
                [("Fit the song", "fit"), ("Full 88 keys", "full")], editable=True)),
            FieldSpec("split_point", "Hand split at", lambda: TextEditor("C4", optional=False)),
            FieldSpec("sustain_keys", "Sustain", lambda: BoolEditor("Keys stay lit while the pedal holds")),
            FieldSpec("pedal_indicator", "Pedal indicator", TriStateEditor),
        ],
    ),
    (
        "Background",
        [
            FieldSpec("background", "Solid colour", lambda: ColorEditor("Background colour")),
            FieldSpec("background_gradient", "Gradient", GradientEditor),
            FieldSpec("background_image", "Image", lambda: PathEditor(
                "Background image", "Images (*.png *.jpg *.jpeg)", "none")),
        ],
    ),
    (
        "Title card",
        [
            FieldSpec("title", "Title", lambda: TextEditor("the song's title")),
            FieldSpec("artist", "Artist", lambda: TextEditor("second line")),
            FieldSpec("title_duration", "Shown for", lambda: NumberEditor(0, 15, step=0.5, decimals=1, suffix=" s")),
        ],
    ),
    (
        "Timing",
        [
            FieldSpec("start", "Start", lambda: NumberEditor(0, 86_400, step=1, decimals=2, suffix=" s", optional="at")),
            FieldSpec("end", "End", lambda: NumberEditor(0.01, 86_400, step=1, decimals=2, suffix=" s", optional="at")),
            FieldSpec("speed", "Speed", lambda: NumberEditor(0.25, 4, step=0.05, decimals=2, suffix=" ×")),
            FieldSpec("lead_in", "Lead-in", lambda: NumberEditor(0, 30, step=0.5, decimals=1, suffix=" s")),
            FieldSpec("tail", "Tail", lambda: NumberEditor(0, 30, step=0.5, decimals=1, suffix=" s")),
        ],
    ),
    (
        "Output",
        [
            FieldSpec("resolution", "Resolution", lambda: ChoiceEditor(_resolution_choices(), editable=True)),
            FieldSpec("vertical", "Vertical", lambda: BoolEditor("9:16 portrait (Shorts, Reels)")),
            FieldSpec("fps", "Frame rate", lambda: ChoiceEditor([(f"{r} fps", r) for r in FRAME_RATES])),
            FieldSpec("format", "Format", lambda: ChoiceEditor([(f.value.upper(), f) for f in Format])),
            FieldSpec("codec", "Codec", lambda: ChoiceEditor(
                [("Automatic", None)] + [(CODEC_LABELS[c], c) for c in Codec])),
            FieldSpec("preset", "Quality", lambda: ChoiceEditor(_enum_choices(QualityPreset))),
            FieldSpec("transparent", "Transparency", lambda: BoolEditor("Alpha channel (WebM, MOV)")),
        ],
    ),
    (
        "Sound",
        [
            FieldSpec("audio", "Your recording", lambda: PathEditor(
                "Your recording", "Recordings (*.wav *.flac *.mp3 *.ogg)", "none — the MIDI is synthesized")),
            FieldSpec("audio_offset_ms", "Recording offset", lambda: NumberEditor(-600_000, 600_000, step=10, suffix=" ms")),
            FieldSpec("soundfont", "SoundFont", lambda: PathEditor(
                "SoundFont", "SoundFonts (*.sf2 *.sf3)", "built-in General MIDI")),
            FieldSpec("no_audio", "Silent", lambda: BoolEditor("No sound at all")),
            FieldSpec("audio_bitrate", "Audio bitrate", lambda: NumberEditor(32, 512, step=32, suffix=" kbit/s", optional="set")),
        ],
    ),
]  # fmt: skip


class Inspector(QWidget):
    """Every render setting of the open project, grouped, validated as you type."""

    settings_changed = Signal(object)  # RenderSettings (valid), recording excluded
    recording_chosen = Signal(object)  # Path | None: the project's own recording
    upgrade_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("inspector")
        # Colours that read on light and dark backgrounds alike.
        self.setStyleSheet(
            "QLabel#fieldError { color: #e5484d; }"
            "QLabel#inspectorProblem { color: #e5484d; border: 1px solid #e5484d;"
            " border-radius: 4px; padding: 4px 6px; }"
            "QLabel#fieldLock { color: #b7791f; }"
        )
        self.editors: dict[str, FieldEditor] = {}
        self.errors: dict[str, QLabel] = {}
        self.locks: dict[str, QLabel] = {}
        self.groups: dict[str, QGroupBox] = {}
        self._settings = RenderSettings()
        self._recording: Path | None = None
        self._loading = False
        self._limits: TierLimits = limits_for(Tier.FREE)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self.commit)

        self.problem = QLabel()
        self.problem.setObjectName("inspectorProblem")
        self.problem.setWordWrap(True)
        self.problem.hide()

        body = QWidget()
        column = QVBoxLayout(body)
        column.setContentsMargins(6, 6, 6, 6)
        for title, specs in GROUPS:
            column.addWidget(self._group(title, specs))
        column.addStretch(1)
        self.scroll_area = scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        # The form reflows to the dock's width; sideways scrolling would hide the editors.
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(body)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 8, 6, 6)
        layout.addWidget(self.problem)
        layout.addWidget(scroll, 1)
        self.set_settings(RenderSettings())
        self.set_tier(Tier.FREE)

    def _group(self, title: str, specs: list[FieldSpec]) -> QGroupBox:
        box = QGroupBox(title)
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for spec in specs:
            editor = spec.make()
            description = RenderSettings.model_fields[spec.name].description or ""
            editor.setToolTip(description)
            editor.setObjectName(f"field_{spec.name}")
            editor.changed.connect(lambda name=spec.name: self._edited(name))
            error = QLabel()
            error.setObjectName("fieldError")
            error.setWordWrap(True)
            error.hide()
            lock = QLabel()
            lock.setObjectName("fieldLock")
            lock.setWordWrap(True)
            lock.setTextFormat(Qt.TextFormat.RichText)
            lock.linkActivated.connect(lambda _href: self.upgrade_requested.emit())
            lock.hide()
            cell = QWidget()
            cell_layout = QVBoxLayout(cell)
            cell_layout.setContentsMargins(0, 0, 0, 0)
            cell_layout.setSpacing(2)
            cell_layout.addWidget(editor)
            cell_layout.addWidget(lock)
            cell_layout.addWidget(error)
            label = QLabel(spec.label)
            label.setToolTip(description)
            form.addRow(label, cell)
            self.editors[spec.name] = editor
            self.errors[spec.name] = error
            self.locks[spec.name] = lock
        self.groups[title] = box
        return box

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        # Wrapped notes measured before the first show keep one line's height; measure again.
        QTimer.singleShot(0, self._relayout_notes)

    def _relayout_notes(self) -> None:
        for label in (*self.locks.values(), *self.errors.values()):
            if not label.isHidden():
                label.setText(label.text())

    # Public API --------------------------------------------------------------------------

    @property
    def settings(self) -> RenderSettings:
        """The last valid settings (what the preview shows)."""
        return self._settings

    def set_settings(self, settings: RenderSettings, recording: Path | None = None) -> None:
        """Show a project's settings without announcing them as a change."""
        self._loading = True
        try:
            self._settings = settings
            self._recording = recording
            for name, editor in self.editors.items():
                value = str(recording) if name == "audio" and recording else getattr(settings, name)
                if name == "split_point":
                    value = note_name(int(value), ascii_only=True)
                elif name == "keyboard_range" and "-" in str(value):
                    low, high = (int(p) for p in str(value).split("-"))
                    value = f"{note_name(low, ascii_only=True)}-{note_name(high, ascii_only=True)}"
                editor.set_value(value)
            self._show_errors({}, "")
        finally:
            self._loading = False
        self._debounce.stop()
        self._refresh_locks()

    def set_tier(self, tier: Tier | str | None) -> None:
        """The signed-in account's plan (None: signed out, treated as Free)."""
        self._limits = limits_for(tier or Tier.FREE)
        self._refresh_locks()

    @property
    def tier(self) -> Tier:
        return self._limits.tier

    def scroll_to(self, name: str) -> None:
        """Bring a field into view (used when a render is refused because of it)."""
        self.scroll_area.ensureWidgetVisible(self.editors[name], 0, 80)

    def locked_fields(self) -> list[str]:
        return [name for name, lock in self.locks.items() if not lock.isHidden()]

    # Editing -----------------------------------------------------------------------------

    def _edited(self, name: str) -> None:
        if self._loading:
            return
        if name == "audio":
            value = self.editors["audio"].value()
            self._recording = Path(value) if value else None
            self.recording_chosen.emit(self._recording)
        self._debounce.start()

    def values(self) -> dict[str, Any]:
        return {name: editor.value() for name, editor in self.editors.items()}

    def commit(self) -> RenderSettings | None:
        """Validate the form now; announce and return the settings if they are valid."""
        self._debounce.stop()
        data = self.values()
        try:
            checked = RenderSettings.model_validate(data)
        except ValidationError as exc:
            field_errors: dict[str, str] = {}
            general: list[str] = []
            for err in exc.errors():
                message = str(err["msg"]).removeprefix("Value error, ")
                loc = err["loc"]
                if loc and str(loc[0]) in self.editors:
                    field_errors.setdefault(str(loc[0]), message)
                else:
                    general.append(message)
            self._show_errors(field_errors, "; ".join(general))
            self._refresh_locks(data)
            return None
        self._show_errors({}, "")
        settings = checked.model_copy(update={"audio": None}) if checked.audio else checked
        self._refresh_locks(data)
        if settings != self._settings:
            self._settings = settings
            self.settings_changed.emit(settings)
        return settings

    def _show_errors(self, field_errors: dict[str, str], general: str) -> None:
        for name, label in self.errors.items():
            message = field_errors.get(name, "")
            label.setText(message)
            label.setVisible(bool(message))
        self.problem.setText(f"⚠ {general}" if general else "")
        self.problem.setVisible(bool(general))

    # Plan locks --------------------------------------------------------------------------

    def _refresh_locks(self, data: dict[str, Any] | None = None) -> None:
        limits = self._limits
        current = self._settings
        if data is not None:
            with contextlib.suppress(ValidationError):  # invalid forms keep the last good locks
                current = RenderSettings.model_validate(data)
        problems = {PROBLEM_FIELDS[p.code]: p.message for p in plan_problems(current, limits)
                    if p.code in PROBLEM_FIELDS}  # fmt: skip
        resolution = self.editors["resolution"]
        fps = self.editors["fps"]
        fmt = self.editors["format"]
        assert isinstance(resolution, ChoiceEditor)
        assert isinstance(fps, ChoiceEditor) and isinstance(fmt, ChoiceEditor)
        notes = {
            "resolution": resolution.lock_items(
                lambda v: v in RESOLUTIONS and RESOLUTIONS[v][1] > limits.max_video_height
            ),
            "fps": fps.lock_items(lambda v: v is not None and v > limits.max_fps),
            "format": fmt.lock_items(lambda v: v is not None and str(v) not in limits.formats),
            "transparent": not limits.transparent_video,
            "watermark": limits.watermark,
        }
        upgrade = limits.tier != Tier.ENTERPRISE
        for name in LOCKABLE:
            lock = self.locks[name]
            if name in problems:
                text = problems[name].replace(" Upgrade your plan for more.", "")
                self._set_lock(lock, f"Cloud renders: {text}", upgrade)
            elif notes[name]:
                self._set_lock(lock, self._lock_note(name, limits), upgrade)
            else:
                lock.hide()
        self._watermark_forced(limits.watermark)

    def _set_lock(self, lock: QLabel, text: str, upgrade: bool) -> None:
        # A mid blue that reads on light and dark panels (QSS cannot reach rich-text links).
        link = " <a href='upgrade' style='color:#3d8bfd'>Upgrade</a>" if upgrade else ""
        lock.setText(f"<img src='{_lock_icon_path()}' width='12' height='12'> {text}{link}")
        lock.show()

    @staticmethod
    def _lock_note(name: str, limits: TierLimits) -> str:
        plan = limits.title
        return {
            "resolution": f"Cloud renders on {plan} go up to {limits.max_resolution_label}.",
            "fps": f"Cloud renders on {plan} go up to {limits.max_fps} fps.",
            "format": f"Cloud renders on {plan}: {', '.join(f.upper() for f in limits.formats)}.",
            "transparent": f"Transparent cloud renders are not in the {plan} plan.",
            "watermark": f"Cloud renders on {plan} always carry the watermark.",
        }[name]

    def _watermark_forced(self, forced: bool) -> None:
        editor = self.editors["watermark"]
        assert isinstance(editor, BoolEditor)
        editor.check.setIcon(icon("lock") if forced else QIcon())


def _lock_icon_path() -> str:
    from .resources import icon_path

    return str(icon_path("lock"))
