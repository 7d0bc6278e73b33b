"""``notefall worker`` and the beat scheduler: Celery processes configured from the settings."""

from __future__ import annotations

from notefall.server.kit.settings import Settings

from .app import QUEUES, celery_app, configure


def run_worker(
    settings: Settings, *, concurrency: int = 1, queues: list[str] | None = None
) -> None:
    """Consume ``queues`` (default: every registered queue) with ``concurrency`` processes."""
    configure(settings)
    # Domains register their queues when their task modules are imported.
    celery_app.loader.import_default_modules()
    argv = [
        "worker",
        "--loglevel=INFO",
        f"--concurrency={concurrency}",
        f"--queues={','.join(queues or QUEUES)}",
        # Fixed process counts scale better than --autoscale with prefetch 1 and acks_late.
        "--pool=prefork",
        "--without-mingle",
        "--without-gossip",
    ]
    celery_app.worker_main(argv)


def run_beat(settings: Settings) -> None:
    """The periodic-task scheduler; exactly one per deployment. Its state file is in DATA_DIR."""
    configure(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    celery_app.start(
        ["beat", "--loglevel=INFO", f"--schedule={settings.data_dir / 'celerybeat-schedule'}"]
    )
