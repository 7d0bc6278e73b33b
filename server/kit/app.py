"""The FastAPI application: ``create_app(settings)``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from notefall.common import __version__
from notefall.server.accounts.router import me_router
from notefall.server.accounts.router import router as accounts_router
from notefall.server.activity.router import router as activity_router
from notefall.server.projects.router import router as projects_router
from notefall.server.storage.router import router as files_router
from notefall.server.storage.storage import LocalStorage

from .db import Database
from .errors import ServiceUnavailableError, install_error_handlers, problem_responses
from .models import utcnow
from .settings import Settings

API_PREFIX = "/api/v1"


class DatabaseUnreachableError(ServiceUnavailableError):
    code = "database_unreachable"
    title = "Database unreachable"


def create_app(settings: Settings) -> FastAPI:
    database = Database(settings.database_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        database.dispose()

    app = FastAPI(
        title="Notefall",
        version=__version__,
        summary="Falling-notes piano videos from MIDI files: accounts, projects and renders.",
        docs_url="/docs",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.database = database
    # What 'now' is for tokens and sessions; tests replace it instead of sleeping.
    app.state.clock = utcnow
    app.state.storage = LocalStorage(
        settings.storage_dir,
        settings.secret_key.get_secret_value(),
        settings.public_url,
        clock=lambda: app.state.clock(),
    )
    install_error_handlers(app)
    app.include_router(accounts_router, prefix=API_PREFIX)
    app.include_router(me_router, prefix=API_PREFIX)
    app.include_router(activity_router, prefix=API_PREFIX)
    app.include_router(projects_router, prefix=API_PREFIX)
    app.include_router(files_router)

    @app.get("/healthz", tags=["operations"], summary="The process is alive")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="The server can serve requests (its database answers)",
        responses=problem_responses(DatabaseUnreachableError),
    )
    def readyz(request: Request) -> dict[str, str]:
        if not request.app.state.database.is_reachable():
            raise DatabaseUnreachableError(
                "The database does not answer; check NOTEFALL_DATABASE_URL."
            )
        return {"status": "ready"}

    return app
