"""One Celery queue per plan, consumed in priority order (shared/QUEUE-NOTES.md).

A worker started with the default queues takes enterprise work first, then pro, then free.
Strict order would starve the free queue under load, so ``FREE_FIRST`` is the order of the
capacity kept for it: ``notefall stack`` starts its first worker that way when it runs
more than one, and production runs a share of workers with ``-Q`` in that order.
"""

from __future__ import annotations

from notefall.common.tiers import Tier
from notefall.server.jobs.app import DEFAULT_QUEUE, QUEUES

RENDER_QUEUES = {
    Tier.ENTERPRISE: "render.enterprise",
    Tier.PRO: "render.pro",
    Tier.FREE: "render.free",
}
PRIORITY_ORDER = [
    RENDER_QUEUES[Tier.ENTERPRISE],
    RENDER_QUEUES[Tier.PRO],
    RENDER_QUEUES[Tier.FREE],
    DEFAULT_QUEUE,
]
FREE_FIRST = [
    RENDER_QUEUES[Tier.FREE],
    RENDER_QUEUES[Tier.ENTERPRISE],
    RENDER_QUEUES[Tier.PRO],
    DEFAULT_QUEUE,
]


def queue_for(tier: Tier | str) -> str:
    return RENDER_QUEUES[Tier(tier)]


def register() -> None:
    """Put the render queues ahead of the default one in what workers consume."""
    for name in reversed(PRIORITY_ORDER[:-1]):
        if name not in QUEUES:
            QUEUES.insert(0, name)
