"""The Qt binding itself: a long preview session makes hundreds of thousands of calls."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QWidget


def test_void_qt_calls_do_not_leak_references_to_none(qtbot):
    # PySide6 6.12.0 returned None without a new reference from every void method; on
    # CPython 3.11 that deallocates None after a few thousand calls and aborts the app.
    widget = QWidget()
    qtbot.addWidget(widget)
    before = sys.getrefcount(None)
    for _ in range(20_000):
        widget.update()
    assert abs(sys.getrefcount(None) - before) < 100
