"""The Notefall HTTP API as the desktop app uses it (httpx, synchronous).

Every call blocks, so it runs inside a background operation (``desktop.ops.Operation``),
never on the UI thread. One ``CloudClient`` is shared by every panel; httpx's connection
pool is thread-safe, and refreshing the token is serialised by a lock (a refresh token
works once: two threads refreshing with the same one would end the session, see the
server's ``refresh_token_reused``).
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from .errors import NotSignedInError, OfflineError, ProblemError, problem_from
from .tokens import Tokens, TokenStore

API = "/api/v1"
CLIENT_ID = "notefall-desktop"
USER_AGENT = "Notefall-Desktop"
DOWNLOAD_CHUNK = 1 << 16


def new_idempotency_key() -> str:
    """A key for ``POST /renders``: kept with a pending submit so a retry makes no second render."""
    return f"desktop-{uuid.uuid4()}"


class CloudClient:
    """Talks to one server for one signed-in user (or none)."""

    def __init__(
        self,
        server_url: str,
        store: TokenStore,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.server_url = server_url.rstrip("/")
        self.store = store
        self._http = httpx.Client(
            base_url=self.server_url,
            timeout=timeout,
            headers={"User-Agent": USER_AGENT},
            transport=transport,
        )
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._tokens = store.load(self.server_url)
        #: Called (from whichever thread) after the tokens changed or were dropped.
        self.on_tokens_changed: Callable[[Tokens | None], None] | None = None

    # Session ---------------------------------------------------------------------------------

    @property
    def signed_in(self) -> bool:
        return self._tokens is not None

    @property
    def tokens(self) -> Tokens | None:
        return self._tokens

    def _set_tokens(self, tokens: Tokens | None) -> None:
        with self._lock:
            self._tokens = tokens
        if tokens is None:
            self.store.clear(self.server_url)
        else:
            self.store.save(self.server_url, tokens)
        if self.on_tokens_changed is not None:
            self.on_tokens_changed(tokens)

    def sign_in_with_password(self, email: str, password: str, otp: str | None = None) -> Tokens:
        """The password grant. Raises ``OtpRequiredError`` when two-factor sign-in is on."""
        form = {"grant_type": "password", "username": email, "password": password}
        if otp:
            form["otp"] = otp
        return self._token_request(form)

    def sign_in_with_code(self, code: str, redirect_uri: str, code_verifier: str) -> Tokens:
        """The PKCE exchange at the end of the browser sign-in."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": CLIENT_ID,
            "code_verifier": code_verifier,
        }
        return self._token_request(form)

    def _token_request(self, form: dict[str, str]) -> Tokens:
        response = self._send("POST", f"{API}/auth/token", data=form)
        self._raise_for_problem(response)
        tokens = Tokens.from_answer(response.json())
        self._set_tokens(tokens)
        return tokens

    def sign_out(self) -> None:
        """Ends the session on the server when it can be reached, and forgets the tokens."""
        tokens = self._tokens
        try:
            if tokens is not None:
                self._send(
                    "POST",
                    f"{API}/auth/logout",
                    headers={"Authorization": f"Bearer {tokens.access_token}"},
                )
        except OfflineError:
            pass  # signing out locally must work offline; the session lapses on the server
        finally:
            self._set_tokens(None)

    def _refresh(self, stale: Tokens) -> Tokens:
        """New tokens for ``stale``; once, whatever the number of threads that found it stale."""
        with self._refresh_lock:
            current = self._tokens
            if current is None:
                raise NotSignedInError()
            if current.access_token != stale.access_token:
                return current  # another thread refreshed meanwhile
            form = {"grant_type": "refresh_token", "refresh_token": current.refresh_token}
            response = self._send("POST", f"{API}/auth/token", data=form)
            if response.status_code in (400, 401):
                # The server ended the session (signed out elsewhere, password reset,
                # expired): the tokens are worthless, ask for a new sign-in.
                self._set_tokens(None)
                raise NotSignedInError("Your sign-in has ended. Sign in again to use the cloud.")
            self._raise_for_problem(response)
            tokens = Tokens.from_answer(response.json())
            self._set_tokens(tokens)
            return tokens

    def access_token(self) -> str:
        """A valid access token, refreshed first when it has expired (for the WebSocket)."""
        tokens = self._tokens
        if tokens is None:
            raise NotSignedInError()
        if tokens.expired():
            tokens = self._refresh(tokens)
        return tokens.access_token

    def refreshed_access_token(self) -> str:
        """A new access token even if ours looks valid (the server refused it)."""
        tokens = self._tokens
        if tokens is None:
            raise NotSignedInError()
        return self._refresh(tokens).access_token

    # Requests --------------------------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise OfflineError(self.server_url, _reason(error)) from error

    @staticmethod
    def _raise_for_problem(response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        try:
            body = response.json()
        except ValueError:
            body = None
        reason = response.reason_phrase or "error"
        raise problem_from(
            response.status_code, body, f"The server answered {response.status_code} {reason}."
        )

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """An authenticated request; refreshes an expired access token silently, once."""
        tokens = self._tokens
        if tokens is None:
            raise NotSignedInError()
        if tokens.expired():
            tokens = self._refresh(tokens)
        extra_headers = dict(kwargs.pop("headers", None) or {})  # e.g. Idempotency-Key
        response = self._send(method, path, headers=_bearer(tokens, extra_headers), **kwargs)
        if response.status_code == 401 and _code(response) == "invalid_access_token":
            tokens = self._refresh(tokens)
            _rewind_files(kwargs.get("files"))
            response = self._send(method, path, headers=_bearer(tokens, extra_headers), **kwargs)
            if response.status_code == 401 and _code(response) == "invalid_access_token":
                self._set_tokens(None)
                raise NotSignedInError("Your sign-in has ended. Sign in again to use the cloud.")
        self._raise_for_problem(response)
        return response

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", f"{API}{path}", params=params or None).json()

    def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        response = self.request("POST", f"{API}{path}", json=body, headers=headers or {})
        return response.json() if response.content else None

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", f"{API}{path}", json=body).json()

    # The account -----------------------------------------------------------------------------

    def me(self) -> dict[str, Any]:
        result: dict[str, Any] = self.get("/me")
        return result

    def usage(self) -> dict[str, Any]:
        result: dict[str, Any] = self.get("/usage")
        return result

    def billing(self) -> dict[str, Any]:
        result: dict[str, Any] = self.get("/billing")
        return result

    def checkout(self, tier: str) -> str:
        """The Stripe Checkout URL for ``tier``; the plan changes when Stripe's webhook lands."""
        return str(self.post("/billing/checkout", {"tier": tier})["url"])

    # Projects and renders --------------------------------------------------------------------

    def projects(self, limit: int = 100) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.get("/projects", limit=limit, shared="all")["items"]
        return items

    def project(self, project_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/projects/{project_id}")
        return result

    def create_project(self, name: str, settings: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.post("/projects", {"name": name, "settings": settings})
        return result

    def update_project(self, project_id: str, **fields: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.patch(f"/projects/{project_id}", fields)
        return result

    def upload_file(self, project_id: str, kind: str, path: Path) -> dict[str, Any]:
        """``kind``: ``midi`` or ``audio``; the project as the server now has it."""
        with path.open("rb") as file:
            response = self.request(
                "PUT",
                f"{API}/projects/{project_id}/{kind}",
                files={"file": (path.name, file, "application/octet-stream")},
            )
        result: dict[str, Any] = response.json()
        return result

    def delete_audio(self, project_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("DELETE", f"{API}/projects/{project_id}/audio").json()
        return result

    def submit_render(
        self, project_id: str, settings: dict[str, Any], idempotency_key: str
    ) -> dict[str, Any]:
        result: dict[str, Any] = self.post(
            "/renders",
            {"project_id": project_id, "settings": settings},
            headers={"Idempotency-Key": idempotency_key},
        )
        return result

    def render(self, render_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/renders/{render_id}")
        return result

    def renders(self, limit: int = 50) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.get("/renders", limit=limit)["items"]
        return items

    def cancel_render(self, render_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.post(f"/renders/{render_id}/cancel")
        return result

    def settings_preset(self, project_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/projects/{project_id}/settings/export")
        return result

    def download(
        self,
        path: str,
        folder: Path,
        fallback_name: str,
        progress: Callable[[int, int | None], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> Path:
        """Follow an API route that redirects to a signed link and save the file in ``folder``.

        The bearer token goes only to the API; the signed link is fetched without it (it may
        point at S3). Written to a ``.part`` file and renamed, so a cut download never looks
        finished."""
        answer = self.request("GET", f"{API}{path}", follow_redirects=False)
        location = answer.headers.get("location")
        if answer.status_code not in (301, 302, 303, 307, 308) or not location:
            raise ProblemError(answer.status_code, "no_download", "The server sent no file.", {})
        url = str(self._http.base_url.join(location))
        folder.mkdir(parents=True, exist_ok=True)
        try:
            with httpx.stream("GET", url, timeout=60.0, follow_redirects=True) as response:
                if response.status_code >= 400:
                    response.read()
                    self._raise_for_problem(response)
                name = _download_name(response, url) or fallback_name
                target = _free_path(folder / _safe_name(name))
                part = target.with_name(target.name + ".part")
                total = int(response.headers.get("content-length") or 0) or None
                done = 0
                with part.open("wb") as file:
                    for chunk in response.iter_bytes(DOWNLOAD_CHUNK):
                        if cancelled is not None and cancelled():
                            file.close()
                            part.unlink(missing_ok=True)
                            raise InterruptedError("download cancelled")
                        file.write(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(done, total)
        except httpx.TransportError as error:
            raise OfflineError(self.server_url, _reason(error)) from error
        part.replace(target)
        return target

    def events_url(self, render_id: str) -> str:
        parts = urlsplit(self.server_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return f"{scheme}://{parts.netloc}{parts.path}{API}/renders/{render_id}/events"

    def close(self) -> None:
        self._http.close()


def _bearer(tokens: Tokens, extra: dict[str, str]) -> dict[str, str]:
    return {**extra, "Authorization": f"Bearer {tokens.access_token}"}


def _rewind_files(files: Any) -> None:
    """Uploads are open files the first attempt read to the end: start them again."""
    if isinstance(files, dict):
        for value in files.values():
            if isinstance(value, tuple) and len(value) > 1 and hasattr(value[1], "seek"):
                value[1].seek(0)


def _code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


def _reason(error: httpx.TransportError) -> str:
    if isinstance(error, httpx.TimeoutException):
        return "no answer in time"
    if isinstance(error, httpx.ConnectError):
        return "connection refused or no network"
    return type(error).__name__


_FILENAME_STAR = re.compile(r"filename\*=UTF-8''([^;]+)", re.IGNORECASE)
_FILENAME = re.compile(r'filename="?([^";]+)"?', re.IGNORECASE)


def _download_name(response: httpx.Response, url: str) -> str | None:
    disposition = response.headers.get("content-disposition", "")
    found = _FILENAME_STAR.search(disposition)
    if found:
        return unquote(found.group(1))
    found = _FILENAME.search(disposition)
    if found:
        return found.group(1)
    query_name = re.search(r"[?&]name=([^&]+)", url)
    return unquote(query_name.group(1)) if query_name else None


def _safe_name(name: str) -> str:
    cleaned = re.sub(r'[\\/:*?"<>|\x00-\x1f]', "_", name).strip(" .")
    return cleaned or "download"


def _free_path(path: Path) -> Path:
    """``path``, or ``name (2).ext`` … when a file is already there (never overwrite)."""
    if not path.exists():
        return path
    for n in range(2, 1000):
        candidate = path.with_name(f"{path.stem} ({n}){path.suffix}")
        if not candidate.exists():
            return candidate
    return path.with_name(f"{path.stem}-{uuid.uuid4().hex[:8]}{path.suffix}")
