"""The transport bar: play/pause, the timeline (drag to scrub), loop in/out, speed, time."""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt, Signal, SignalInstance
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QStyle,
    QStyleOptionSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

SPEEDS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)


def format_time(seconds: float) -> str:
    """``m:ss.t`` (tenths: enough to set a loop point by eye)."""
    tenths = max(0, round(seconds * 10))
    minutes, rest = divmod(tenths, 600)
    return f"{minutes}:{rest // 10:02d}.{rest % 10}"


def speed_label(speed: float) -> str:
    return f"{speed:g}×"


class TimelineSlider(QSlider):
    """Milliseconds of video; a press anywhere jumps there and starts a drag; shows the loop."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.loop: tuple[float, float] | None = None
        self.setRange(0, 0)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # arrow keys belong to the pane's shortcuts
        self.setAccessibleName("Timeline")

    def _groove(self) -> tuple[QRect, int]:
        opt = QStyleOptionSlider()
        self.initStyleOption(opt)
        style = self.style()
        groove = style.subControlRect(
            QStyle.ComplexControl.CC_Slider, opt, QStyle.SubControl.SC_SliderGroove, self
        )
        handle = style.subControlRect(
            QStyle.ComplexControl.CC_Slider, opt, QStyle.SubControl.SC_SliderHandle, self
        )
        return groove, handle.width()

    def value_at(self, x: int) -> int:
        groove, handle = self._groove()
        return QStyle.sliderValueFromPosition(
            self.minimum(),
            self.maximum(),
            x - groove.x() - handle // 2,
            max(1, groove.width() - handle),
        )

    def x_of(self, value: int) -> int:
        groove, handle = self._groove()
        span = max(1, groove.width() - handle)
        offset = QStyle.sliderPositionFromValue(self.minimum(), self.maximum(), value, span)
        return groove.x() + handle // 2 + offset

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.maximum() > 0:
            value = self.value_at(round(event.position().x()))
            self.setValue(value)  # the handle is now under the pointer: the press grabs it
            super().mousePressEvent(event)
            self.sliderMoved.emit(value)
            return
        super().mousePressEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self.loop is None or self.maximum() <= 0:
            return
        groove, _ = self._groove()
        a, b = (self.x_of(round(t * 1000)) for t in self.loop)
        painter = QPainter(self)
        painter.fillRect(
            QRect(a, groove.center().y() - 6, max(2, b - a), 12), QColor(79, 195, 247, 90)
        )
        painter.fillRect(QRect(a - 1, groove.center().y() - 8, 2, 16), QColor(79, 195, 247))
        painter.fillRect(QRect(b - 1, groove.center().y() - 8, 2, 16), QColor(79, 195, 247))


class TransportBar(QWidget):
    """Buttons and the timeline; it only *asks* (signals) — the pane decides and updates it."""

    play_toggled = Signal()
    seek_requested = Signal(float)  # video seconds
    scrub_started = Signal()
    scrub_finished = Signal()
    loop_in_requested = Signal()
    loop_out_requested = Signal()
    loop_cleared = Signal()
    speed_chosen = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.play_button = QToolButton(self)
        self.play_button.setAutoRaise(True)
        self.play_button.clicked.connect(self.play_toggled)
        self.slider = TimelineSlider(self)
        self.slider.sliderPressed.connect(self.scrub_started)
        self.slider.sliderReleased.connect(self.scrub_finished)
        self.slider.sliderMoved.connect(lambda ms: self.seek_requested.emit(ms / 1000.0))
        self.time_label = QLabel(self)
        self.time_label.setAccessibleName("Time")
        self.time_label.setMinimumWidth(self.fontMetrics().horizontalAdvance("00:00.0 / 00:00.0 "))
        self.loop_in = _tool(self, "In", "Loop from the playhead (I)", self.loop_in_requested)
        self.loop_out = _tool(self, "Out", "Loop up to the playhead (O)", self.loop_out_requested)
        self.loop_off = _tool(self, "Loop off", "Play without looping (L)", self.loop_cleared)
        self.speed = QComboBox(self)
        self.speed.setToolTip("Preview speed (- and +)")
        self.speed.setAccessibleName("Speed")
        for s in SPEEDS:
            self.speed.addItem(speed_label(s), s)
        self.speed.setCurrentIndex(SPEEDS.index(1.0))
        self.speed.activated.connect(lambda i: self.speed_chosen.emit(float(SPEEDS[i])))
        # The timeline gets the whole width (a narrow, vertical preview still scrubs well).
        column = QVBoxLayout(self)
        column.setContentsMargins(6, 2, 6, 4)
        column.setSpacing(0)
        column.addWidget(self.slider)
        row = QHBoxLayout()
        column.addLayout(row)
        row.addWidget(self.play_button)
        row.addWidget(self.time_label)
        row.addStretch(1)
        for w in (self.loop_in, self.loop_out, self.loop_off, self.speed):
            row.addWidget(w)
        self._duration = 0.0
        self.show_playing(False)
        self.show_loop(None)
        self.show_position(0.0)

    def set_duration(self, seconds: float) -> None:
        self._duration = seconds
        self.slider.setRange(0, round(seconds * 1000))
        self.slider.setPageStep(5000)

    def show_position(self, seconds: float) -> None:
        if not self.slider.isSliderDown():  # never fight the user's drag
            self.slider.blockSignals(True)
            self.slider.setValue(round(seconds * 1000))
            self.slider.blockSignals(False)
        self.time_label.setText(f"{format_time(seconds)} / {format_time(self._duration)}")

    def show_playing(self, playing: bool) -> None:
        icon = (
            QStyle.StandardPixmap.SP_MediaPause if playing else QStyle.StandardPixmap.SP_MediaPlay
        )
        self.play_button.setIcon(self.style().standardIcon(icon))
        self.play_button.setToolTip("Pause (Space)" if playing else "Play (Space)")
        self.play_button.setAccessibleName("Pause" if playing else "Play")

    def show_loop(self, loop: tuple[float, float] | None) -> None:
        self.slider.loop = loop
        self.loop_off.setEnabled(loop is not None)
        self.slider.update()

    def show_speed(self, speed: float) -> None:
        nearest = min(range(len(SPEEDS)), key=lambda i: abs(SPEEDS[i] - speed))
        if abs(SPEEDS[nearest] - speed) < 1e-6:
            self.speed.setCurrentIndex(nearest)
        else:  # a speed set from code that the list does not offer
            self.speed.setCurrentIndex(-1)
            self.speed.setPlaceholderText(speed_label(speed))


def _tool(parent: QWidget, text: str, tip: str, signal: SignalInstance) -> QToolButton:
    button = QToolButton(parent)
    button.setText(text)
    button.setToolTip(tip)
    button.setAutoRaise(True)
    button.clicked.connect(signal)
    return button
