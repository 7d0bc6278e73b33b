"""Alembic environment: the URL comes from the caller's config, else from the server settings."""

from __future__ import annotations

from alembic import context
from notefall.server.kit.db import create_database_engine
from notefall.server.kit.settings import load_settings
from notefall.server.models import Base
from sqlalchemy import Connection

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or load_settings().database_url


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=True,
        compare_type=True,
        **kwargs,  # type: ignore[arg-type]
    )


def run_offline() -> None:
    _configure(url=_url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = create_database_engine(_url())
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                # Batch mode rebuilds a table (copy, drop, rename). With foreign keys on,
                # dropping the old table runs its ON DELETE CASCADE and empties every child
                # table (sessions, projects, tokens …). Off for this connection, before any
                # transaction begins (SQLite ignores the pragma inside one).
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
