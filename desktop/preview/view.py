"""The picture: the current preview frame, fitted to the widget with its aspect kept."""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QResizeEvent, QShowEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from .frames import PreviewFrame

# The engine draws at most 720p for the preview: more pixels cost frame rate, and a
# preview pane is rarely larger than that on screen.
MAX_PREVIEW = (1280, 720)
MIN_SIDE = 128  # RenderSettings' smallest side
_BACKDROP = QColor(18, 18, 22)


def preview_size(
    output: tuple[int, int], space: tuple[int, int], limit: tuple[int, int] = MAX_PREVIEW
) -> tuple[int, int]:
    """Pixel size to draw at: ``output``'s aspect, fitted into ``space`` and ``limit``.

    ``limit`` is read in the output's orientation (720x1280 for a vertical video). Sides
    are even (as the engine needs) and at least 128 px; a smaller widget scales down.
    """
    w, h = output
    lw, lh = limit if w >= h else (limit[1], limit[0])
    scale = min(max(space[0], 1) / w, max(space[1], 1) / h, lw / w, lh / h)
    pw, ph = w * scale, h * scale
    if min(pw, ph) < MIN_SIDE:
        k = MIN_SIDE / min(pw, ph)
        pw, ph = pw * k, ph * k
    # Multiples of 8: a few pixels of resizing do not rebuild the renderer.
    return max(MIN_SIDE, int(pw) // 8 * 8), max(MIN_SIDE, int(ph) // 8 * 8)


def fitted(image: QSize, area: QRect) -> QRect:
    """The largest rectangle of ``image``'s aspect centred in ``area``."""
    if image.isEmpty():
        return area
    scaled = image.scaled(area.size(), Qt.AspectRatioMode.KeepAspectRatio)
    if image.width() <= scaled.width() < image.width() * 1.05:
        scaled = image  # a few pixels short (sizes are rounded to 8): sharp 1:1 beats a blur
    x = area.x() + (area.width() - scaled.width()) // 2
    y = area.y() + (area.height() - scaled.height()) // 2
    return QRect(x, y, scaled.width(), scaled.height())


class FrameView(QWidget):
    """Paints the frame it was given; says when its size changes."""

    resized = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.frame: PreviewFrame | None = None
        self.message = "Open a MIDI file to see its preview here."
        self.checkerboard = False  # transparent videos: show what is see-through
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # Tab reaches it; its keys drive playback
        self.setMinimumSize(240, 135)
        self.setAccessibleName("Preview")

    def sizeHint(self) -> QSize:
        return QSize(960, 540)

    def show_frame(self, frame: PreviewFrame) -> None:
        self.frame = frame
        self.update()

    def clear(self, message: str) -> None:
        self.frame = None
        self.message = message
        self.update()

    def pixel_space(self) -> tuple[int, int]:
        """The widget's size in device pixels (what a frame should be drawn at)."""
        ratio = self.devicePixelRatioF()
        return round(self.width() * ratio), round(self.height() * ratio)

    def image_rect(self) -> QRect:
        """Where the current frame is painted (widget coordinates)."""
        size = self.frame.image.size() if self.frame is not None else QSize()
        return fitted(size, self.rect())

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), _BACKDROP)
        if self.frame is None:
            painter.setPen(QColor(170, 170, 180))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.message)
            return
        target = self.image_rect()
        if self.checkerboard:
            _checkerboard(painter, target)
        if target.size() != self.frame.image.size():
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawImage(target, self.frame.image)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.resized.emit()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.resized.emit()  # a preview loaded while hidden is drawn once it has a size


def _checkerboard(painter: QPainter, rect: QRect, cell: int = 12) -> None:
    painter.fillRect(rect, QColor(200, 200, 200))
    dark = QColor(150, 150, 150)
    for y in range(rect.top(), rect.bottom() + 1, cell):
        odd = ((y - rect.top()) // cell) % 2
        for x in range(rect.left() + odd * cell, rect.right() + 1, 2 * cell):
            painter.fillRect(QRect(x, y, cell, cell).intersected(rect), dark)
