"""The one way the desktop app runs work off the UI thread.

Modelled on Anki's ``QueryOp``::

    Operation(self, lambda ctx: read_song(path), self._show_song)
        .failure(self._explain)            # optional; default: the window's error banner
        .progress(self._show_progress)     # optional; ctx.report(x) in the op
        .cancellable()                     # optional; ctx.cancelled / ctx.raise_if_cancelled()
        .run_in_background()               # -> OpHandle (handle.cancel())

The whole threading model is one rule: the op never touches widgets. It runs on a
``QThreadPool``; success, failure and progress callbacks always run on the UI thread,
delivered through a small QObject that lives there (queued signal connections).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import shiboken6
from notefall.common.errors import NotefallError, RenderCancelled
from notefall.common.progress import CancelToken
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

log = logging.getLogger(__name__)

T = TypeVar("T")

_pool: QThreadPool | None = None
# Bridges of running operations; held here so Python does not collect them mid-flight.
_running: set[_Bridge] = set()


def thread_pool() -> QThreadPool:
    """The app's own pool (not the global one, so waiting for our work waits for nothing else)."""
    global _pool
    if _pool is None:
        _pool = QThreadPool()
        # Two shared cores: more parallel work only fights FFmpeg and the preview.
        _pool.setMaxThreadCount(max(2, min(4, QThreadPool.globalInstance().maxThreadCount())))
    return _pool


def wait_for_operations(msecs: int = 30_000) -> bool:
    """Block until every running op has returned (shutdown and tests). True if all finished."""
    return thread_pool().waitForDone(msecs)


class OperationCancelled(NotefallError):
    """Raised inside an op by ``ctx.raise_if_cancelled()`` after the user cancelled."""

    code = "cancelled"


class OpContext:
    """What an op may use: the cancel flag and a progress channel. Nothing else crosses threads."""

    def __init__(self, bridge: _Bridge) -> None:
        self._bridge = bridge
        self.cancel_token = CancelToken()
        self._lock = threading.Lock()
        self._latest: Any = None
        self._pending = False

    @property
    def cancelled(self) -> bool:
        return self.cancel_token.cancelled

    def raise_if_cancelled(self) -> None:
        if self.cancel_token.cancelled:
            raise OperationCancelled("The operation was cancelled.")

    def report(self, value: Any) -> None:
        """Send progress to the UI. Values are coalesced: the UI sees the latest, never a backlog."""
        with self._lock:
            self._latest = value
            if self._pending:
                return
            self._pending = True
        self._bridge.progressed.emit()

    def take_progress(self) -> Any:
        with self._lock:
            self._pending = False
            return self._latest


@dataclass(frozen=True, slots=True)
class ErrorReport:
    """An error as the user sees it: one clear message, and optionally a way to try again."""

    message: str
    retry: Callable[[], Any] | None = None
    title: str = "Something went wrong"


def user_message(exc: BaseException) -> str:
    """A one-line explanation for a person; never a traceback."""
    if isinstance(exc, NotefallError):
        return exc.message
    message = getattr(exc, "message", None)  # typed client errors (cloud API) carry one
    if isinstance(message, str) and message:
        return message
    if isinstance(exc, FileNotFoundError):
        return f"File not found: {exc.filename}"
    if isinstance(exc, PermissionError):
        return f"Notefall is not allowed to use {exc.filename}."
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or 'A file operation failed'}{where}"
    return f"Unexpected problem ({type(exc).__name__}: {exc}). Details are in the log."


def is_cancellation(exc: BaseException) -> bool:
    return isinstance(exc, OperationCancelled | RenderCancelled)


