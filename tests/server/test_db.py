"""One transaction per request: commit once at the end, or roll back; mail only after commit."""

import contextlib
import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest
from notefall.server.accounts.models import User
from notefall.server.kit.db import (
    Database,
    after_commit,
    normalize_database_url,
    transaction,
    transaction_scope,
)
from notefall.server.kit.errors import ProblemError
from notefall.server.kit.models import Base
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError


def _user(email: str) -> User:
    return User(email=email, name="Ada", password_hash="x")


def _count_users(database: Database) -> int:
    with database.sessions() as session:
        return session.scalar(select(func.count()).select_from(User)) or 0


def test_postgres_urls_use_psycopg_3():
    assert normalize_database_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_database_url("postgres://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert normalize_database_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_the_sqlite_folder_is_created(tmp_path: Path):
    database = Database(f"sqlite:///{tmp_path / 'new' / 'folder' / 'notefall.db'}")
    assert database.is_reachable()
    database.dispose()
    assert (tmp_path / "new" / "folder" / "notefall.db").exists()


def test_a_transaction_commits_at_the_end_then_runs_after_commit_actions(migrated_url: str):
    database = Database(migrated_url)
    seen: list[int] = []
    sessions = transaction(database)
    session = next(sessions)
    session.add(_user("ada@example.com"))
    after_commit(session, lambda: seen.append(_count_users(database)))
    session.flush()
    assert seen == []
    with pytest.raises(StopIteration):
        next(sessions)
    assert seen == [1]  # the action saw the committed row
    database.dispose()


def test_a_failing_after_commit_action_neither_stops_the_others_nor_raises(
    migrated_url: str, caplog: pytest.LogCaptureFixture
):
    database = Database(migrated_url)
    seen: list[str] = []
    sessions = transaction(database)
    session = next(sessions)
    session.add(_user("ada@example.com"))

    def storage_down() -> None:
        raise OSError("the bucket does not answer")

    after_commit(session, storage_down)
    after_commit(session, lambda: seen.append("goodbye mail"))
    with pytest.raises(StopIteration):
        next(sessions)
    assert seen == ["goodbye mail"] and _count_users(database) == 1
    assert "after-commit action failed" in caplog.text
    database.dispose()


def test_a_failed_transaction_rolls_back_and_drops_after_commit_actions(migrated_url: str):
    database = Database(migrated_url)
    seen: list[str] = []
    sessions = transaction(database)
    session = next(sessions)
    session.add(_user("ada@example.com"))
    session.flush()
    after_commit(session, lambda: seen.append("sent"))
    with pytest.raises(RuntimeError):
        sessions.throw(RuntimeError("the request failed"))
    assert seen == [] and _count_users(database) == 0
    database.dispose()


class _RecordedRefusal(ProblemError):
    keeps_changes = True


@pytest.mark.parametrize(("error", "kept"), [(ProblemError, 0), (_RecordedRefusal, 1)])
def test_only_errors_that_keep_changes_commit_them(
    migrated_url: str, error: type[ProblemError], kept: int
):
    # A reused refresh token revokes its session and is then answered with an error; the
    # revocation must survive the error.
    database = Database(migrated_url)
    sessions = transaction(database)
    session = next(sessions)
    session.add(_user("ada@example.com"))
    session.flush()
    with pytest.raises(error):
        sessions.throw(error("refused"))
    assert _count_users(database) == kept
    database.dispose()


def test_emails_are_unique_and_stored_lower_case_by_the_database(migrated_url: str):
    database = Database(migrated_url)
    with database.sessions() as session:
        session.add(_user("Ada@Example.com"))
        with pytest.raises(IntegrityError):
            session.flush()
    with database.sessions() as session:
        session.add(_user("ada@example.com"))
        session.commit()
        session.add(_user("ada@example.com"))
        with pytest.raises(IntegrityError):
            session.flush()
    database.dispose()


def test_datetimes_come_back_aware_in_utc(migrated_url: str):
    database = Database(migrated_url)
    with database.sessions() as session:
        session.add(_user("ada@example.com"))
        session.commit()
    with database.sessions() as session:
        user = session.scalars(select(User)).one()
        assert user.created_at.utcoffset() is not None
        assert user.created_at.utcoffset().total_seconds() == 0
    database.dispose()


def test_on_sqlite_a_writer_waits_for_the_lock_and_a_reader_does_not(tmp_path: Path):
    # Workers commit heartbeats every few seconds: a request that read and then writes must
    # wait its turn, not fail at once ("database is locked"), and a page that only reads
    # must not wait behind a long writer at all.
    url = f"sqlite:///{tmp_path / 'locks.db'}"
    database = Database(url)
    Base.metadata.create_all(database.engine)
    with transaction_scope(database) as session:
        session.add(User(email="ada@example.com", name="Ada", password_hash="x"))
    with closing(sqlite3.connect(tmp_path / "locks.db", timeout=0, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        reads = transaction(database, read_only=True)
        reader = next(reads)
        assert reader.scalar(select(func.count()).select_from(User)) == 1  # no wait
        reads.close()
        writes = transaction(database)
        started = threading.Event()

        def write() -> None:
            session = next(writes)
            started.set()
            session.add(User(email="bob@example.com", name="Bob", password_hash="x"))
            with contextlib.suppress(StopIteration):
                next(writes)  # commits

        writer = threading.Thread(target=write)
        writer.start()
        started.wait(5)
        writer.join(0.5)
        assert writer.is_alive()  # waiting for the lock, not failed
        other.execute("COMMIT")
        writer.join(10)
    with transaction_scope(database, read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(User)) == 2
    database.dispose()
