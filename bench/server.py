"""``make bench`` (server part): API latency through a real uvicorn server over loopback.

- ``GET /api/v1/projects`` for a user with 1,000 projects (first page, a search, a sort by
  name and the last page), p50/p95 over repeated requests, on SQLite and on PostgreSQL
  (127.0.0.1:5432, database ``test``, when reachable);
- sign-in with the password grant, including argon2id verification;
- ``GET /healthz`` in the same run as the floor every request pays (HTTP, routing,
  serialization), so the database's share can be read off as a ratio on a noisy machine.

Results replace the server section of docs/benchmarks.md (after SERVER_MARKER).
Run ``python -m bench.server --quick`` for a smoke version.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import email
import email.policy
import getpass
import socket
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis
import uvicorn
from notefall.server.accounts.models import User
from notefall.server.kit.app import create_app
from notefall.server.kit.db import Database
from notefall.server.kit.models import utcnow
from notefall.server.kit.redis_server import RedisServer
from notefall.server.kit.settings import Environment, load_settings
from notefall.server.migrations import upgrade_to_head
from notefall.server.projects.models import Project, ProjectTag
from psycopg import sql
from sqlalchemy import select, text

from .run import REPORT, machine

SERVER_MARKER = "<!-- server benchmarks (bench/server.py) -->"
# The section after ours (bench/renders.py's marker; not imported: that module needs more).
NEXT_MARKER = "<!-- render farm benchmarks (bench/renders.py) -->"
PASSWORD = "falling notes over a grand piano"
EMAIL = "bench@example.com"
PROJECTS = 1000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_server(app: Any, port: int | None = None) -> Iterator[str]:
    """``app`` served by uvicorn in a thread, on ``port`` (a free one by default)."""
    port = port or _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def postgres_database() -> Iterator[str | None]:
    for user in dict.fromkeys(["postgres", getpass.getuser()]):
        admin = f"postgresql://{user}@127.0.0.1:5432/test"
        try:
            with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
                name = f"notefall_bench_{uuid.uuid4().hex[:10]}"
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.Error:
            continue
        try:
            yield f"postgresql://{user}@127.0.0.1:5432/{name}"
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
        return
    yield None


def timed(call: Callable[[], httpx.Response], repeats: int, warmup: int = 5) -> dict[str, float]:
    for _ in range(warmup):
        call().raise_for_status()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        response = call()
        times.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[max(0, int(len(times) * 0.95) - 1)], 2),
    }


def seed_projects(database_url: str, owner_email: str, count: int) -> None:
    """Rows as an upload would leave them (song summaries filled), inserted directly: the
    benchmark measures reading a large account, not creating one."""
    database = Database(database_url)
    with database.sessions() as session:
        owner = session.scalars(select(User).where(User.email == owner_email)).one()
        now = utcnow()
        words = ["Nocturne", "Etude", "Prelude", "Waltz", "Sonata", "Ballade", "Fugue", "Rag"]
        for i in range(count):
            stamp = now - dt.timedelta(minutes=i)
            tags = ["practice"] if i % 3 else ["recital", "2026"]
            project_id = uuid.uuid4()
            session.add_all(ProjectTag(project_id=project_id, tag=tag) for tag in tags)
            session.add(
                Project(
                    id=project_id,
                    owner_id=owner.id,
                    name=f"{words[i % len(words)]} no. {i}",
                    tags=tags,
                    settings={"theme": "aurora", "resolution": "1080p"},
                    midi_key=f"projects/{uuid.uuid4()}/song.mid",
                    midi_sha256="0" * 64,
                    song_title=f"{words[(i * 7) % len(words)]} in C, op. {i}",
                    song_duration=120.0 + i % 90,
                    note_count=1000 + i,
                    thumbnail_key=f"projects/{uuid.uuid4()}/thumbnail.png",
                    created_at=stamp,
                    updated_at=stamp,
                )
            )
        session.commit()
    if database.engine.dialect.name == "postgresql":
        # Statistics as autovacuum keeps them on a live database; right after a bulk insert
        # the planner would otherwise guess table sizes and choose badly.
        with database.engine.connect() as connection:
            connection.execute(text("ANALYZE"))
            connection.commit()
    database.dispose()


def bench_backend(
    label: str, database_url: str, redis_url: str, work: Path, repeats: int
) -> dict[str, Any]:
    upgrade_to_head(database_url)
    settings = load_settings(
        # A real Redis, as in production: every authenticated request pays the rate-limit check.
        redis_url=redis_url,
        data_dir=work / label,
        database_url=database_url,
        environment=Environment.TEST,
        secret_key="bench-secret-key-" + "x" * 40,
        public_url="http://notefall.bench",
        # Counted but never reached: the benchmark's own burst must not be throttled.
        rate_limit_scale=1_000_000,
    )
    app = create_app(settings)
    with running_server(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        signup = {"email": EMAIL, "password": PASSWORD, "name": "Bench"}
        client.post("/api/v1/auth/signup", json=signup).raise_for_status()
        message = email.message_from_bytes(
            sorted(settings.outbox_dir.glob("*.eml"))[-1].read_bytes(), policy=email.policy.default
        )
        body = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        token = [
            line
            for line in body.splitlines()
            if "." in line and " " not in line and not line.startswith("http")
        ][-1]
        client.post("/api/v1/auth/verify-email", json={"token": token}).raise_for_status()
        form = {"grant_type": "password", "username": EMAIL, "password": PASSWORD}
        sign_in = timed(
            lambda: client.post("/api/v1/auth/token", data=form), max(10, repeats // 10)
        )
        access = client.post("/api/v1/auth/token", data=form).json()["access_token"]
        seed_projects(database_url, EMAIL, PROJECTS)
        auth = {"Authorization": f"Bearer {access}"}

        def get(params: dict[str, Any]) -> Callable[[], httpx.Response]:
            return lambda: client.get("/api/v1/projects", params=params, headers=auth)

        total = client.get("/api/v1/projects", headers=auth).json()["total"]
        assert total == PROJECTS, total
        result = {
            "backend": label,
            "healthz": timed(lambda: client.get("/healthz"), repeats),
            "first_page": timed(get({}), repeats),
            "search": timed(get({"q": "nocturne"}), repeats),
            "sort_name": timed(get({"sort": "name"}), repeats),
            "tag": timed(get({"tag": "recital"}), repeats),
            "last_page": timed(get({"offset": PROJECTS - 20}), repeats),
            "sign_in": sign_in,
        }
    app.state.database.dispose()
    return result


def write_section(results: list[dict[str, Any]], date: str) -> None:
    lines = [
        SERVER_MARKER,
        "## Server: API latency (bench/server.py)",
        "",
        f"Measured on {date}, {machine()}.",
        "A real uvicorn server on 127.0.0.1 with a real Redis (rate limits counted on every",
        "request) and an httpx client in the same process (one",
        f"request at a time), one user with {PROJECTS:,} projects. Page size 20. `healthz` is",
        "the floor every request pays (HTTP, routing, JSON); the ratio column is p95 ÷ that floor.",
        "PostgreSQL is measured after `ANALYZE`, as autovacuum keeps a live database: straight",
        "after the bulk insert, without statistics, the planner chose a poor plan for the tag",
        "filter (p95 120 ms in one run, against about 24 ms with statistics).",
        "",
        "| backend | request | p50 ms | p95 ms | p95 ÷ healthz p95 | target |",
        "|---|---|---|---|---|---|",
    ]
    names = {
        "healthz": ("GET /healthz", ""),
        "first_page": ("GET /api/v1/projects", "p95 ≤ 50 ms"),
        "search": ("… ?q=nocturne", "p95 ≤ 50 ms"),
        "sort_name": ("… ?sort=name", "p95 ≤ 50 ms"),
        "tag": ("… ?tag=recital", "p95 ≤ 50 ms"),
        "last_page": ("… ?offset=980", "p95 ≤ 50 ms"),
        "sign_in": ("POST /api/v1/auth/token (password)", "≤ 300 ms"),
    }
    for r in results:
        floor = r["healthz"]["p95_ms"]
        for key, (label, target) in names.items():
            m = r[key]
            ratio = round(m["p95_ms"] / floor, 1) if floor else ""
            lines.append(
                f"| {r['backend']} | {label} | {m['p50_ms']} | {m['p95_ms']} | {ratio} | {target} |"
            )
    lines.append("")
    text = REPORT.read_text(encoding="utf-8") if REPORT.exists() else "# Benchmarks\n"
    head, _, rest = text.partition(SERVER_MARKER)
    # Sections written by later benchmarks (bench/renders.py) follow ours: keep them.
    later = rest[rest.index(NEXT_MARKER) :] if NEXT_MARKER in rest else ""
    body = head.rstrip("\n") + "\n\n" + "\n".join(lines)
    REPORT.write_text(body + ("\n" + later if later else ""), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer repeats, for a smoke run")
    args = parser.parse_args()
    repeats = 40 if args.quick else 300
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    results = []
    with (
        tempfile.TemporaryDirectory(prefix="notefall-bench-server-") as tmp,
        RedisServer(Path(tmp) / "redis", persistent=False) as redis_server,
    ):
        work = Path(tmp)
        print("sqlite…", flush=True)
        sqlite_url = f"sqlite:///{work / 'bench.db'}"
        results.append(bench_backend("SQLite", sqlite_url, redis_server.url, work, repeats))
        print(results[-1], flush=True)
        with postgres_database() as url:
            if url is None:
                print("PostgreSQL at 127.0.0.1:5432 is not reachable; measured SQLite only")
            else:
                print("postgresql…", flush=True)
                redis.Redis.from_url(redis_server.url).flushdb()
                results.append(bench_backend("PostgreSQL", url, redis_server.url, work, repeats))
                print(results[-1], flush=True)
    write_section(results, date)
    print(f"wrote {REPORT}")


if __name__ == "__main__":
    main()
