"""The periodic retention task: hourly on the queue's beat schedule."""

from __future__ import annotations

from notefall.server.jobs import celery_app, every
from notefall.server.kit.models import utcnow
from notefall.server.kit.settings import load_settings

from .runner import run_retention

RUN_EVERY_SECONDS = 60 * 60


@celery_app.task(name="notefall.retention.run")
def run() -> dict[str, int]:
    """Run every purge as of now; the counts go to the log (and the task's return value)."""
    report = run_retention(load_settings(), utcnow())
    if report.failed:
        # Failing the task makes the failure visible to the queue's monitoring as well.
        raise RuntimeError(f"retention purges failed: {report.failed}")
    return report.deleted


every(RUN_EVERY_SECONDS, "notefall.retention.run")
