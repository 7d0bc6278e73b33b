"""Background jobs: the Celery app on Redis, the periodic-task registry and ``enqueue``."""

from .app import DEFAULT_QUEUE, QUEUES, TASK_MODULES, celery_app, configure
from .enqueue import enqueue
from .errors import QueueUnavailableError
from .schedule import every

__all__ = [
    "DEFAULT_QUEUE",
    "QUEUES",
    "TASK_MODULES",
    "QueueUnavailableError",
    "celery_app",
    "configure",
    "enqueue",
    "every",
]
