"""Retention: periodic deletion of what no one may keep any longer.

Each domain registers purge functions ``(session, storage, now) -> int`` (see
``registry``); ``run_retention(settings, now)`` runs them all, each in its own
transaction, and reports how many rows each removed.
"""

from .registry import Purge, PurgeRegistry, purges, retention_purge
from .runner import RetentionReport, run_retention

__all__ = [
    "Purge",
    "PurgeRegistry",
    "RetentionReport",
    "purges",
    "retention_purge",
    "run_retention",
]
