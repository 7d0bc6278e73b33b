"""``run_retention``: every registered purge, each in its own transaction, with a report."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import pkgutil
from dataclasses import dataclass, field
from datetime import datetime

import notefall.server
from notefall.server.kit.db import Database, transaction_scope
from notefall.server.kit.settings import Settings
from notefall.server.storage.factory import storage_from_settings

from .registry import PurgeRegistry, purges

log = logging.getLogger(__name__)


@dataclass
class RetentionReport:
    # Records each purge removed, by purge name.
    deleted: dict[str, int] = field(default_factory=dict)
    # Purges that failed (rolled back, files kept), with the error.
    failed: dict[str, str] = field(default_factory=dict)


def load_domain_purges() -> None:
    """Import ``notefall.server.<domain>.retention`` for every domain that has one."""
    for module in pkgutil.iter_modules(notefall.server.__path__):
        if not module.ispkg or module.name == "retention":
            continue
        name = f"notefall.server.{module.name}.retention"
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)


def run_retention(
    settings: Settings, now: datetime, registry: PurgeRegistry | None = None
) -> RetentionReport:
    """Run every purge as of ``now``. One failing purge is logged and the others still run."""
    if registry is None:
        # Retention's own purges, then every domain's.
        importlib.import_module("notefall.server.retention.purges")
        load_domain_purges()
        registry = purges
    database = Database(settings.database_url)
    storage = storage_from_settings(settings, clock=lambda: now)
    report = RetentionReport()
    try:
        for name, purge in registry.items():
            try:
                with transaction_scope(database) as session:
                    count = purge(session, storage, now)
            except Exception as error:
                log.exception("retention: purge %s failed; it is rolled back", name)
                report.failed[name] = f"{type(error).__name__}: {error}"
                continue
            report.deleted[name] = count
            log.info("retention: %s removed %d", name, count)
    finally:
        database.dispose()
    return report
