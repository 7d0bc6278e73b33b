"""Local-disk storage: files under one directory, links served by ``GET /files/{key}``.

A link is signed with HMAC-SHA256 over (key, expiry and, when given, the download name)
with the server's secret key, and checked against the app's clock.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, urlencode

from notefall.server.kit.security import b64

from .storage import (
    Clock,
    Storage,
    StoredFile,
    check_key,
    check_link_lifetime,
    is_valid_key,
)

FILES_PATH = "/files"
_SIGNING_PURPOSE = "file-link"


class LocalStorage(Storage):
    """Files under ``root``; links point at ``GET {public_url}/files/{key}``.

    ``edge_cached``: ``public_url`` is a CDN's origin (``NOTEFALL_CDN_BASE_URL``) that
    forwards links unchanged and keys its cache on the whole URL, so ``/files`` may let
    it keep a copy for as long as the link lives (docs/operations.md).
    """

    def __init__(
        self,
        root: Path,
        secret_key: str,
        public_url: str,
        clock: Clock,
        *,
        edge_cached: bool = False,
    ) -> None:
        self.root = root
        self._secret = secret_key.encode()
        self._public_url = public_url.rstrip("/")
        self._clock = clock
        self.edge_cached = edge_cached

    def path_of(self, key: str) -> Path:
        """Where ``key`` lives on disk (for the ``/files`` route, which serves it directly)."""
        return self.root / check_key(key)

    def put(self, key: str, data: bytes | BinaryIO) -> None:
        path = self.path_of(key)
        if isinstance(data, bytes):
            self._write_atomically(path, lambda handle: handle.write(data))
        else:
            self._write_atomically(path, lambda handle: shutil.copyfileobj(data, handle))

    def get(self, key: str) -> bytes:
        return self.path_of(key).read_bytes()

    def open(self, key: str) -> StoredFile:
        return self.path_of(key).open("rb")

    def delete(self, key: str) -> None:
        self.path_of(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self.path_of(key).is_file()

    def size(self, key: str) -> int:
        return self.path_of(key).stat().st_size

    def copy(self, source: str, destination: str) -> None:
        source_path, destination_path = self.path_of(source), self.path_of(destination)
        with source_path.open("rb") as original:
            self._write_atomically(
                destination_path, lambda handle: shutil.copyfileobj(original, handle)
            )

    def keys(self, folder: str) -> Iterator[str]:
        top = self.path_of(folder)
        if not top.is_dir():
            return
        # Files being written are dot-named temporaries; no key starts with a dot.
        found = [
            path.relative_to(self.root).as_posix()
            for path in top.rglob("*")
            if path.is_file() and not path.name.startswith(".")
        ]
        # Sorted as strings, like S3 lists them.
        yield from sorted(found)

    def signed_url(self, key: str, expires_in: timedelta, download_name: str | None = None) -> str:
        check_key(key)
        expires = int(self._clock().timestamp()) + check_link_lifetime(expires_in)
        params: dict[str, str | int] = {"expires": expires}
        if download_name is not None:
            params["name"] = download_name
        params["sig"] = self._signature(key, expires, download_name)
        return f"{self._public_url}{FILES_PATH}/{quote(key)}?{urlencode(params)}"

    def verify(
        self, key: str, expires: int, signature: str, download_name: str | None = None
    ) -> bool:
        """True for a link this storage signed for ``key`` that has not expired."""
        if not is_valid_key(key):
            return False
        expected = self._signature(key, expires, download_name)
        genuine = hmac.compare_digest(signature.encode(), expected.encode())
        return genuine and self._clock().timestamp() < expires

    def seconds_left(self, expires: int) -> int:
        """Whole seconds until a link expiring at ``expires`` dies (0 once it has)."""
        return max(0, int(expires - self._clock().timestamp()))

    def is_reachable(self) -> bool:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError:
            return False
        return os.access(self.root, os.W_OK | os.X_OK)

    def _signature(self, key: str, expires: int, download_name: str | None) -> str:
        # Keys never contain ':', so the name (last) cannot shift into another field.
        message = f"{_SIGNING_PURPOSE}:{key}:{expires}"
        if download_name is not None:
            message += f":{download_name}"
        return b64(hmac.new(self._secret, message.encode(), hashlib.sha256).digest())

    @staticmethod
    def _write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Temporary file, fsync, rename: a reader sees the old file or the whole new one.
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
