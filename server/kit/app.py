"""The FastAPI application: ``create_app(settings)``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
from fastapi import Depends, FastAPI, Request
from fastapi_offline import FastAPIOffline
from notefall.common import __version__
from notefall.server.accounts.router import me_router
from notefall.server.accounts.router import router as accounts_router
from notefall.server.activity.router import router as activity_router
from notefall.server.billing.router import router as billing_router
from notefall.server.billing.router import webhook_router as billing_webhook_router
from notefall.server.jobs import configure as configure_jobs
from notefall.server.oauth.router import router as oauth_router
from notefall.server.profile.router import router as profile_router
from notefall.server.projects.router import router as projects_router
from notefall.server.projects.router import shared_router
from notefall.server.renders.admin_router import router as render_admin_router
from notefall.server.renders.metrics import router as metrics_router
from notefall.server.renders.presence import consumption_stalled
from notefall.server.renders.router import router as renders_router
from notefall.server.renders.websocket import install as install_render_events
from notefall.server.storage.errors import StorageUnreachableError
from notefall.server.storage.factory import storage_from_settings
from notefall.server.storage.router import router as files_router
from notefall.server.usage.router import router as usage_router
from notefall.server.web.router import install_pages

from .db import Database
from .errors import ServiceUnavailableError, install_error_handlers, problem_responses
from .mail import mailer_for
from .models import utcnow
from .ratelimit import RateLimiter, RateLimitHeaders, redis_client
from .settings import Settings
from .text import refuse_nul_characters

API_PREFIX = "/api/v1"


class DatabaseUnreachableError(ServiceUnavailableError):
    code = "database_unreachable"
    title = "Database unreachable"


class RedisUnreachableError(ServiceUnavailableError):
    code = "redis_unreachable"
    title = "Redis unreachable"


class NoWorkerConsumingError(ServiceUnavailableError):
    code = "no_worker_consuming"
    title = "No worker is consuming"


def _redis_answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def create_app(settings: Settings) -> FastAPI:
    database = Database(settings.database_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        database.dispose()
        if app.state.rate_limiter is not None:
            app.state.rate_limiter.close()

    # FastAPIOffline: FastAPI whose /docs and /redoc load Swagger UI and ReDoc from files we
    # serve, not from a CDN, so the docs work on a laptop or a network without the internet.
    app = FastAPIOffline(
        title="Notefall",
        version=__version__,
        summary="Falling-notes piano videos from MIDI files: accounts, projects and renders.",
        docs_url="/docs",
        redoc_url="/redoc",
        favicon_url="/static/favicon.svg",
        lifespan=lifespan,
        dependencies=[Depends(refuse_nul_characters)],
    )
    app.state.settings = settings
    app.state.database = database
    # What 'now' is for tokens and sessions; tests replace it instead of sleeping.
    app.state.clock = utcnow
    app.state.storage = storage_from_settings(settings, clock=lambda: app.state.clock())
    # SMTP when NOTEFALL_SMTP_URL is set, else the outbox folder.
    app.state.mailer = mailer_for(settings)
    app.state.rate_limiter = None
    if settings.redis_url:
        configure_jobs(settings)
        app.state.rate_limiter = RateLimiter(
            redis_client(settings.redis_url),
            settings.rate_limit_scale,
            clock=lambda: app.state.clock(),
        )
    app.add_middleware(RateLimitHeaders)
    install_error_handlers(app)
    app.include_router(accounts_router, prefix=API_PREFIX)
    app.include_router(me_router, prefix=API_PREFIX)
    app.include_router(activity_router, prefix=API_PREFIX)
    app.include_router(profile_router, prefix=API_PREFIX)
    app.include_router(projects_router, prefix=API_PREFIX)
    app.include_router(shared_router, prefix=API_PREFIX)
    app.include_router(usage_router, prefix=API_PREFIX)
    app.include_router(billing_router, prefix=API_PREFIX)
    app.include_router(billing_webhook_router, prefix=API_PREFIX)
    app.include_router(renders_router, prefix=API_PREFIX)
    install_render_events(app, API_PREFIX)
    app.include_router(render_admin_router, prefix=API_PREFIX)
    app.include_router(metrics_router)
    app.include_router(files_router)
    app.include_router(oauth_router)
    install_pages(app, API_PREFIX)

    @app.get("/healthz", tags=["operations"], summary="The process is alive")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="The server can serve requests (its database, Redis and storage answer)",
        responses=problem_responses(
            DatabaseUnreachableError,
            RedisUnreachableError,
            StorageUnreachableError,
            NoWorkerConsumingError,
        ),
    )
    def readyz(request: Request) -> dict[str, str]:
        if not request.app.state.database.is_reachable():
            raise DatabaseUnreachableError(
                "The database does not answer; check NOTEFALL_DATABASE_URL."
            )
        limiter = request.app.state.rate_limiter
        if limiter is not None and not _redis_answers(limiter.client):
            # Without Redis, sign-in is refused (rate limits fail closed) and nothing queues.
            raise RedisUnreachableError("Redis does not answer; check NOTEFALL_REDIS_URL.")
        if not request.app.state.storage.is_reachable():
            raise StorageUnreachableError(
                "File storage does not answer; check NOTEFALL_STORAGE_URL (and for S3 the "
                "bucket, NOTEFALL_S3_ENDPOINT_URL and the AWS credentials)."
            )
        if limiter is not None:
            # Workers alive is not enough: one must be consuming (docs/renders.md#readiness).
            with request.app.state.database.read_sessions() as session:
                try:
                    stalled = consumption_stalled(
                        session, limiter.client, settings, request.app.state.clock()
                    )
                except redis.RedisError:
                    raise RedisUnreachableError(
                        "Redis does not answer; check NOTEFALL_REDIS_URL."
                    ) from None
            if stalled is not None:
                raise NoWorkerConsumingError(stalled)
        return {"status": "ready"}

    return app
