"""The ``Storage`` interface and its local-disk backend.

Keys are relative, slash-separated names such as ``projects/<id>/song-<sha>.mid``; each
part starts with a letter or digit, so no key can climb out of the storage root. Links
to a file are signed with HMAC-SHA256 over (key, expiry) and served by ``GET /files/{key}``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlencode

from notefall.server.kit.security import b64

Clock = Callable[[], datetime]

_KEY_PART = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
_KEY = re.compile(rf"{_KEY_PART}(/{_KEY_PART}){{0,15}}")
FILES_PATH = "/files"
_SIGNING_PURPOSE = "file-link"


class InvalidKeyError(ValueError):
    """A storage key that could name something outside the storage root (a bug, not input)."""


def check_key(key: str) -> str:
    if not _KEY.fullmatch(key):
        raise InvalidKeyError(f"not a valid storage key: {key!r}")
    return key


class Storage(ABC):
    """Bytes by key. Signed links are verified by the storage that made them."""

    @abstractmethod
    def put(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The file's bytes; FileNotFoundError when there is none."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the file; nothing happens when there is none."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def size(self, key: str) -> int:
        """Size in bytes; FileNotFoundError when there is none."""

    @abstractmethod
    def signed_url(self, key: str, expires_in: timedelta) -> str:
        """An absolute URL anyone holding it may GET until it expires."""

    @abstractmethod
    def verify(self, key: str, expires: int, signature: str) -> bool:
        """True for a link this storage signed for ``key`` that has not expired."""


class LocalStorage(Storage):
    """Files under ``root``; links point at ``GET {public_url}/files/{key}``."""

    def __init__(self, root: Path, secret_key: str, public_url: str, clock: Clock) -> None:
        self.root = root
        self._secret = secret_key.encode()
        self._public_url = public_url.rstrip("/")
        self._clock = clock

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Temporary file, fsync, rename: a reader sees the old file or the whole new one.
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        return self._path(key).stat().st_size

    def signed_url(self, key: str, expires_in: timedelta) -> str:
        expires = int((self._clock() + expires_in).timestamp())
        query = urlencode({"expires": expires, "sig": self._signature(check_key(key), expires)})
        return f"{self._public_url}{FILES_PATH}/{quote(key)}?{query}"

    def verify(self, key: str, expires: int, signature: str) -> bool:
        if not _KEY.fullmatch(key):
            return False
        genuine = hmac.compare_digest(signature, self._signature(key, expires))
        return genuine and self._clock().timestamp() < expires

    def _signature(self, key: str, expires: int) -> str:
        message = f"{_SIGNING_PURPOSE}:{key}:{expires}".encode()
        return b64(hmac.new(self._secret, message, hashlib.sha256).digest())
