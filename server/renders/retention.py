"""What retention deletes of the render farm (the runner imports this module).

A finished video is kept for its plan's ``retention_days`` (``expires_at``, set when it
succeeded); then the video and its thumbnail go and stop counting against the owner's
storage. The render's row stays: the history still shows what was rendered, and when.
"""

from __future__ import annotations

from datetime import datetime

from notefall.server.kit.db import after_commit
from notefall.server.retention import retention_purge
from notefall.server.storage.storage import Storage
from notefall.server.usage.service import release_file
from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import Render


@retention_purge("render_outputs")
def purge_expired_render_outputs(session: Session, storage: Storage, now: datetime) -> int:
    """Videos and thumbnails of renders whose ``expires_at`` has passed; answers how many
    renders lost their files."""
    renders = list(
        session.scalars(
            select(Render)
            .where(Render.expires_at <= now, Render.output_key.is_not(None))
            .with_for_update()
        )
    )
    files: list[str] = []
    for render in renders:
        files += [key for key in (render.output_key, render.thumbnail_key) if key]
        render.output_key = None
        render.thumbnail_key = None
    if not files:
        return len(renders)
    release_file(session, *files)
    session.flush()

    def remove() -> None:
        for key in files:
            storage.delete(key)

    after_commit(session, remove)
    return len(renders)
