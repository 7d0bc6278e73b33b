"""Engine, sessions and the one-session-per-request dependency.

The request's session commits once, after the endpoint returns and before the response is
sent, or rolls back on any error, except a ``ProblemError`` marked ``keeps_changes`` (a
reused refresh token revokes its session, then is refused), which commits first; its
after-commit actions are dropped. Services and repositories never commit; work that must
only happen once the data is durable (mail, later job queues) is registered with
``after_commit`` so a rolled-back request never mails a token that does not exist.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import Request
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from .errors import ProblemError

_AFTER_COMMIT = "notefall_after_commit"


log = logging.getLogger("notefall.server")

# FastAPI runs sync endpoints on a pool of 40 threads, each request holding one session:
# 10 kept connections plus 30 on demand let every thread have one at a peak (SQLAlchemy's
# default of 5 + 10 left 100 concurrent submits waiting 30 s and failing). A request that
# still finds none within 10 s is answered 503 `database_busy` (kit/errors.py).
POOL_SIZING = {"pool_size": 10, "max_overflow": 30, "pool_timeout": 10}


def normalize_database_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs written the usual way (postgres:// or postgresql://)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def create_database_engine(url: str) -> Engine:
    url = normalize_database_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # A bounded connect: /readyz must answer even when the database host is silent.
        return create_engine(
            url, pool_pre_ping=True, connect_args={"connect_timeout": 5}, **POOL_SIZING
        )
    database = parsed.database
    in_memory = not database or database == ":memory:"
    if database and not in_memory:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    # FastAPI runs sync endpoints in a thread pool, so a connection may change threads.
    # (An in-memory database lives in one connection: SQLAlchemy gives it a pool of one.)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30},
        **({} if in_memory else POOL_SIZING),
    )
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling emits no BEGIN before a SAVEPOINT, so releasing
    # a savepoint would commit the whole request; SQLAlchemy's recipe: we emit BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")  # off by default in SQLite
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the single writer
    cursor.close()


# An execution option that marks reads (GET requests, the WebSocket's polling, /readyz and
# /metrics): on SQLite they begin without taking the single writer's lock.
READ_ONLY = "notefall_read_only"


def _sqlite_begin(connection: Any) -> None:
    # IMMEDIATE for anything that may write: take the single writer's lock when the
    # transaction starts, waiting up to the connect timeout for it. A deferred BEGIN reads
    # from a snapshot, and its first write fails at once ("database is locked", no waiting)
    # if anyone committed since the read — which the workers' heartbeats do every few
    # seconds while a render runs. Reads keep the deferred BEGIN: WAL lets them run next to
    # the writer, so a long request never holds up every page.
    if connection.get_execution_options().get(READ_ONLY):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """One engine and its session factories, owned by the app."""

    def __init__(self, url: str) -> None:
        self.engine = create_database_engine(url)
        # expire_on_commit=False: response schemas are built from rows after the commit.
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # For work that only reads (same pool; see READ_ONLY).
        self.read_engine = self.engine.execution_options(**{READ_ONLY: True})
        self.read_sessions = sessionmaker(self.read_engine, expire_on_commit=False)

    def is_reachable(self) -> bool:
        try:
            with self.read_engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True

    def dispose(self) -> None:
        self.engine.dispose()


def after_commit(session: Session, action: Callable[[], object]) -> None:
    """Run ``action`` once ``session`` has committed; dropped if it rolls back."""
    session.info.setdefault(_AFTER_COMMIT, []).append(action)


def transaction(database: Database, *, read_only: bool = False) -> Iterator[Session]:
    """A session that commits once at the end (then runs after-commit actions) or rolls back.

    ``read_only``: on SQLite the transaction does not take the writer's lock at its start; a
    write in it may then fail with "database is locked" (503 ``database_busy``).
    """
    session = (database.read_sessions if read_only else database.sessions)()
    try:
        yield session
        session.commit()
        actions = session.info.pop(_AFTER_COMMIT, [])
    except ProblemError as error:
        if error.keeps_changes:
            session.commit()
        else:
            session.rollback()
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
    # The transaction is committed: one action that fails (a file delete, a mail) must neither
    # skip the others nor turn a done change into an error answer. Logged, not raised.
    for action in actions:
        try:
            action()
        except Exception:
            log.exception("an after-commit action failed")


# ``with transaction_scope(database) as session:`` for work outside a request (jobs, the CLI).
transaction_scope = contextmanager(transaction)


# Requests that change nothing by HTTP's rules (a GET may still refresh a sign-in cookie's
# expiry: such a write can then meet a busy SQLite and answer 503 database_busy).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def request_session(request: Request) -> Iterator[Session]:
    """FastAPI dependency; use with ``Depends(request_session, scope="function")``."""
    yield from transaction(request.app.state.database, read_only=request.method in SAFE_METHODS)
