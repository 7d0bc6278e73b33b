"""Container tasks for the Notefall image: health checks, and migrations run once.

Installed as /usr/local/bin/notefall-container.py and run with the image's Python:

    api-healthy          exit 0 when GET /healthz of the API in this container answers 200
    worker-alive         exit 0 when this container's worker is alive in the sense that matters
    migrate              upgrade the database to the latest migration (safe to run twice at once)
    wait-for-migrations  wait until the database is at the latest migration

Each failure prints one line saying why and exits 1 (2 for settings that cannot work).
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

# An arbitrary constant: the key of the PostgreSQL advisory lock that serialises migrations.
MIGRATION_LOCK = 0x4E4F5445  # "NOTE"


class Unhealthy(Exception):
    """The check failed; the message says why (it lands in `docker inspect` / kubectl)."""


def api_healthy(url: str) -> str:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=4) as response:
            status = response.status
    except (urllib.error.URLError, OSError) as error:
        raise Unhealthy(f"the API does not answer at {url}/healthz: {error}") from None
    if status != 200:
        raise Unhealthy(f"{url}/healthz answered {status}")
    return "the API answers /healthz"


def worker_alive(host: str, now: float | None = None) -> str:
    """Alive = a worker process of this container (``host``: the container's host name, the
    pod's name on Kubernetes) recorded itself in Redis within WORKER_GONE_SECONDS **and** is
    not idle while one of its queues holds waiting messages.

    The first half catches a hung or dead worker, or one that lost Redis; the second the
    failure seen in practice, a worker that is alive after a Redis reconnect but no longer
    consumes. A single idle-with-work answer can be a moment between two tasks, so the
    probe only restarts after several in a row (HEALTHCHECK --retries, failureThreshold)."""
    import redis
    from notefall.server.kit.settings import load_settings
    from notefall.server.renders.presence import alive_workers

    settings = load_settings()
    if not settings.redis_url:
        raise Unhealthy("NOTEFALL_REDIS_URL is not set, so no worker can run here")
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        present = alive_workers(client, time.time() if now is None else now)
        mine = [w for w in present if w.name.rpartition(":")[0] == host]
        if not mine:
            raise Unhealthy(
                f"no worker on {host} recorded itself in Redis within the last minute "
                "(not started yet, hung, or cannot reach Redis)"
            )
        if any(w.busy > 0 for w in mine):
            return f"worker on {host} is running {sum(w.busy for w in mine)} task(s)"
        queues = sorted({q for w in mine for q in w.queues})
        waiting = {q: int(client.llen(q)) for q in queues}  # type: ignore[arg-type]
    except redis.RedisError as error:
        raise Unhealthy(f"Redis does not answer: {error}") from None
    finally:
        client.close()
    backlog = {q: n for q, n in waiting.items() if n}
    if backlog:
        listed = ", ".join(f"{q} {n}" for q, n in sorted(backlog.items()))
        raise Unhealthy(f"worker on {host} is idle while messages wait ({listed})")
    return f"worker on {host} is idle and its queues are empty"


@contextmanager
def migration_lock(database_url: str) -> Iterator[None]:
    """On PostgreSQL, hold an advisory lock while migrating: two `migrate` runs at once (a
    retried Job, init containers of several pods) then run one after the other, and the
    second finds the database at head. SQLite has a single writer anyway."""
    from notefall.server.kit.db import create_database_engine
    from sqlalchemy import text

    engine = create_database_engine(database_url)
    try:
        if engine.dialect.name != "postgresql":
            yield
            return
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
    finally:
        engine.dispose()


def revisions(database_url: str) -> tuple[set[str], set[str]]:
    """(the database's current revisions, the code's head revisions)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from notefall.server.kit.db import create_database_engine
    from notefall.server.migrations import alembic_config

    heads = set(ScriptDirectory.from_config(alembic_config(database_url)).get_heads())
    engine = create_database_engine(database_url)
    try:
        with engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    finally:
        engine.dispose()
    return current, heads


def migrate() -> str:
    from notefall.server.kit.settings import load_settings
    from notefall.server.migrations import upgrade_to_head

    url = load_settings().database_url
    with migration_lock(url):
        upgrade_to_head(url)
    current, _ = revisions(url)
    return f"database at the latest migration ({', '.join(sorted(current))})"


def wait_for_migrations(timeout: float) -> str:
    from notefall.server.kit.settings import load_settings
    from sqlalchemy.exc import SQLAlchemyError

    url = load_settings().database_url
    deadline = time.monotonic() + timeout
    problem = ""
    while True:
        try:
            current, heads = revisions(url)
            if current == heads:
                return f"database at the latest migration ({', '.join(sorted(heads))})"
            problem = (
                f"the database is at {', '.join(sorted(current)) or 'no migration'}, the code "
                f"needs {', '.join(sorted(heads))}: run `migrate` (the migration Job) first"
            )
        except SQLAlchemyError as error:
            problem = f"the database does not answer: {str(error).splitlines()[0]}"
        if time.monotonic() >= deadline:
            raise Unhealthy(problem)
        time.sleep(2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="notefall-container.py", description=__doc__)
    tasks = parser.add_subparsers(dest="task", required=True)
    api = tasks.add_parser("api-healthy", help="GET /healthz of the local API")
    api.add_argument("--url", default="http://127.0.0.1:8000")
    tasks.add_parser("worker-alive", help="this container's worker is present and consuming")
    tasks.add_parser("migrate", help="upgrade the database to the latest migration")
    wait = tasks.add_parser("wait-for-migrations", help="wait for the latest migration")
    wait.add_argument("--timeout", type=float, default=300.0, metavar="SECONDS")
    args = parser.parse_args(argv)

    from notefall.server.kit.settings import SettingsError

    try:
        if args.task == "api-healthy":
            said = api_healthy(args.url.rstrip("/"))
        elif args.task == "worker-alive":
            said = worker_alive(socket.gethostname())
        elif args.task == "migrate":
            said = migrate()
        else:
            said = wait_for_migrations(args.timeout)
    except SettingsError as error:
        print(f"notefall-container: {error}", file=sys.stderr)
        return 2
    except Unhealthy as error:
        print(f"notefall-container: {error}", file=sys.stderr)
        return 1
    print(said)
    return 0


if __name__ == "__main__":
    sys.exit(main())
