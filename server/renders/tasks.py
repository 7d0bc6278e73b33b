"""The render farm's Celery task: one delivery of one step (see work.py and steps.py).

Importing this module (the worker does, through jobs.TASK_MODULES) also puts the render
queues ahead of the default one in what ``notefall worker`` consumes.
"""

from __future__ import annotations

import logging
import uuid

from notefall.server.jobs import celery_app

from . import queues, steps
from .runtime import runtime
from .states import StepName
from .work import run_delivery

log = logging.getLogger("notefall.server.renders")

queues.register()


@celery_app.task(name=steps.STEP_TASK)
def run_step(render_id: str, attempt: int, name: str, index: int) -> str:
    """Never raises and never asks Celery to retry: the database holds the step's state
    (retries are new messages published by ``steps.release_for_retry``), so the message is
    acknowledged whatever happened."""
    try:
        ref = steps.StepRef(uuid.UUID(render_id), int(attempt), StepName(name), int(index))
    except (TypeError, ValueError):
        log.error(
            "ignoring a render step message with bad arguments: %r",
            (render_id, attempt, name, index),
        )
        return "invalid"
    return run_delivery(runtime(), ref)
