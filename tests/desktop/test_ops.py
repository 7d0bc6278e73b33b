"""The background-operation pattern: results, failures, progress and cancel reach the UI thread."""

from __future__ import annotations

import threading
import time

from notefall.common.errors import MidiError
from notefall.desktop.ops import ErrorReport, Operation, user_message
from notefall.desktop.signals import app_signals
from PySide6.QtWidgets import QWidget


def test_result_arrives_on_the_ui_thread_while_the_work_ran_elsewhere(qtbot):
    ui_thread = threading.get_ident()
    seen: dict[str, int] = {}

    def work(ctx) -> int:
        seen["worker"] = threading.get_ident()
        return 42

    def done(value: int) -> None:
        seen["value"] = value
        seen["callback"] = threading.get_ident()

    handle = Operation(None, work, done).run_in_background()
    qtbot.waitUntil(lambda: handle.done)
    assert seen["value"] == 42
    assert seen["callback"] == ui_thread
    assert seen["worker"] != ui_thread


def test_a_failing_op_goes_to_the_error_banner_with_a_clear_message_and_retry(qtbot):
    reports: list[ErrorReport] = []
    app_signals().error_raised.connect(reports.append)
    attempts: list[int] = []

    def work(ctx) -> None:
        attempts.append(1)
        raise MidiError("This is not a MIDI file (it starts with 'PK').")

    handle = Operation(None, work, lambda _: None).run_in_background()
    qtbot.waitUntil(lambda: handle.done)
    assert [r.message for r in reports] == ["This is not a MIDI file (it starts with 'PK')."]
    assert reports[0].retry is not None

    reports[0].retry()
    qtbot.waitUntil(lambda: len(reports) == 2)
    assert len(attempts) == 2


def test_an_explicit_failure_callback_replaces_the_banner(qtbot):
    reports: list[ErrorReport] = []
    app_signals().error_raised.connect(reports.append)
    failures: list[Exception] = []

    def work(ctx) -> None:
        raise OSError(28, "No space left on device", "/tmp/out.mp4")

    handle = Operation(None, work, lambda _: None).failure(failures.append).run_in_background()
    qtbot.waitUntil(lambda: handle.done)
    assert reports == []
    assert user_message(failures[0]) == "No space left on device: /tmp/out.mp4"


def test_unexpected_errors_read_as_one_line_not_a_traceback():
    text = user_message(KeyError("frames"))
    assert "Traceback" not in text
    assert text == "Unexpected problem (KeyError: 'frames'). Details are in the log."


def test_progress_reaches_the_ui_in_order_and_ends_with_the_last_value(qtbot):
    seen: list[int] = []

    def work(ctx) -> str:
        for i in range(200):
            ctx.report(i)
        return "done"

    results: list[str] = []
    handle = Operation(None, work, results.append).progress(seen.append).run_in_background()
    qtbot.waitUntil(lambda: handle.done)
    assert results == ["done"]
    assert seen[-1] == 199
    assert seen == sorted(seen)  # coalesced, never out of order


def test_cancel_stops_the_op_and_calls_on_cancelled_not_failure(qtbot):
    reports: list[ErrorReport] = []
    app_signals().error_raised.connect(reports.append)
    started = threading.Event()
    outcome: list[str] = []

    def work(ctx) -> str:
        started.set()
        while True:
            ctx.raise_if_cancelled()
            time.sleep(0.005)

    handle = (
        Operation(None, work, outcome.append)
        .cancellable(lambda: outcome.append("cancelled"))
        .run_in_background()
    )
    assert started.wait(10)
    handle.cancel()
    qtbot.waitUntil(lambda: handle.done)
    assert outcome == ["cancelled"]
    assert reports == []


def test_results_for_a_closed_window_are_dropped(qtbot):
    window = QWidget()
    release = threading.Event()
    delivered: list[int] = []

    def work(ctx) -> int:
        release.wait(10)
        return 1

    handle = Operation(window, work, delivered.append).run_in_background()
    window.deleteLater()
    qtbot.waitUntil(lambda: not _alive(window))
    release.set()
    qtbot.waitUntil(lambda: handle.done)
    assert delivered == []


def _alive(obj) -> bool:
    import shiboken6

    return shiboken6.isValid(obj)
