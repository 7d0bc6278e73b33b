"""Which database backends the server tests run on, probed once per process.

Also a pytest plugin (``make test`` loads it with ``-p tests.server.backends``) so the run's
header names the backends; a conftest below ``tests/`` cannot add to the header itself.
"""

from __future__ import annotations

import getpass

import psycopg

POSTGRES_HOST, POSTGRES_PORT, POSTGRES_DATABASE = "127.0.0.1", 5432, "test"


def _probe_postgres() -> tuple[str | None, str]:
    """(a user that could connect, or None; why none could)."""
    reasons = []
    for user in dict.fromkeys(["postgres", getpass.getuser()]):
        try:
            with psycopg.connect(
                host=POSTGRES_HOST,
                port=POSTGRES_PORT,
                dbname=POSTGRES_DATABASE,
                user=user,
                connect_timeout=3,
            ):
                return user, ""
        except psycopg.Error as exc:
            reasons.append(f"as {user}: {str(exc).strip().splitlines()[0]}")
    return None, "; ".join(reasons)


POSTGRES_USER, POSTGRES_UNREACHABLE = _probe_postgres()
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_USER else [])


def pytest_report_header() -> str:
    if POSTGRES_USER:
        return f"server database backends: sqlite, postgresql ({POSTGRES_HOST}:{POSTGRES_PORT})"
    return (
        "server database backends: sqlite ONLY; PostgreSQL at "
        f"{POSTGRES_HOST}:{POSTGRES_PORT} is not reachable ({POSTGRES_UNREACHABLE})"
    )
