"""Where the app keeps its sign-in: the OS keyring when one works, else a private file.

Only the tokens the server handed out are stored (never the password, as Anki's sync login
does): revoking the session on the server makes them worthless.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

KEYRING_SERVICE = "Notefall"
TOKEN_FILE_NAME = "cloud-tokens.json"
# Refresh a little before the server's expiry so a request never leaves with a dying token.
EXPIRY_MARGIN_SECONDS = 30


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_at: float  # epoch seconds

    @classmethod
    def from_answer(cls, answer: dict[str, Any], now: float | None = None) -> Tokens:
        """From the token endpoint's ``{access_token, refresh_token, expires_in}``."""
        issued = time.time() if now is None else now
        return cls(
            access_token=str(answer["access_token"]),
            refresh_token=str(answer["refresh_token"]),
            expires_at=issued + float(answer.get("expires_in") or 0),
        )

    def expired(self, now: float | None = None) -> bool:
        current = time.time() if now is None else now
        return current >= self.expires_at - EXPIRY_MARGIN_SECONDS


class TokenStore(Protocol):
    #: Shown in the account panel: where the sign-in is kept.
    description: str

    def load(self, server_url: str) -> Tokens | None: ...
    def save(self, server_url: str, tokens: Tokens) -> None: ...
    def clear(self, server_url: str) -> None: ...


def _decode(text: str | None) -> Tokens | None:
    if not text:
        return None
    try:
        data = json.loads(text)
        return Tokens(
            str(data["access_token"]), str(data["refresh_token"]), float(data["expires_at"])
        )
    except (ValueError, KeyError, TypeError):
        log.warning("Ignoring a stored sign-in that cannot be read")
        return None


class KeyringTokenStore:
    """The OS keyring (Keychain, Credential Locker, Secret Service), one entry per server."""

    description = "in your system keyring"

    def __init__(self, keyring_module: Any) -> None:
        self._keyring = keyring_module

    def load(self, server_url: str) -> Tokens | None:
        return _decode(self._keyring.get_password(KEYRING_SERVICE, server_url))

    def save(self, server_url: str, tokens: Tokens) -> None:
        self._keyring.set_password(KEYRING_SERVICE, server_url, json.dumps(asdict(tokens)))

    def clear(self, server_url: str) -> None:
        # Nothing stored means already signed out.
        with contextlib.suppress(self._keyring.errors.PasswordDeleteError):
            self._keyring.delete_password(KEYRING_SERVICE, server_url)


class FileTokenStore:
    """A JSON file readable only by the user (0600) in the app-data folder, per server URL."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / TOKEN_FILE_NAME
        self.description = f"in a private file ({self.path})"

    def _read_all(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError:
            log.warning("Ignoring %s: not JSON", self.path)
            return {}
        return data if isinstance(data, dict) else {}

    def _write_all(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        # Created 0600 from the start: the tokens never exist in a file others could read.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(data, file)
        os.chmod(temporary, 0o600)
        os.replace(temporary, self.path)

    def load(self, server_url: str) -> Tokens | None:
        entry = self._read_all().get(server_url)
        return _decode(json.dumps(entry)) if entry else None

    def save(self, server_url: str, tokens: Tokens) -> None:
        data = self._read_all()
        data[server_url] = asdict(tokens)
        self._write_all(data)

    def clear(self, server_url: str) -> None:
        data = self._read_all()
        if data.pop(server_url, None) is not None:
            self._write_all(data)


def usable_keyring() -> Any | None:
    """The keyring module when a real backend is available (not the 'fail' or 'null' ones
    a headless Linux box gets), else None."""
    try:
        import keyring
        from keyring.backends import fail

        backend = keyring.get_keyring()
    except Exception:  # a broken keyring install must not stop the app
        log.warning("The system keyring is unavailable", exc_info=True)
        return None
    name = type(backend).__module__
    if isinstance(backend, fail.Keyring) or name.startswith("keyring.backends.null"):
        return None
    if getattr(backend, "priority", 0) <= 0:
        return None
    return keyring


def default_token_store(app_data: Path) -> TokenStore:
    """The keyring when it works, else the 0600 file in ``app_data``."""
    module = usable_keyring()
    if module is not None:
        return KeyringTokenStore(module)
    return FileTokenStore(app_data)
