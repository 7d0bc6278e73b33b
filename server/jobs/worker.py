"""``notefall worker`` and the beat scheduler: Celery processes configured from the settings."""

from __future__ import annotations

from typing import Any

from notefall.server.kit.settings import Settings

from .app import QUEUES, celery_app, configure
from .schedule import BEAT_SCHEDULE


def _active_queues_in_order(channel: Any) -> list[str]:
    return [
        queue
        for queue in dict.fromkeys(channel._active_queues)
        if queue not in channel.active_fanout_queues
    ]


def consume_queues_in_the_order_given() -> None:
    """Make ``queue_order_strategy: priority`` keep the order of ``-Q``.

    kombu 5.4's Redis channel hands its queue cycle a *set* of queue names, so a worker
    polls its queues in an order that changes with each process's string hashing: the
    enterprise queue first in one worker, the free queue first in the next (kombu issue
    #801, celery issue #8673; fixed upstream by kombu PR #2464, after the version pinned
    here). Giving the cycle the queues as a list, in the order they were consumed, is that
    fix. tests/server/test_render_priority.py fails without it about half the time.
    """
    from kombu.transport import redis as kombu_redis

    kombu_redis.Channel.active_queues = property(_active_queues_in_order)


def run_worker(
    settings: Settings, *, concurrency: int = 1, queues: list[str] | None = None
) -> None:
    """Consume ``queues`` (default: every registered queue) with ``concurrency`` processes."""
    configure(settings)
    consume_queues_in_the_order_given()
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
    # The reconciler's interval is a setting; its schedule entry is made at import.
    celery_app.loader.import_default_modules()
    from notefall.server.renders.reconcile import RECONCILE_TASK

    if RECONCILE_TASK in BEAT_SCHEDULE:
        BEAT_SCHEDULE[RECONCILE_TASK]["schedule"] = settings.reconcile_every_seconds
        BEAT_SCHEDULE[RECONCILE_TASK]["options"]["expires"] = settings.reconcile_every_seconds
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    celery_app.start(
        ["beat", "--loglevel=INFO", f"--schedule={settings.data_dir / 'celerybeat-schedule'}"]
    )


def run_flower(
    settings: Settings, *, port: int = 5555, address: str = "127.0.0.1", basic_auth: str | None
) -> None:
    """Flower (Celery's web monitor) on the same broker as the workers.

    With prefetch 1 a worker holds only what it runs, so Flower's per-worker task list is
    what runs now; queued renders are in /metrics (notefall_queue_length), not in Flower.
    """
    if not settings.redis_url:
        from notefall.common.errors import InputError

        raise InputError(
            "`notefall flower` watches the job queue: set NOTEFALL_REDIS_URL to its Redis",
            code="invalid_settings",
        )
    configure(settings)
    celery_app.loader.import_default_modules()
    argv = ["flower", f"--port={port}", f"--address={address}"]
    if basic_auth:
        argv.append(f"--basic-auth={basic_auth}")
    celery_app.start(argv)
