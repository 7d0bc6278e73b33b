"""One Celery queue per plan, consumed in priority order (shared/QUEUE-NOTES.md).

A worker started with the default queues takes the ``default`` queue's short chores first
(the reconciler that recovers lost renders, billing webhooks, exports: none may wait behind a
render backlog), then enterprise work, then pro, then free.
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
RENDER_ORDER = [RENDER_QUEUES[Tier.ENTERPRISE], RENDER_QUEUES[Tier.PRO], RENDER_QUEUES[Tier.FREE]]
PRIORITY_ORDER = [DEFAULT_QUEUE, *RENDER_ORDER]
FREE_FIRST = [
    DEFAULT_QUEUE,
    RENDER_QUEUES[Tier.FREE],
    RENDER_QUEUES[Tier.ENTERPRISE],
    RENDER_QUEUES[Tier.PRO],
]


def queue_for(tier: Tier | str) -> str:
    return RENDER_QUEUES[Tier(tier)]


def register() -> None:
    """Add the render queues, after the default one, to what workers consume."""
    for name in RENDER_ORDER:
        if name not in QUEUES:
            QUEUES.append(name)
