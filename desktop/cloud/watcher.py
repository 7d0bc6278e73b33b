"""Follows one cloud render's events over the WebSocket ``/api/v1/renders/{id}/events``.

The stream is a long-lived connection, not a unit of work, so it has its own thread rather
than a slot of the operations pool (which has two threads on a small machine: a watched
render must not hold one for minutes). Events reach the UI thread through queued signals.
Dropped connections resume with ``last_event_id`` (the server then sends exactly the missed
events); an expired token is refreshed and the socket opened again.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any
from urllib.parse import urlencode

from PySide6.QtCore import QObject, Signal
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import connect

from .api import CloudClient
from .errors import CloudError, NotSignedInError

log = logging.getLogger(__name__)

FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled", "dead"})
CLOSE_NORMAL = 1000
CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404
# Backoff between reconnects: quick at first, then at most every 10 s (a laptop asleep).
RECONNECT_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0)


class RenderWatcher(QObject):
    received = Signal(dict)  # every message: snapshot, state, progress, log
    connection = Signal(str)  # "connected", "reconnecting: <why>"
    ended = Signal(dict)  # the final snapshot or state event
    failed = Signal(str)  # cannot watch (render gone, signed out)

    def __init__(self, client: CloudClient, render_id: str, parent: QObject | None = None):
        super().__init__(parent)
        self._client = client
        self.render_id = render_id
        self.last_event_id: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"render-events-{render_id[:8]}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, wait: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(wait)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _url(self) -> str:
        url = self._client.events_url(self.render_id)
        if self.last_event_id and self.last_event_id != "0-0":
            url += "?" + urlencode({"last_event_id": self.last_event_id})
        return url

    def _run(self) -> None:
        attempt = 0
        force_refresh = False
        while not self._stop.is_set():
            try:
                token = (
                    self._client.refreshed_access_token()
                    if force_refresh
                    else self._client.access_token()
                )
                force_refresh = False
                outcome = self._watch_once(token)
            except NotSignedInError as error:
                self.failed.emit(error.message)
                return
            except CloudError as error:  # offline while refreshing: try again later
                outcome = f"reconnecting: {error.message}"
            if outcome == "ended":
                return
            if outcome == "unauthenticated":
                force_refresh = True
                if attempt > 2:
                    self.failed.emit("The server refused the sign-in; sign in again.")
                    return
            elif outcome == "not_found":
                self.failed.emit("This render is not on the server any more.")
                return
            else:
                self.connection.emit(outcome)
            delay = RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)]
            attempt += 1
            if self._stop.wait(delay):
                return

    def _watch_once(self, token: str) -> str:
        try:
            with connect(
                self._url(),
                additional_headers={"Authorization": f"Bearer {token}"},
                open_timeout=10,
                proxy=None,
            ) as socket:
                self.connection.emit("connected")
                while not self._stop.is_set():
                    try:
                        raw = socket.recv(timeout=0.5)
                    except TimeoutError:
                        continue
                    message = json.loads(raw)
                    if not isinstance(message, dict):
                        continue
                    self._handle(message)
                    if message.get("type") in ("snapshot", "state") and (
                        message.get("status") in FINAL_STATUSES
                    ):
                        self.ended.emit(message)
                        return "ended"
                return "ended"  # asked to stop
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd is not None else None
            if code == CLOSE_UNAUTHENTICATED:
                return "unauthenticated"
            if code == CLOSE_NOT_FOUND:
                return "not_found"
            return f"reconnecting: the connection closed ({code})"
        except InvalidStatus as error:
            return f"reconnecting: the server answered {error.response.status_code}"
        except (OSError, InvalidHandshake, TimeoutError) as error:
            return f"reconnecting: {error or type(error).__name__}"

    def _handle(self, message: dict[str, Any]) -> None:
        event_id = message.get("id")
        if isinstance(event_id, str):
            self.last_event_id = event_id
        if message.get("type") != "ping":
            self.received.emit(message)