class _Bridge(QObject):
    """Lives on the UI thread; the worker emits, Qt queues, the slots run on the UI thread."""

    succeeded = Signal(object)
    failed = Signal(object)
    progressed = Signal()

    def __init__(self, operation: Operation[Any]) -> None:
        super().__init__()
        self._operation = operation
        self.ctx = OpContext(self)
        self.handle = OpHandle(self)
        self.succeeded.connect(self._on_success)
        self.failed.connect(self._on_failure)
        self.progressed.connect(self._on_progress)

    @Slot()
    def _on_progress(self) -> None:
        value = self.ctx.take_progress()
        if self._operation._on_progress is not None and self._operation._parent_alive():
            self._operation._on_progress(value)

    @Slot(object)
    def _on_success(self, result: object) -> None:
        self._finish()
        if not self._operation._parent_alive():
            return
        if self.ctx.cancelled and self._operation._is_cancellable:
            self._operation._deliver_cancelled()
        else:
            self._operation._success(result)

    @Slot(object)
    def _on_failure(self, exc: object) -> None:
        self._finish()
        assert isinstance(exc, BaseException)
        if not self._operation._parent_alive():
            return
        if is_cancellation(exc) and self.ctx.cancelled:
            self._operation._deliver_cancelled()
        else:
            self._operation._deliver_failure(exc)

    def _finish(self) -> None:
        self.handle._done = True
        _running.discard(self)


class OpHandle:
    """A running operation: ask it to cancel, ask whether it is done."""

    def __init__(self, bridge: _Bridge) -> None:
        self._bridge = bridge
        self._done = False

    def cancel(self) -> None:
        """Ask the op to stop; it notices at its next ``ctx.cancelled`` check."""
        self._bridge.ctx.cancel_token.cancel()

    @property
    def cancel_requested(self) -> bool:
        return self._bridge.ctx.cancelled

    @property
    def done(self) -> bool:
        """True once the UI thread has run the success, failure or cancelled callback."""
        return self._done


class _Runner(QRunnable):
    def __init__(self, op: Callable[[OpContext], Any], bridge: _Bridge) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._op = op
        self._bridge = bridge

    def run(self) -> None:
        try:
            result = self._op(self._bridge.ctx)
        except BaseException as exc:
            if not is_cancellation(exc) and not isinstance(exc, NotefallError):
                log.exception("Background operation failed")
            self._bridge.failed.emit(exc)
            return
        self._bridge.succeeded.emit(result)


class Operation(Generic[T]):
    """A piece of work for the pool with UI-thread callbacks; see the module docstring."""

    def __init__(
        self,
        parent: QObject | None,
        op: Callable[[OpContext], T],
        success: Callable[[T], None],
    ) -> None:
        self._parent = parent
        self._op = op
        self._success = success
        self._on_failure: Callable[[Exception], None] | None = None
        self._on_progress: Callable[[Any], None] | None = None
        self._on_cancelled: Callable[[], None] | None = None
        self._is_cancellable = False

    def failure(self, cb: Callable[[Exception], None]) -> Operation[T]:
        self._on_failure = cb
        return self

    def progress(self, cb: Callable[[Any], None]) -> Operation[T]:
        self._on_progress = cb
        return self

    def cancellable(self, on_cancelled: Callable[[], None] | None = None) -> Operation[T]:
        """Allow ``OpHandle.cancel()``; a cancelled op calls ``on_cancelled``, not failure."""
        self._is_cancellable = True
        self._on_cancelled = on_cancelled
        return self

    def run_in_background(self) -> OpHandle:
        bridge = _Bridge(self)
        _running.add(bridge)
        thread_pool().start(_Runner(self._op, bridge))
        return bridge.handle

    # Delivery, on the UI thread ----------------------------------------------------------

    def _parent_alive(self) -> bool:
        # A window closed while its op ran: drop the result instead of touching dead widgets.
        return self._parent is None or shiboken6.isValid(self._parent)

    def _deliver_cancelled(self) -> None:
        if self._on_cancelled is not None:
            self._on_cancelled()

    def _deliver_failure(self, exc: BaseException) -> None:
        if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit: not ours to hide
            raise exc
        if self._on_failure is not None:
            self._on_failure(exc)
            return
        from .signals import app_signals

        app_signals().error_raised.emit(
            ErrorReport(user_message(exc), retry=self.run_in_background)
        )
