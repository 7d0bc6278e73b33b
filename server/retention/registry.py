"""Where domains register what retention deletes.

A purge is ``(session, storage, now) -> int``: it deletes what has outlived its keeping
as of ``now`` and answers how many records it removed. It never commits (the runner
does, once per purge) and deletes files with ``after_commit(session, ...)``, so a purge
that fails leaves both its rows and their files. A purge must be idempotent: a second run
at the same ``now`` finds nothing left.

Register at import time in ``server/<domain>/retention.py``; the runner imports that
module of every domain before it runs::

    from notefall.server.retention import retention_purge

    @retention_purge("data_exports")
    def purge_expired_exports(session: Session, storage: Storage, now: datetime) -> int: ...
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from notefall.server.storage.storage import Storage
from sqlalchemy.orm import Session

Purge = Callable[[Session, Storage, datetime], int]


class PurgeRegistry:
    """Purges by name; a name is what the report and the logs call it."""

    def __init__(self) -> None:
        self._purges: dict[str, Purge] = {}

    def register(self, name: str, purge: Purge) -> Purge:
        registered = self._purges.get(name)
        if registered is not None and registered is not purge:
            raise ValueError(f"a retention purge named {name!r} is already registered")
        self._purges[name] = purge
        return purge

    def items(self) -> list[tuple[str, Purge]]:
        """The purges in the order they were registered."""
        return list(self._purges.items())


# The purges run_retention runs unless it is given another registry.
purges = PurgeRegistry()


def retention_purge(name: str) -> Callable[[Purge], Purge]:
    """Decorator: register the function as the purge ``name`` in the default registry."""

    def register(purge: Purge) -> Purge:
        return purges.register(name, purge)

    return register
