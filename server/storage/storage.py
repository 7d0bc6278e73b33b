"""The ``Storage`` interface every backend implements, and the rules for keys.

Keys are relative, slash-separated names such as ``projects/<id>/song-<sha>.mid``; each
part starts with a letter or digit, so no key can climb out of the storage root (or out
of an S3 prefix). Both backends refuse a bad key with ``InvalidKeyError`` before touching
anything: a bad key is a bug in the caller, never user input.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import BinaryIO, Protocol
from urllib.parse import quote

Clock = Callable[[], datetime]

_KEY_PART = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
_KEY = re.compile(rf"{_KEY_PART}(/{_KEY_PART}){{0,15}}")
# What an S3 pre-signed URL may live at most (Signature Version 4); local links keep the same cap.
MAX_LINK_LIFETIME = timedelta(days=7)
# A signed link is a credential: its answer must stay out of shared caches.
LINK_CACHE_CONTROL = "private, no-store"


class InvalidKeyError(ValueError):
    """A storage key that could name something outside the storage root (a bug, not input)."""


class StoredFile(Protocol):
    """An open stored file: read it in chunks, then close it (``with`` works too)."""

    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


def check_key(key: str) -> str:
    if not _KEY.fullmatch(key):
        raise InvalidKeyError(f"not a valid storage key: {key!r}")
    return key


def is_valid_key(key: str) -> bool:
    return _KEY.fullmatch(key) is not None


def check_link_lifetime(expires_in: timedelta) -> int:
    """The lifetime in whole seconds, refusing what no backend can sign (a caller's bug)."""
    if not timedelta(0) < expires_in <= MAX_LINK_LIFETIME:
        raise ValueError(f"a link must live longer than 0 and at most 7 days, not {expires_in}")
    # A part of a second still earns a whole one: the link must not be dead on arrival.
    return math.ceil(expires_in.total_seconds())


def content_disposition(download_name: str, fallback: str | None = None) -> str:
    """``attachment`` with the name for every browser: an ASCII fallback (``fallback``, else
    the name with other characters replaced) and RFC 6266's UTF-8 form."""
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_"
        for c in (download_name if fallback is None else fallback)
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(download_name, safe='')}"


class Storage(ABC):
    """Bytes by key, in local files or an S3-compatible bucket.

    Writes are atomic from a reader's view: a reader sees the old file or the whole new
    one. Missing files raise ``FileNotFoundError`` (except ``delete``, which is idempotent).
    """

    @abstractmethod
    def put(self, key: str, data: bytes | BinaryIO) -> None:
        """Store ``data`` (bytes, or a binary file read to its end) under ``key``, replacing any."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The whole file; for large files prefer ``open``."""

    @abstractmethod
    def open(self, key: str) -> StoredFile:
        """The file to read in chunks; the caller closes it."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the file; nothing happens when there is none."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def size(self, key: str) -> int:
        """Size in bytes."""

    @abstractmethod
    def copy(self, source: str, destination: str) -> None:
        """Store a copy of ``source`` under ``destination`` (replacing it), without downloading
        it where the backend can copy in place."""

    @abstractmethod
    def keys(self, folder: str) -> Iterator[str]:
        """Every key under ``folder/`` (e.g. ``projects/<id>``), at any depth, in key order."""

    @abstractmethod
    def signed_url(self, key: str, expires_in: timedelta, download_name: str | None = None) -> str:
        """An absolute URL anyone holding it may GET until it expires (at most 7 days).

        With ``download_name`` the file is served as an attachment under that name
        (``Content-Disposition``), which the signature covers too.
        """

    @abstractmethod
    def is_reachable(self) -> bool:
        """Whether files can be stored right now (for ``/readyz``); never raises."""
