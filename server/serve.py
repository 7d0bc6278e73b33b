"""``notefall serve``: migrate the database to head, then run the API with uvicorn."""

from __future__ import annotations

import uvicorn
from notefall.common.errors import InputError
from notefall.server.kit.app import create_app
from notefall.server.kit.settings import SettingsError, load_settings
from notefall.server.migrations import upgrade_to_head


def serve(host: str, port: int, *, migrate: bool = True) -> None:
    try:
        settings = load_settings()
    except SettingsError as exc:
        raise InputError(str(exc), code="invalid_settings") from None
    if migrate:
        # Idempotent; a laptop stack then needs no separate step. Several replicas starting
        # at once against PostgreSQL should migrate once beforehand and pass --no-migrate.
        upgrade_to_head(settings.database_url)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
