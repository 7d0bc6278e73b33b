"""'Sign in with your browser': OAuth 2.0 authorization code with PKCE (RFC 7636, S256) and
a loopback redirect (RFC 8252), the way MusicBrainz Picard signs in.

1. a random ``code_verifier`` and one-time ``state``; a tiny HTTP server on 127.0.0.1 and a
   port the system picks;
2. the browser opens ``/oauth/authorize`` on the server (sign-in page, then Allow / Deny);
3. the server redirects the browser to ``http://127.0.0.1:PORT/callback?code=…&state=…``;
4. the app exchanges the code and the verifier for tokens (``grant_type=authorization_code``).

The password never passes through the app. The state is checked and spent on the first
matching answer, so a second or forged redirect is refused.
"""

from __future__ import annotations

import base64
import hashlib
import html
import logging
import secrets
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from notefall.desktop.ops import Operation
from PySide6.QtCore import QObject, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices

from .api import CLIENT_ID, CloudClient
from .tokens import Tokens

log = logging.getLogger(__name__)

CALLBACK_PATH = "/callback"
SIGN_IN_TIMEOUT_SECONDS = 300


def code_verifier() -> str:
    """43–128 characters of [A-Za-z0-9-._~] (RFC 7636 §4.1): 32 random bytes, base64url."""
    return secrets.token_urlsafe(32)


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorize_url(server_url: str, redirect_uri: str, verifier: str, state: str) -> str:
    query = urlencode(
        {
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": redirect_uri,
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
            "state": state,
            "scope": "projects",
        }
    )
    return f"{server_url.rstrip('/')}/oauth/authorize?{query}"


_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Notefall</title><style>body{{font-family:sans-serif;margin:4em auto;max-width:32em;
color:#222}}h1{{font-size:1.4em}}</style></head><body><h1>{title}</h1><p>{text}</p></body></html>"""


class LoopbackReceiver:
    """Listens on 127.0.0.1 for the one redirect carrying our ``state``."""

    def __init__(self, state: str, on_answer: Callable[[dict[str, str]], None]) -> None:
        self._state = state
        self._on_answer = on_answer
        self._spent = False
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, title, text = receiver._handle(self.path)
                body = _PAGE.format(title=html.escape(title), text=html.escape(text)).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("loopback: " + format, *args)

        self._server = HTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        self.redirect_uri = f"http://127.0.0.1:{self.port}{CALLBACK_PATH}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        )
        self._thread.start()

    def _handle(self, path: str) -> tuple[int, str, str]:
        parts = urlsplit(path)
        if parts.path != CALLBACK_PATH:
            return 404, "Not found", "This address belongs to Notefall's sign-in."
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        with self._lock:
            if self._spent:
                return 400, "Already used", "This sign-in has finished; return to Notefall."
            if not secrets.compare_digest(query.get("state", ""), self._state):
                # Not the answer to our request (another tab, a forged link): ignore it and
                # keep waiting for the real one.
                return 400, "Sign-in not recognised", "Start the sign-in again from Notefall."
            self._spent = True
        self._on_answer(query)
        if "code" in query:
            return 200, "Signed in", "You can close this tab and return to Notefall."
        return 200, "Sign-in stopped", "Notefall was not allowed to use your account."

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class BrowserSignIn(QObject):
    """One browser sign-in attempt: ``start()``, then ``succeeded``, ``failed`` or ``cancelled``.

    ``open_url`` opens the authorization page (the system browser by default; tests play the
    browser themselves)."""

    succeeded = Signal(object)  # Tokens
    failed = Signal(str)
    cancelled = Signal()
    waiting = Signal(str)  # the URL opened, to show "waiting for your browser"
    _answered = Signal(object)  # from the loopback thread to the UI thread

    def __init__(
        self,
        client: CloudClient,
        parent: QObject | None = None,
        *,
        open_url: Callable[[str], Any] | None = None,
        timeout_seconds: float = SIGN_IN_TIMEOUT_SECONDS,
    ) -> None:
        super().__init__(parent)
        self._client = client
        self._open_url: Callable[[str], Any] = (
            open_url if open_url is not None else lambda url: QDesktopServices.openUrl(QUrl(url))
        )
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(int(timeout_seconds * 1000))
        self._timer.timeout.connect(self._time_out)
        self._answered.connect(self._on_answer)
        self._receiver: LoopbackReceiver | None = None
        self._verifier = ""
        self.active = False

    def start(self) -> str:
        """Opens the browser; returns the authorization URL."""
        self.cancel_silently()
        self._verifier = code_verifier()
        state = secrets.token_urlsafe(24)
        self._receiver = LoopbackReceiver(state, self._answered.emit)
        url = authorize_url(
            self._client.server_url, self._receiver.redirect_uri, self._verifier, state
        )
        self.active = True
        self._timer.start()
        self._open_url(url)
        self.waiting.emit(url)
        return url

    def cancel(self) -> None:
        if self.active:
            self.cancel_silently()
            self.cancelled.emit()

    def cancel_silently(self) -> None:
        self._timer.stop()
        self.active = False
        if self._receiver is not None:
            self._receiver.close()
            self._receiver = None

    def _time_out(self) -> None:
        if self.active:
            minutes = round(self._timer.interval() / 60000) or 1
            self.cancel_silently()
            self.failed.emit(
                f"No answer from the browser within {minutes} minute(s). "
                "Press 'Sign in with your browser' to try again."
            )

    def _on_answer(self, query: dict[str, str]) -> None:
        if not self.active or self._receiver is None:
            return
        redirect_uri = self._receiver.redirect_uri
        self.cancel_silently()
        code = query.get("code")
        if not code:
            error = query.get("error", "")
            if error == "access_denied":
                self.failed.emit("You chose Deny in the browser, so Notefall is not signed in.")
            else:
                described = query.get("error_description") or error or "no code came back"
                self.failed.emit(f"The browser sign-in stopped: {described}.")
            return
        verifier = self._verifier
        Operation(
            self,
            lambda ctx: self._client.sign_in_with_code(code, redirect_uri, verifier),
            self._exchanged,
        ).failure(lambda exc: self.failed.emit(_message(exc))).run_in_background()

    def _exchanged(self, tokens: Tokens) -> None:
        self.succeeded.emit(tokens)


def _message(exc: Exception) -> str:
    message = getattr(exc, "message", None)
    return message if isinstance(message, str) and message else f"Sign-in failed ({exc})."
